"""The receiver's methods for agent tools and call personalisation (``@rx.tool``, ``@rx.initiation``).

A mixin of :class:`~.receiver.Receiver`: each method hands off to its :class:`~.calls.CallDesk`
(which answers the calls) or to the store (which keeps them).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, overload
from urllib.parse import quote

import pandas as pd

from .._core.initiation import Initiation
from .._core.tools import BODY_METHODS, DEFAULT_CONCURRENCY, DEFAULT_DEADLINE_S, JSON, SECRET_HEADER, Tool

if TYPE_CHECKING:
    from .._core.store import EventStore
    from .calls import CallDesk
    from .reach import Reach

F = TypeVar("F", bound=Callable[..., Any])


class CallMethods:
    """``rx.tool``, ``rx.initiation``, ``rx.tools``, ``rx.tools_schema``, ``rx.calls`` and the simulators."""

    _desk: CallDesk
    _reach: Reach
    store: EventStore

    @property
    def url(self) -> str:
        raise NotImplementedError  # the Receiver's

    @overload
    def tool(self, fn: F, /) -> F: ...
    @overload
    def tool(
        self,
        name: str | None = None,
        /,
        *,
        method: str = "POST",
        path: str = "",
        query: Sequence[str] = (),
        content_type: str = JSON,
        timeout_s: float = DEFAULT_DEADLINE_S,
        description: str | None = None,
        concurrency: int = DEFAULT_CONCURRENCY,
    ) -> Callable[[F], F]: ...
    def tool(self, fn_or_name: Any = None, /, **options: Any) -> Any:
        """Serve a function as an ElevenLabs server tool: ``@rx.tool``, or ``@rx.tool("name", method=...)``.

        Parameters travel in the body (JSON, or form with ``content_type``) for POST, PUT
        and PATCH, in the query for GET and DELETE (and those named in ``query=``), and in the
        URL for those named in ``path`` (``path="{order_id}"``). Type hints and the docstring
        make the schema (:meth:`tools_schema`). The function runs on a thread of its own and
        must answer within ``timeout_s`` (default 4.5 s, under ElevenLabs' shortest wait;
        up to 120), else the caller gets a JSON error in time. It runs at most ``concurrency``
        calls at once (default 4), on threads of its own: more wait for a slot within their
        deadline, then get a 503 saying the tool is busy, and other tools are not held up.
        Returns the function unchanged.
        """

        def register(fn: F) -> F:
            made = Tool(fn, fn_or_name if isinstance(fn_or_name, str) else None, **options)
            self._desk.tools[made.name] = made
            return fn

        if callable(fn_or_name):
            return register(fn_or_name)
        return register

    @overload
    def initiation(self, fn: F, /) -> F: ...
    @overload
    def initiation(
        self,
        fn: None = None,
        /,
        *,
        variables: Sequence[str] = (),
        timeout_s: float = DEFAULT_DEADLINE_S,
        concurrency: int = DEFAULT_CONCURRENCY,
    ) -> Callable[[F], F]: ...
    def initiation(
        self,
        fn: Any = None,
        /,
        *,
        variables: Sequence[str] = (),
        timeout_s: float = DEFAULT_DEADLINE_S,
        concurrency: int = DEFAULT_CONCURRENCY,
    ) -> Any:
        """Personalise inbound calls: ``@rx.initiation`` on a function of ``caller_id``, ``agent_id``,
        ``called_number`` and/or ``call_sid`` that returns the dynamic variables (or the whole answer,
        with ``conversation_config_override``). ``variables`` are those the agent uses: an answer
        without one is an error, in the log and in :attr:`calls`. ``timeout_s`` and
        ``concurrency`` as for :meth:`tool` (its bound is its own, apart from the tools').
        """

        def register(f: F) -> F:
            self._desk.initiation = Initiation(
                f, variables=variables, timeout_s=timeout_s, concurrency=concurrency
            )
            return f

        return register(fn) if callable(fn) else register

    def _call_url(self, which: str) -> str:
        return f"{self.url.rstrip('/')}/{which}"

    @property
    def tools(self) -> pd.DataFrame:
        """Each tool: its URL, method, where its parameters go, and the header ElevenLabs must send."""
        rows = [
            {
                "name": t.name,
                "method": t.method,
                "url": self._call_url(f"tools/{t.name}") + t.path,
                "header": SECRET_HEADER,
                "parameters": ", ".join(f"{p.name} ({p.where})" for p in t.params),
                "timeout_s": t.timeout_s,
                "concurrency": t.concurrency,
                "function": t.fn.__name__,
            }
            for t in self._desk.tools.values()
        ]
        columns = ["name", "method", "url", "header", "parameters", "timeout_s", "concurrency", "function"]
        return pd.DataFrame(rows, columns=columns).set_index("name")

    @property
    def initiation_url(self) -> str:
        """The URL to give ElevenLabs for conversation initiation client data (with the header)."""
        return self._call_url("initiation")

    def tools_schema(self, name: str, *, secret_id: str | None = None) -> dict[str, Any]:
        """The tool's definition to paste into ElevenLabs (a webhook tool with its ``api_schema``).

        ``secret_id``: the id of the ElevenLabs workspace secret holding :meth:`call_secret`.
        """
        if name not in self._desk.tools:
            raise KeyError(f"no tool named {name!r}; tools: {', '.join(self._desk.tools) or 'none'}")
        return self._desk.tools[name].definition(self._call_url(f"tools/{name}"), secret_id=secret_id)

    def call_secret(self) -> str:
        """The value ElevenLabs must send in the ``X-Callback-Secret`` header (shown only when asked)."""
        return self._desk.secret()

    @property
    def calls(self) -> pd.DataFrame:
        """Every tool and call-start request answered, with its parameters, answer, status and latency."""
        return self.store.calls

    # -- playing ElevenLabs ------------------------------------------------------------------
    def simulate_tool_call(
        self, name: str, parameters: Mapping[str, Any] | None = None, *, via: str = "auto"
    ) -> Any:
        """Call tool ``name`` as ElevenLabs would (its method, parameter places, content type and
        header) through ``via`` (see :meth:`simulate`); returns its JSON answer, or raises
        :class:`CallError` with the error it answered."""
        from .caller import call

        tool = self._desk.tools.get(name)
        if tool is None:
            raise KeyError(f"no tool named {name!r}")
        given = dict(parameters or {})
        path = tool.path
        for p in tool.params:
            if p.where == "path":
                path = path.replace("{" + p.name + "}", quote(str(given.pop(p.name, "")), safe=""))
        query = {p.name: given.pop(p.name) for p in tool.params if p.where == "query" and p.name in given}
        body = given if tool.method in BODY_METHODS else None  # what is left goes where ElevenLabs puts it
        if body is None:
            query.update(given)
        url, credentials = self._via(via, f"tools/{name}")
        return call(
            tool.method,
            url + path,
            secret=self.call_secret(),
            query=query,
            body=body,
            content_type=tool.content_type,
            headers=credentials,
        )

    def simulate_call_start(
        self,
        caller_id: str = "+15550100",
        agent_id: str = "agent_simulated",
        called_number: str = "+15550199",
        call_sid: str = "CA_simulated",
        *,
        via: str = "auto",
    ) -> Any:
        """Ask for a call's personalisation as ElevenLabs does for an inbound Twilio or SIP call."""
        from .caller import call_start

        url, credentials = self._via(via, "initiation")
        return call_start(
            url,
            secret=self.call_secret(),
            headers=credentials,
            caller_id=caller_id,
            agent_id=agent_id,
            called_number=called_number,
            call_sid=call_sid,
        )

    def _via(self, via: str, which: str) -> tuple[str, dict[str, str]]:
        target, credentials = self._reach.target(via)
        return f"{target.rstrip('/')}/{which}", dict(credentials or {})
