"""Agent tools and call personalisation without a server: schemas, parameters, answers.

The official ``elevenlabs`` package is the oracle for the shapes: each generated tool
definition must validate as its ``WebhookToolConfigInput`` without losing a field, and the
override keys the kit allows must exist in its models.
"""

from __future__ import annotations

import enum
import json
from typing import Any, Literal, TypedDict

import pytest

from elwh_nb import CallError
from elwh_nb._core.initiation import OVERRIDES, Initiation, answer
from elwh_nb._core.tools import FORM, SECRET_HEADER, Tool, encode_answer


def get_order(order_id: str, include_items: bool = False) -> dict[str, Any]:
    """Look up an order by its id.

    Args:
        order_id: The order's id, like A1.
        include_items: Whether to list the items too.
    """
    return {"order_id": order_id, "items": [] if include_items else None}


class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Address(TypedDict):
    street: str
    zip: int


def book(
    day: str,
    seats: int,
    price: float,
    tags: list[str],
    address: Address,
    colour: Colour = Colour.RED,
    size: Literal["s", "m", "l"] = "m",
    note: str | None = None,
    system__conversation_id: str = "",
) -> dict[str, Any]:
    """Book a table."""
    return {}


def oracle(definition: dict[str, Any]) -> None:
    """The SDK's model of a webhook tool takes the definition whole."""
    tool_models = pytest.importorskip("elevenlabs.types.webhook_tool_config_input")
    model = tool_models.WebhookToolConfigInput.model_validate(definition)
    assert model.model_dump(exclude_none=True, by_alias=True, mode="json") == definition


def test_a_get_tool_puts_literals_in_the_query_with_docstring_descriptions() -> None:
    tool = Tool(get_order, method="GET")
    d = tool.definition("https://h.example/elwh/hook/RID/tools/get_order", secret_id="sec_1")
    oracle(d)
    assert d["name"] == "get_order" and d["description"] == "Look up an order by its id."
    api = d["api_schema"]
    assert api["method"] == "GET" and api["url"].endswith("/tools/get_order")
    assert api["query_params_schema"] == {
        "properties": {
            "order_id": {"type": "string", "description": "The order's id, like A1."},
            "include_items": {"type": "boolean", "description": "Whether to list the items too."},
        },
        "required": ["order_id"],
    }
    assert "request_body_schema" not in api
    assert api["request_headers"] == {SECRET_HEADER: {"secret_id": "sec_1"}}
    assert 5 <= d["response_timeout_secs"] <= 120


def test_a_post_tool_sends_every_type_in_the_body() -> None:
    d = Tool(book).definition("https://h.example/t/book")
    oracle(d)
    body = d["api_schema"]["request_body_schema"]
    props = body["properties"]
    assert props["seats"]["type"] == "integer" and props["price"]["type"] == "number"
    assert props["tags"] == {"type": "array", "items": {"type": "string"}}
    assert props["address"]["type"] == "object" and props["address"]["required"] == ["street", "zip"]
    assert props["colour"]["enum"] == ["red", "blue"] and props["size"]["enum"] == ["s", "m", "l"]
    assert props["note"]["type"] == "string"
    # Filled in by ElevenLabs, not asked of the LLM:
    assert props["system__conversation_id"] == {
        "type": "string",
        "dynamic_variable": "system__conversation_id",
    }
    assert body["required"] == ["day", "seats", "price", "tags", "address"]
    assert d["api_schema"]["content_type"] == "application/json"


def test_path_parameters_are_in_the_url_and_always_required() -> None:
    tool = Tool(get_order, method="GET", path="{order_id}")
    d = tool.definition("https://h.example/t/get_order")
    oracle(d)
    assert d["api_schema"]["url"] == "https://h.example/t/get_order/{order_id}"
    assert d["api_schema"]["path_params_schema"]["order_id"]["type"] == "string"
    assert tool.arguments("/A%201", "include_items=true", b"", None) == (
        {"order_id": "A 1", "include_items": True},
        {},
    )
    with pytest.raises(CallError) as err:
        tool.arguments("/A1/extra", "", b"", None)
    assert err.value.status == 404


@pytest.mark.parametrize(
    ("query", "body", "ctype", "expected"),
    [
        ("order_id=A1", b"", None, {"order_id": "A1"}),
        ("order_id=A1&include_items=0", b"", None, {"order_id": "A1", "include_items": False}),
    ],
)
def test_query_strings_become_typed_arguments(
    query: str, body: bytes, ctype: str | None, expected: dict[str, Any]
) -> None:
    assert Tool(get_order, method="GET").arguments("", query, body, ctype)[0] == expected


def test_json_and_form_bodies_become_typed_arguments() -> None:
    json_tool, form_tool = Tool(get_order), Tool(get_order, content_type=FORM)
    assert json_tool.arguments(
        "", "", b'{"order_id": "A1", "include_items": true, "x": 1}', "application/json"
    ) == (
        {"order_id": "A1", "include_items": True},
        {"x": 1},
    )
    assert form_tool.arguments("", "", b"order_id=A1&include_items=yes", FORM)[0] == {
        "order_id": "A1",
        "include_items": True,
    }
    oracle(form_tool.definition("https://h.example/t"))
    assert form_tool.definition("https://h.example/t")["api_schema"]["content_type"] == FORM


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{}", "missing parameter 'order_id'"),
        (b'{"order_id": 5}', "should be a string"),
        (b'{"order_id": "A1", "include_items": "yes"}', "should be a boolean"),
        (b"[1]", "not an object"),
        (b"{nope", "not JSON"),
    ],
)
def test_a_call_that_does_not_fit_is_a_400_saying_why(body: bytes, message: str) -> None:
    with pytest.raises(CallError, match=message) as err:
        Tool(get_order).arguments("", "", body, "application/json")
    assert err.value.status == 400


