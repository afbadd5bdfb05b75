"""Agent tools: a plain Python function as an ElevenLabs server tool ("webhook tool").

From the function's signature and docstring come its parameters and where each travels
(the URL's path, its query, or the body), how a call's strings and JSON become Python
arguments, and the tool definition to paste into ElevenLabs (its ``api_schema``). Pure: no
HTTP here; the receiver's call handler (:mod:`.._server.calls`) serves it.
"""

from __future__ import annotations

import enum
import inspect
import json
import re
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from .exceptions import CallError

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
BODY_METHODS = ("POST", "PUT", "PATCH")
JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
#: ElevenLabs' ``response_timeout_secs`` range.
TIMEOUT_RANGE_S = (5, 120)
#: How long a handler may take by default: under ElevenLabs' shortest wait, so the answer
#: (an error, if need be) always arrives before ElevenLabs gives up.
DEFAULT_DEADLINE_S = 4.5
#: Calls one function runs at once; more wait for a slot within their deadline (each function
#: has its own, so a hanging one cannot hold up the others).
DEFAULT_CONCURRENCY = 4
#: The header ElevenLabs is told to send (its value: the receiver's call secret).
SECRET_HEADER = "X-Callback-Secret"
#: Parameters ElevenLabs fills in itself, never the LLM (``system__conversation_id``, ...).
SYSTEM_PREFIX = "system__"
_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_LITERAL = ("string", "integer", "number", "boolean")
_TRUE, _FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")


def json_type(annotation: Any, where: str = "") -> dict[str, Any]:
    """The JSON schema of a parameter's type hint (no hint: a string)."""
    if annotation is inspect.Parameter.empty or annotation is Any or annotation is str:
        return {"type": "string"}
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        kept = [a for a in args if a is not type(None)]
        if len(kept) == 1:
            return json_type(kept[0], where)
    elif annotation is bool:
        return {"type": "boolean"}
    elif annotation is int:
        return {"type": "integer"}
    elif annotation is float:
        return {"type": "number"}
    elif origin is typing.Literal and all(isinstance(a, str) for a in args):
        return {"type": "string", "enum": list(args)}
    elif isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        values = [m.value for m in annotation]
        if all(isinstance(v, str) for v in values):
            return {"type": "string", "enum": values}
    elif annotation in (list, tuple, set) or origin in (list, tuple, set, Sequence):
        items = json_type(args[0]) if args and args[0] is not Ellipsis else {"type": "string"}
        return {"type": "array", "items": items}
    elif annotation is dict or origin in (dict, Mapping) or typing.is_typeddict(annotation):
        schema: dict[str, Any] = {"type": "object"}
        if typing.is_typeddict(annotation):
            hints = typing.get_type_hints(annotation)
            schema["properties"] = {k: json_type(v) for k, v in hints.items()}
            schema["required"] = sorted(annotation.__required_keys__)
        return schema
    raise TypeError(
        f"elwh_nb cannot describe {where or 'a parameter'} of type {annotation!r} to ElevenLabs: "
        "use str, int, "
        "float, bool, a Literal of strings, a str Enum, list[...], dict or a TypedDict"
    )


@dataclass(frozen=True)
class Param:
    """One parameter of a tool: where it travels, its JSON schema, and whether it must be sent."""

    name: str
    where: str  # "path", "query" or "body"
    schema: dict[str, Any]
    required: bool
    description: str

    @property
    def system(self) -> bool:
        return self.name.startswith(SYSTEM_PREFIX)

    def property(self) -> dict[str, Any]:
        """Its entry in the api_schema: described for the LLM, or filled in by ElevenLabs."""
        prop = dict(self.schema)
        if self.system:
            prop["dynamic_variable"] = self.name
        elif prop["type"] in _LITERAL or self.description:
            prop["description"] = self.description or self.name.replace("_", " ")
        return prop

    def from_text(self, values: list[str]) -> Any:
        """The value of a path, query or form parameter (text) as its type."""
        kind = self.schema["type"]
        if kind == "array":
            item = Param(self.name, self.where, self.schema["items"], True, "")
            return [item.from_text([v]) for v in values]
        text = values[-1]
        try:
            if kind == "integer":
                return int(text)
            if kind == "number":
                return float(text)
            if kind == "boolean":
                if text.lower() in _TRUE + _FALSE:
                    return text.lower() in _TRUE
                raise ValueError(text)
            if kind == "object":
                value = json.loads(text)
                if not isinstance(value, dict):
                    raise ValueError(text)
                return value
        except ValueError:
            raise CallError(400, f"parameter {self.name!r} should be {_a(kind)}, got {text[:80]!r}") from None
        return self.checked(text)

    def checked(self, value: Any) -> Any:
        """A JSON value, checked against the parameter's type (an int is a number, never a bool)."""
        kind = self.schema["type"]
        ok = {
            "string": isinstance(value, str),
            "integer": isinstance(value, int) and not isinstance(value, bool),
            "number": isinstance(value, (int, float)) and not isinstance(value, bool),
            "boolean": isinstance(value, bool),
            "array": isinstance(value, list),
            "object": isinstance(value, dict),
        }[kind]
        if not ok:
            raise CallError(
                400, f"parameter {self.name!r} should be {_a(kind)}, got {json.dumps(value)[:80]}"
            )
        if "enum" in self.schema and value not in self.schema["enum"]:
            raise CallError(
                400, f"parameter {self.name!r} must be one of {self.schema['enum']}, got {value!r}"
            )
        return value


