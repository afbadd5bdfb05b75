"""Agent tools and call personalisation answered by a real receiver on loopback.

Calls go over HTTP to the receiver's local URL (``via="direct"``); the public route's
share is in tests/test_jupyter_server.py.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import elwh_nb
from elwh_nb import CallError
from elwh_nb._core.tools import SECRET_HEADER

from .conftest import SECRET
from .helpers import signed, wait_for

CALL_SECRET = "wsec_test_callsecret_" + "c" * 24


@pytest.fixture
def rx(tmp_path: Path) -> Iterator[elwh_nb.Receiver]:
    with elwh_nb.start(SECRET, store=tmp_path / "calls.sqlite", call_secret=CALL_SECRET) as receiver:
        yield receiver


def tool_url(rx: elwh_nb.Receiver, name: str, rest: str = "") -> str:
    return f"{rx.local_url}/tools/{name}{rest}"


def add_tools(rx: elwh_nb.Receiver) -> None:
    @rx.tool("get_order", method="GET", path="{order_id}")
    def get_order(order_id: str, include_items: bool = False) -> dict[str, Any]:
        """Look up an order."""
        return {"order_id": order_id, "items": ["tea"] if include_items else []}

    @rx.tool
    def create_order(item: str, quantity: int = 1, system__conversation_id: str = "") -> dict[str, Any]:
        """Create an order."""
        return {"created": item, "quantity": quantity, "conversation": system__conversation_id}

    for method in ("PUT", "PATCH", "DELETE"):

        def change(order_id: str, note: str = "", _m: str = method) -> dict[str, str]:
            """Change an order."""
            return {"method": _m, "order_id": order_id, "note": note}

        rx.tool(f"{method.lower()}_order", method=method)(change)

    @rx.tool("form_order", content_type="application/x-www-form-urlencoded")
    def form_order(item: str, quantity: int) -> dict[str, Any]:
        """An order from a form."""
        return {"item": item, "quantity": quantity}


def call(method: str, url: str, secret: str | None = CALL_SECRET, **kw: Any) -> httpx.Response:
    headers = kw.pop("headers", {})
    if secret is not None:
        headers[SECRET_HEADER] = secret
    return httpx.request(method, url, headers=headers, timeout=30, **kw)


def test_each_method_and_parameter_place(rx: elwh_nb.Receiver) -> None:
    add_tools(rx)
    got = call("GET", tool_url(rx, "get_order", "/A%2F1"), params={"include_items": "true"})
    assert got.status_code == 200 and got.json() == {"order_id": "A/1", "items": ["tea"]}
    assert got.headers["content-type"] == "application/json"
    got = call(
        "POST", tool_url(rx, "create_order"), json={"item": "tea", "system__conversation_id": "conv_1"}
    )
    assert got.json() == {"created": "tea", "quantity": 1, "conversation": "conv_1"}
    for method in ("PUT", "PATCH"):
        got = call(method, tool_url(rx, f"{method.lower()}_order"), json={"order_id": "A1", "note": "x"})
        assert got.json() == {"method": method, "order_id": "A1", "note": "x"}
    got = call("DELETE", tool_url(rx, "delete_order"), params={"order_id": "A9"})
    assert got.json() == {"method": "DELETE", "order_id": "A9", "note": ""}
    got = call("POST", tool_url(rx, "form_order"), data={"item": "tea", "quantity": "3"})
    assert got.json() == {"item": "tea", "quantity": 3}
    assert len(rx.calls) == 6  # each logged before its answer went out
    calls = rx.calls
    assert calls.status.tolist() == [200] * 6
    assert calls.name.tolist()[:2] == ["get_order", "create_order"]
    assert calls.parameters.iloc[0] == {"order_id": "A/1", "include_items": True}
    assert calls.conversation_id.iloc[1] == "conv_1"
    assert (calls.latency_s > 0).all()
    assert '"tea"' in calls.answer.iloc[0]
    latency = elwh_nb.timings(calls)  # per tool: p50, p90, p99 of the answer's latency
    assert (latency.measure == "latency_s").all() and latency["count"].sum() == 6
    assert set(latency.name) == {
        "get_order",
        "create_order",
        "put_order",
        "patch_order",
        "delete_order",
        "form_order",
    }
    assert (latency.p99 >= latency.p50).all()


def test_a_wrong_or_missing_secret_is_a_401_and_recorded(rx: elwh_nb.Receiver) -> None:
    add_tools(rx)
    ran = []

    @rx.tool
    def spy(item: str) -> dict[str, Any]:
        """Notes that it ran."""
        ran.append(item)
        return {}

    for secret in (None, "wsec_test_wrong", CALL_SECRET + "x", ""):
        got = call("POST", tool_url(rx, "spy"), secret=secret, json={"item": "tea"})
        assert got.status_code == 401 and "X-Callback-Secret" in got.json()["error"]
    assert ran == []  # never called
    wait_for(lambda: len(rx.calls) == 4, what="the refused calls in the log")
    assert rx.calls.status.tolist() == [401] * 4
    assert all(h.get("x-callback-secret") in (None, "[redacted]") for h in rx.calls.headers)


def test_unknown_tools_wrong_methods_and_bad_parameters_say_why(rx: elwh_nb.Receiver) -> None:
    add_tools(rx)
    assert call("POST", tool_url(rx, "nope"), json={}).status_code == 404
    assert call("POST", tool_url(rx, "get_order", "/A1")).status_code == 405
    got = call("POST", tool_url(rx, "create_order"), json={"quantity": "two", "item": "tea"})
    assert got.status_code == 400 and "should be an integer" in got.json()["error"]
    got = call(
        "POST",
        tool_url(rx, "create_order"),
        content=b"{not json",
        headers={"Content-Type": "application/json"},
    )
    assert got.status_code == 400


def test_a_raising_handler_answers_500_with_its_type_and_no_traceback(rx: elwh_nb.Receiver) -> None:
    @rx.tool
    def broken(order_id: str) -> dict[str, Any]:
        """Always fails."""
        raise KeyError("internal detail sk_live_do_not_show")

    got = call("POST", tool_url(rx, "broken"), json={"order_id": "A1"})
    assert got.status_code == 500
    assert got.json() == {"error": "broken raised KeyError"}
    assert "Traceback" not in got.text and "sk_live" not in got.text
    wait_for(lambda: len(rx.calls) == 1, what="the failed call in the log")
    assert "Traceback" in rx.calls.error.iloc[0] and "sk_live_do_not_show" in rx.calls.error.iloc[0]


def test_a_slow_handler_is_answered_at_its_deadline_while_webhooks_keep_flowing(rx: elwh_nb.Receiver) -> None:
    release = threading.Event()

    @rx.tool(timeout_s=5)
    def slow(order_id: str) -> dict[str, Any]:
        """Takes its time."""
        release.wait(60)
        return {}

    answers: list[httpx.Response] = []
    caller = threading.Thread(
        target=lambda: answers.append(call("POST", tool_url(rx, "slow"), json={"order_id": "A"}))
    )
    began = time.monotonic()
    caller.start()
    try:
        # While the tool runs, the receiver keeps taking deliveries.
        for seed in range(5):
            body, headers = signed(seed=seed)
            assert httpx.post(rx.local_url, content=body, headers=headers).status_code == 200
        assert caller.is_alive()  # the tool has not answered yet, and webhooks were not held up
        caller.join(30)
        assert answers and answers[0].status_code == 504
        assert "did not answer in time" in answers[0].json()["error"]
        assert 4.5 < time.monotonic() - began < 20  # at its deadline, well before ElevenLabs' 120 s at most
    finally:
        release.set()
    assert len(rx.events) == 5


def test_tools_answer_while_a_cpu_bound_cell_runs(rx: elwh_nb.Receiver) -> None:
    add_tools(rx)
    stop = time.monotonic() + 60
    done: list[int] = []

    def tool_calls() -> None:
        for _ in range(10):
            got = call("GET", tool_url(rx, "get_order", "/A1"))
            assert got.status_code == 200
            done.append(1)

    caller = threading.Thread(target=tool_calls)
    caller.start()
    n = 0
    while caller.is_alive() and time.monotonic() < stop:  # the main thread busy, as a cell would be
        n += sum(i * i for i in range(10_000))
    caller.join(1)
    assert len(done) == 10


def test_call_start_answer_is_validated(rx: elwh_nb.Receiver) -> None:
    url = f"{rx.local_url}/initiation"
    request = {
        "caller_id": "+15550100",
        "agent_id": "agent_1",
        "called_number": "+15550199",
        "call_sid": "CA1",
    }
    assert call("POST", url, json=request).status_code == 404  # none set yet

    @rx.initiation(variables=["customer_name", "tier"])
    def personalise(caller_id: str, call_sid: str) -> dict[str, Any]:
        if caller_id == "+1bad":
            return {"customer_name": {"first": "Ada"}, "tier": 1}
        if caller_id == "+1missing":
            return {"customer_name": "Ada"}
        return {
            "dynamic_variables": {"customer_name": "Ada", "tier": 2},
            "conversation_config_override": {"agent": {"first_message": "Hi Ada"}},
        }

    got = call("POST", url, json=request)
    assert got.status_code == 200
    assert got.json() == {
        "dynamic_variables": {"customer_name": "Ada", "tier": 2},
        "conversation_config_override": {"agent": {"first_message": "Hi Ada"}},
        "type": "conversation_initiation_client_data",
    }
    for caller, message in (("+1bad", "strings, numbers or booleans"), ("+1missing", "\\['tier'\\]")):
        got = call("POST", url, json={**request, "caller_id": caller})
        assert got.status_code == 500
        wait_for(lambda: rx.calls.error.iloc[-1] is not None, what="the error in the log")
        assert __import__("re").search(message, rx.calls.error.iloc[-1])
    wait_for(lambda: len(rx.calls) == 4, what="the calls in the log")
    assert rx.calls.conversation_id.tolist()[1:] == ["CA1"] * 3
    assert rx.calls.kind.tolist() == ["initiation"] * 4


def test_simulators_call_as_elevenlabs_would(rx: elwh_nb.Receiver) -> None:
    add_tools(rx)

    @rx.initiation
    def personalise(caller_id: str) -> dict[str, str]:
        return {"caller": caller_id}

    assert rx.simulate_tool_call("get_order", {"order_id": "A1", "include_items": True}, via="direct") == {
        "order_id": "A1",
        "items": ["tea"],
    }
    assert rx.simulate_tool_call("form_order", {"item": "tea", "quantity": 2}, via="direct") == {
        "item": "tea",
        "quantity": 2,
    }
    assert rx.simulate_call_start(caller_id="+15550123", via="direct")["dynamic_variables"] == {
        "caller": "+15550123"
    }
    with pytest.raises(CallError) as err:
        rx.simulate_tool_call("create_order", {"quantity": 1}, via="direct")
    assert err.value.status == 400


def test_tools_listing_and_schema(rx: elwh_nb.Receiver) -> None:
    add_tools(rx)
    listing = rx.tools
    assert listing.loc["get_order", "method"] == "GET"
    assert listing.loc["get_order", "url"] == f"{rx.url}/tools/get_order/{{order_id}}"
    assert listing.loc["get_order", "header"] == "X-Callback-Secret"
    schema = rx.tools_schema("create_order", secret_id="sec_abc")
    assert schema["api_schema"]["url"] == f"{rx.url}/tools/create_order"
    assert schema["api_schema"]["request_headers"] == {"X-Callback-Secret": {"secret_id": "sec_abc"}}
    with pytest.raises(KeyError):
        rx.tools_schema("nope")
    assert rx.initiation_url == f"{rx.url}/initiation"


def test_the_call_secret_is_shown_only_when_asked(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    import logging

    store = tmp_path / "made.sqlite"
    with elwh_nb.start(SECRET, store=store) as rx:
        made = rx.call_secret()
        assert len(made) >= 40
        add_tools(rx)
        for text in (
            repr(rx),
            str(rx.tools),
            str(rx.tools_schema("get_order")),
            rx._repr_mimebundle_()["text/plain"],
        ):
            assert made not in text
        logging.getLogger("elwh_nb").setLevel(logging.DEBUG)
        try:
            assert call("GET", tool_url(rx, "get_order", "/A1"), secret=made).status_code == 200
            assert call("GET", tool_url(rx, "get_order", "/A1"), secret="wrong").status_code == 401
        finally:
            logging.getLogger("elwh_nb").setLevel(logging.NOTSET)
        wait_for(lambda: len(rx.calls) == 2, what="the calls")
        assert made not in rx.calls.to_string()
    out = capfd.readouterr()
    assert made not in out.out and made not in out.err
    for path in tmp_path.iterdir():
        assert made.encode() not in path.read_bytes(), path
    # The same secret after a restart: the header set in ElevenLabs keeps working.
    with elwh_nb.start(SECRET, store=store) as rx:
        assert rx.call_secret() == made


def test_strangers_names_for_tools_do_not_become_names_in_the_log(rx: elwh_nb.Receiver) -> None:
    add_tools(rx)
    for i in range(20):  # made-up tool names, with and without the secret
        call("POST", tool_url(rx, f"made_up_{i}"), secret=None if i % 2 else CALL_SECRET, json={})
    call("GET", tool_url(rx, "get_order", "/A1"))
    names = set(rx.calls.name.cat.categories)
    assert names == {"(no such tool)", "get_order"}
    assert "made_up_3" in rx.calls.error.iloc[3] and rx.calls.status.iloc[3] == 401
    assert rx.calls.status.iloc[2] == 404


def test_the_call_log_keeps_the_newest_calls_in_memory_and_in_the_file(tmp_path: Path) -> None:
    from elwh_nb import EventStore

    path = tmp_path / "capped.sqlite"
    with EventStore(path, max_calls=300) as store:
        for i in range(1000):
            store.add_call("tool", "t", method="GET", status=401, latency_s=0.001, parameters={"i": i})
        assert len(store.calls) == 300 and store.calls.parameters.iloc[0] == {"i": 700}
    with EventStore(path, max_calls=300) as store:
        assert len(store.calls) == 300 and store.calls.parameters.iloc[-1] == {"i": 999}
        rows = store._db.execute("SELECT count(*) FROM calls").fetchone()[0]
        assert rows <= 300 + 256  # the file is trimmed now and then


def test_a_body_over_the_cap_gets_a_413_answer_and_a_record(rx: elwh_nb.Receiver) -> None:
    add_tools(rx)
    from elwh_nb._core.protocol import MAX_CALL_BODY

    a_little_over = b'{"item": "' + b"x" * (MAX_CALL_BODY + 10) + b'"}'
    got = call(
        "POST",
        tool_url(rx, "create_order"),
        content=a_little_over,
        headers={"Content-Type": "application/json"},
    )
    assert got.status_code == 413 and "over" in got.json()["error"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: read until over the cap, then dropped
        for _ in range(3):
            yield b"y" * (MAX_CALL_BODY // 2)

    got = call("POST", tool_url(rx, "create_order"), content=chunks())
    assert got.status_code == 413
    # Declared far over: answered before any of the body is sent (a raw socket reads the answer).
    import socket
    from urllib.parse import urlsplit

    url = urlsplit(tool_url(rx, "create_order"))
    with socket.create_connection((url.hostname, url.port or 80), timeout=10) as sock:
        sock.sendall(
            f"POST {url.path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {8 * MAX_CALL_BODY}\r\n\r\n".encode()
        )
        head = sock.recv(65536).decode()
    assert head.startswith("HTTP/1.1 413") and "Connection: close" in head
    assert rx.calls.status.tolist() == [413, 413, 413]
    assert call("GET", tool_url(rx, "get_order", "/A1")).status_code == 200  # still answering


def test_a_hanging_tool_holds_up_no_other_tool_nor_call_starts(rx: elwh_nb.Receiver) -> None:
    """Once all tools shared 8 threads: with 8 calls stuck, a fast tool answered 504 five times of five."""
    release = threading.Event()

    @rx.tool(concurrency=2)
    def hang(order_id: str) -> dict[str, Any]:
        """Never answers until released."""
        release.wait(120)
        return {"order_id": order_id}

    @rx.tool(method="GET")
    def fast(word: str) -> dict[str, str]:
        """Answers at once."""
        return {"word": word}

    @rx.initiation(variables=["name"])
    def personalise(caller_id: str) -> dict[str, str]:
        return {"name": "Ada"}

    assert rx.tools.loc["hang", "concurrency"] == 2 and rx.tools.loc["fast", "concurrency"] == 4
    try:
        stuck: list[httpx.Response] = []
        callers = [
            threading.Thread(
                target=lambda: stuck.append(call("POST", tool_url(rx, "hang"), json={"order_id": "A"}))
            )
            for _ in range(10)
        ]
        for caller in callers:
            caller.start()
        for caller in callers:
            caller.join(60)
        # Two ran and did not answer in time; the rest found both of hang's slots taken.
        statuses = sorted(r.status_code for r in stuck)
        assert statuses == [503] * 8 + [504] * 2, statuses
        busy = next(r for r in stuck if r.status_code == 503).json()["error"]
        assert "hang is busy" in busy and "concurrency=2" in busy
        # Its two calls still hang; every other function answers, every time.
        for i in range(5):
            got = call("GET", tool_url(rx, "fast") + f"?word=w{i}")
            assert got.status_code == 200 and got.json() == {"word": f"w{i}"}
        for _ in range(3):
            assert rx.simulate_call_start(caller_id="+15550100", via="direct")["dynamic_variables"] == {
                "name": "Ada"
            }
    finally:
        release.set()
    # Released, hang's slots free again.
    wait_for(
        lambda: call("POST", tool_url(rx, "hang"), json={"order_id": "B"}).status_code == 200, 30, "hang"
    )
    calls = rx.calls
    assert (calls.loc[calls.name == "hang", "status"].value_counts().to_dict()) == {503: 8, 504: 2, 200: 1}


def test_concurrency_is_checked() -> None:
    with elwh_nb.start(SECRET, store=":memory:", call_secret=CALL_SECRET) as rx:
        bad: Any
        for bad in (0, 65, 2.5, True):
            with pytest.raises(ValueError, match="concurrency"):
                rx.tool("t", concurrency=bad)(lambda: None)