def test_numbers_are_checked_strictly() -> None:
    def f(n: int, x: float) -> int:
        """F."""
        return n

    tool = Tool(f)
    assert tool.arguments("", "", b'{"n": 3, "x": 2}', None)[0] == {"n": 3, "x": 2}
    for bad in (b'{"n": true, "x": 1}', b'{"n": 1.5, "x": 1}', b'{"n": 1, "x": "2"}'):
        with pytest.raises(CallError):
            tool.arguments("", "", bad, None)
    with pytest.raises(CallError, match="should be an integer"):
        Tool(f, method="GET").arguments("", "n=three&x=1", b"", None)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"method": "TRACE"}, "method must be"),
        ({"method": "GET", "path": "{nope}"}, "does not take"),
        ({"timeout_s": 300}, "timeout_s"),
        ({"query": ["zzz"]}, "does not take"),
    ],
)
def test_bad_tool_options_say_so_at_once(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Tool(get_order, **options)


def test_types_that_cannot_travel_are_refused_when_the_tool_is_made() -> None:
    def nodoc(x: str) -> None:
        return None

    with pytest.raises(ValueError, match="needs a description"):
        Tool(nodoc)

    def complex_arg(x: complex) -> None:
        """X."""

    with pytest.raises(TypeError, match="cannot describe"):
        Tool(complex_arg)

    def listy(items: list[str]) -> None:
        """X."""

    with pytest.raises(ValueError, match="holds only strings"):
        Tool(listy, method="GET", path="{items}")


def test_answers_are_json_and_anything_else_is_a_500() -> None:
    import datetime

    import numpy as np

    assert json.loads(encode_answer({"n": np.int64(3), "at": datetime.date(2026, 1, 2)}, "t")) == {
        "n": 3,
        "at": "2026-01-02",
    }
    with pytest.raises(CallError) as err:
        encode_answer({"x": object()}, "t")
    assert err.value.status == 500
    with pytest.raises(CallError):
        encode_answer(float("nan"), "t")


# -- call personalisation ------------------------------------------------------------------
def test_variables_alone_are_wrapped_in_the_documented_answer() -> None:
    assert answer({"name": "Ada", "tier": 2, "vip": True}) == {
        "type": "conversation_initiation_client_data",
        "dynamic_variables": {"name": "Ada", "tier": 2, "vip": True},
    }


def test_a_whole_answer_with_overrides_is_checked_and_kept() -> None:
    whole = {
        "dynamic_variables": {"name": "Ada"},
        "conversation_config_override": {
            "agent": {"prompt": {"prompt": "Be brief."}, "first_message": "Hi Ada", "language": "en"},
            "tts": {"voice_id": "v1"},
        },
        "user_id": "u1",
    }
    got = answer(whole, ["name"])
    assert got == {"type": "conversation_initiation_client_data", **whole}
    sdk = pytest.importorskip("elevenlabs.types.conversation_initiation_client_data_request_input")
    model = sdk.ConversationInitiationClientDataRequestInput.model_validate(got)
    assert model.conversation_config_override.agent.first_message == "Hi Ada"


@pytest.mark.parametrize(
    ("result", "variables", "message"),
    [
        (
            {"name": "Ada"},
            ["name", "tier"],
            "did not give the dynamic variables the agent uses: \\['tier'\\]",
        ),
        ({"name": {"first": "Ada"}}, [], "values must be strings, numbers or booleans"),
        ({"name": None}, [], "values must be"),
        ({"conversation_config_override": {"agent": {"voice": "x"}}}, [], "does not document"),
        ({"conversation_config_override": {"tts": "v1"}}, [], "not a dict"),
        ({"dynamic_variables": {}, "colour": "red"}, [], "does not know"),
        (["Ada"], [], "return a dict"),
    ],
)
def test_a_wrong_answer_is_a_500_saying_what_is_wrong(
    result: Any, variables: list[str], message: str
) -> None:
    with pytest.raises(CallError, match=message) as err:
        answer(result, variables, "greet")
    assert err.value.status == 500


def test_the_allowed_overrides_exist_in_the_sdk() -> None:
    pytest.importorskip("elevenlabs")
    from elevenlabs.types import conversation_config_client_override_input as top

    def fields(model: Any) -> dict[str, Any]:
        return dict(model.model_fields)

    def check(tree: dict[str, Any], model: Any, where: str) -> None:
        known = fields(model)
        for key, inner in tree.items():
            assert key in known, f"{where}.{key} is not in the SDK's {model.__name__}"
            if inner is not None:
                annotation = known[key].annotation
                inner_model = next(
                    a for a in getattr(annotation, "__args__", (annotation,)) if hasattr(a, "model_fields")
                )
                check(inner, inner_model, f"{where}.{key}")

    check(OVERRIDES, top.ConversationConfigClientOverrideInput, "conversation_config_override")


def test_an_initiation_function_gets_only_the_fields_it_names() -> None:
    def greet(caller_id: str, call_sid: str) -> dict[str, str]:
        return {}

    init = Initiation(greet)
    request = {"caller_id": "+1", "agent_id": "a", "called_number": "+2", "call_sid": "CA1", "extra": 1}
    assert init.arguments(request) == {"caller_id": "+1", "call_sid": "CA1"}

    def everything(**call: Any) -> dict[str, str]:
        return {}

    assert set(Initiation(everything).arguments(request)) == {
        "caller_id",
        "agent_id",
        "called_number",
        "call_sid",
    }

    def wrong(phone: str) -> None:
        return None

    with pytest.raises(ValueError, match="takes only"):
        Initiation(wrong)