def _a(kind: str) -> str:
    return {"integer": "an integer", "object": "an object", "array": "an array"}.get(kind, f"a {kind}")


def check_concurrency(concurrency: int) -> int:
    """``concurrency=`` of a tool or initiation function, checked."""
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or not 1 <= concurrency <= 64:
        raise ValueError(f"concurrency is the calls a function runs at once, 1 to 64; {concurrency!r} is not")
    return concurrency


class Tool:
    """A function served as an ElevenLabs server tool; see ``Receiver.tool`` for the options."""

    def __init__(
        self,
        fn: Callable[..., Any],
        name: str | None = None,
        *,
        method: str = "POST",
        path: str = "",
        query: Sequence[str] = (),
        content_type: str = JSON,
        timeout_s: float = DEFAULT_DEADLINE_S,
        description: str | None = None,
        concurrency: int = DEFAULT_CONCURRENCY,
    ) -> None:
        import docstring_parser

        self.fn = fn
        self.name = name or fn.__name__
        if not _NAME.fullmatch(self.name):
            raise ValueError(f"a tool's name is 1 to 64 letters, digits, _ or -: {self.name!r}")
        self.method = method.upper()
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}, not {method!r}")
        if content_type not in (JSON, FORM):
            raise ValueError(f"content_type must be {JSON!r} or {FORM!r}")
        self.content_type = content_type
        if not TIMEOUT_RANGE_S[0] - 1 < timeout_s <= TIMEOUT_RANGE_S[1]:
            raise ValueError(
                f"timeout_s must be at most {TIMEOUT_RANGE_S[1]} s (ElevenLabs waits {TIMEOUT_RANGE_S[0]} to "
                f"{TIMEOUT_RANGE_S[1]} s) and leave time to answer; {timeout_s!r} is not"
            )
        self.timeout_s = float(timeout_s)
        self.concurrency = check_concurrency(concurrency)
        self.path = "/" + path.strip("/") if path.strip("/") else ""
        doc = docstring_parser.parse(inspect.getdoc(fn) or "")
        self.description = (
            description or " ".join(filter(None, (doc.short_description, doc.long_description))).strip()
        )
        if not self.description:
            raise ValueError(
                f"tool {self.name!r} needs a description for the LLM: give the function a docstring "
                "(or description=)"
            )
        said = {p.arg_name: (p.description or "").strip() for p in doc.params}
        in_path = _PLACEHOLDER.findall(self.path)
        signature = inspect.signature(fn)
        hints = typing.get_type_hints(fn)
        self.params: list[Param] = []
        for p in signature.parameters.values():
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD, p.POSITIONAL_ONLY):
                raise ValueError(
                    f"tool {self.name!r}: parameter {p.name!r} must be an ordinary named parameter"
                )
            if p.name in in_path:
                where = "path"
            elif p.name in query or self.method not in BODY_METHODS:
                where = "query"
            else:
                where = "body"
            schema = json_type(hints.get(p.name, p.annotation), f"parameter {p.name!r} of tool {self.name!r}")
            if (
                where != "body"
                and schema["type"] not in _LITERAL
                and not (where == "query" and schema["type"] == "array")
            ):
                raise ValueError(
                    f"tool {self.name!r}: parameter {p.name!r} travels in the URL's {where}, "
                    "which holds only "
                    "strings, numbers and booleans; use POST, PUT or PATCH to send it in the body"
                )
            required = p.default is inspect.Parameter.empty or where == "path"
            self.params.append(Param(p.name, where, schema, required, said.get(p.name, "")))
        missing = set(in_path) - {p.name for p in self.params}
        if missing:
            raise ValueError(
                f"tool {self.name!r}: the path names {sorted(missing)}, which the function does not take"
            )
        extra = set(query) - {p.name for p in self.params}
        if extra:
            raise ValueError(
                f"tool {self.name!r}: query= names {sorted(extra)}, which the function does not take"
            )

    def __repr__(self) -> str:
        return f"<Tool {self.name}: {self.method} {self.path or '/'}>"

    # -- a call --------------------------------------------------------------------------
    def arguments(
        self, path: str, query: str, body: bytes, content_type: str | None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """The function's keyword arguments from a call, and what else was sent (kept in the log).

        ``path`` is what follows the tool's URL (``/A1`` for ``path="{order_id}"``); ``query``
        the raw query string. Raises :class:`CallError` (400) for a call that does not fit.
        """
        path_values = self._path_values(path)
        query_values = parse_qs(query, keep_blank_values=True)
        body_values: dict[str, Any] = {}
        form = False
        if body.strip():
            ctype = (content_type or "").split(";")[0].strip().lower()
            if ctype == FORM:
                body_values = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
                form = True
            else:
                try:
                    parsed = json.loads(body)
                except ValueError:
                    raise CallError(
                        400, "the body is not JSON (nor form-encoded with its content type)"
                    ) from None
                except RecursionError:
                    raise CallError(400, "the body is JSON nested too deeply to read") from None
                if not isinstance(parsed, dict):
                    raise CallError(400, "the body is JSON but not an object of parameters")
                body_values = parsed
        kwargs: dict[str, Any] = {}
        for param in self.params:
            if param.where == "path":
                kwargs[param.name] = param.from_text([path_values[param.name]])
            elif param.where == "query" and param.name in query_values:
                kwargs[param.name] = param.from_text(query_values.pop(param.name))
            elif param.where == "body" and param.name in body_values:
                value = body_values.pop(param.name)
                kwargs[param.name] = param.from_text(value) if form else param.checked(value)
            elif param.required:
                raise CallError(400, f"missing parameter {param.name!r} (in the {param.where})")
        unused = {**query_values, **body_values}
        return kwargs, unused

    def _path_values(self, path: str) -> dict[str, str]:
        from urllib.parse import unquote

        pattern = "^" + _PLACEHOLDER.sub(
            r"(?P<\1>[^/]+)", re.escape(self.path).replace(r"\{", "{").replace(r"\}", "}")
        )
        match = re.match(pattern + "/?$", path)
        if match is None:
            raise CallError(
                404, f"tool {self.name!r} is at {self.path or '/'} under its URL, not {path[:100]!r}"
            )
        return {k: unquote(v) for k, v in match.groupdict().items()}

    # -- what to paste into ElevenLabs ---------------------------------------------------------
    def definition(
        self, url: str, *, secret_id: str | None = None, response_timeout_s: int | None = None
    ) -> dict[str, Any]:
        """The webhook tool's definition for ElevenLabs (its ``api_schema`` included).

        ``url`` is the tool's URL (``<rx.url>/tools/<name>``); the secret header points at the
        ElevenLabs workspace secret ``secret_id`` that holds the receiver's call secret.
        """
        wait = response_timeout_s or max(TIMEOUT_RANGE_S[0], min(TIMEOUT_RANGE_S[1], int(self.timeout_s) + 1))
        api: dict[str, Any] = {
            "url": url.rstrip("/") + self.path,
            "method": self.method,
            "request_headers": {
                SECRET_HEADER: {"secret_id": secret_id or "<the id of your ElevenLabs secret>"}
            },
        }
        by_place = {w: [p for p in self.params if p.where == w] for w in ("path", "query", "body")}
        if by_place["path"]:
            api["path_params_schema"] = {p.name: p.property() for p in by_place["path"]}
        if by_place["query"]:
            api["query_params_schema"] = {
                "properties": {p.name: p.property() for p in by_place["query"]},
                "required": [p.name for p in by_place["query"] if p.required],
            }
        if by_place["body"]:
            api["request_body_schema"] = {
                "type": "object",
                "description": f"The parameters of {self.name}",
                "properties": {p.name: p.property() for p in by_place["body"]},
                "required": [p.name for p in by_place["body"] if p.required],
            }
            api["content_type"] = self.content_type
        return {
            "type": "webhook",
            "name": self.name,
            "description": self.description,
            "response_timeout_secs": wait,
            "api_schema": api,
        }


def encode_answer(value: Any, name: str) -> bytes:
    """A function's result as the JSON body of the answer (CallError 500 if it is not JSON)."""

    def default(obj: Any) -> Any:
        if hasattr(obj, "item") and callable(obj.item):  # NumPy and pandas scalars
            return obj.item()
        if hasattr(obj, "isoformat"):  # datetime, date, pandas Timestamp
            return obj.isoformat()
        raise TypeError(type(obj).__name__)

    try:
        return json.dumps(value, default=default, allow_nan=False).encode()
    except (TypeError, ValueError) as exc:
        raise CallError(500, f"{name} returned something that is not JSON ({exc})") from None
