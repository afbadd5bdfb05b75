"""A sender that plays ElevenLabs: realistic signed deliveries over real HTTP, with faults to learn from.

Each delivery is signed when it is sent. Faults are what goes wrong in practice (wrong
secret, an old timestamp, a body changed on the way, ...); retries after a 5xx follow
ElevenLabs' schedule, scaled down in time. The result is a DataFrame of every attempt.
"""

from __future__ import annotations

import asyncio
import json
import random
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from .._core.payloads import PayloadFactory, to_body
from .._core.signature import sign

#: What the sender can get wrong on purpose, and the status a correct receiver answers.
FAULTS: dict[str, int] = {
    "wrong_secret": 401,
    "expired": 401,
    "tampered": 401,
    "reserialised": 401,
    "malformed_header": 400,
    "duplicate": 200,
    "oversized": 413,
}
# ElevenLabs retries (today only post_call_transcription) after 5xx, 429 or 408:
# immediately, then after 30 s, 2 min, 8 min and 30 min, with +-10% jitter.
RETRY_DELAYS_S = (0.0, 30.0, 120.0, 480.0, 1800.0)
RETRY_STATUSES = {408, 429}  # and any 5xx
RETRIED_TYPES = ("post_call_transcription",)
_OTHER_SECRET = "wsec_test_" + "0" * 64  # signs the wrong_secret fault; obviously not anyone's


@dataclass
class _Delivery:
    seq: int
    event_type: str | None
    fault: str | None
    body: bytes
    timestamp_offset: float = 0.0
    header: str | None = None  # fixed header (malformed); else signed when sent
    second: bool = False  # the repeat of a duplicate, sent after its first copy


def _fault_list(n: int, faults: Any, rng: random.Random) -> list[str | None]:
    """One entry per delivery: None, or the fault it carries."""
    if faults is None or faults == 0:
        return [None] * n
    if isinstance(faults, (int, float)) and not isinstance(faults, bool):
        if not 0 <= faults <= 1:
            raise ValueError("faults as a number is the share of faulty deliveries, from 0 to 1")
        kinds = [k for k in FAULTS if k != "oversized"]
        count = round(n * faults)
        chosen: list[str | None] = [kinds[i % len(kinds)] for i in range(count)]
    else:
        counts = (
            dict(faults)
            if isinstance(faults, Mapping)
            else {name: 1 for name in ([faults] if isinstance(faults, str) else faults)}
        )
        unknown = set(counts) - set(FAULTS)
        if unknown:
            raise ValueError(f"unknown fault(s) {sorted(unknown)}; known: {', '.join(FAULTS)}")
        chosen = [name for name, k in counts.items() for _ in range(int(k))]
    plan = chosen + [None] * max(0, n - len(chosen))
    rng.shuffle(plan)
    return plan


def burst(
    n: int, *, seed: int | None = None, types: Sequence[str] | Mapping[str, float] | None = None
) -> tuple[list[dict[str, Any]], dict[str, tuple[str, float]]]:
    """What :func:`send` makes of a count: ``n`` realistic events sent now, and the jobs behind
    them (job id -> kind, unix seconds submitted) for ``rx.expect``, as whoever submitted them knows."""
    factory = PayloadFactory(seed)
    return factory.batch(n, types=types, span_s=0.0), factory.submitted


def _plan(
    events: int | Iterable[Mapping[str, Any] | bytes],
    faults: Any,
    *,
    seed: int | None,
    max_body: int,
    types: Sequence[str] | Mapping[str, float] | None,
) -> list[_Delivery]:
    rng = random.Random(seed)
    items: list[Mapping[str, Any] | bytes] = (
        list(burst(events, seed=seed, types=types)[0]) if isinstance(events, int) else list(events)
    )
    bodies = [item if isinstance(item, bytes) else to_body(item) for item in items]
    kinds = _fault_list(len(bodies), faults, rng)
    while len(bodies) < len(kinds):  # more faults than events: reuse bodies
        bodies.append(bodies[len(bodies) % max(1, len(items))] if items else b"{}")
    plan: list[_Delivery] = []
    for body, fault in zip(bodies, kinds, strict=True):
        try:
            event_type = json.loads(body).get("type") or json.loads(body).get("event_type")
        except (ValueError, AttributeError):
            event_type = None
        d = _Delivery(len(plan), event_type, fault, body)
        if fault == "expired":
            d.timestamp_offset = -3600.0
        elif fault == "malformed_header":
            d.header = "t=yesterday,v0=not-a-signature"
        elif fault == "oversized":
            d.body = b'{"type":"post_call_audio","data":{"full_audio":"' + b"A" * (max_body + 1) + b'"}}'
        plan.append(d)
        if fault == "duplicate":  # the same body again, signed anew: what a retry looks like
            plan.append(_Delivery(len(plan), event_type, "duplicate", body, second=True))
    return plan


def _signed(d: _Delivery, secret: str) -> tuple[bytes, str]:
    """(body as sent, header) for a delivery, signed now."""
    if d.header is not None:
        return d.body, d.header
    key = _OTHER_SECRET if d.fault == "wrong_secret" else secret
    header = sign(d.body, key, time.time() + d.timestamp_offset)
    body = d.body
    if d.fault == "tampered":  # changed on the way, after signing
        body = body[:-1] + b',"tampered":true}' if body.endswith(b"}") else body + b" "
    elif d.fault == "reserialised":
        body = json.dumps(json.loads(d.body)).encode()
    return body, header


async def _send_all(
    url: str,
    secret: str,
    plan: list[_Delivery],
    *,
    concurrency: int,
    headers: Mapping[str, str],
    retry: bool,
    retry_scale: float,
    timeout: float,
    progress: Any,
) -> list[dict[str, Any]]:
    import aiohttp

    rows: list[dict[str, Any]] = []
    gate = asyncio.Semaphore(concurrency)
    rng = random.Random(0)
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
    client_timeout = aiohttp.ClientTimeout(total=timeout)

    async with aiohttp.ClientSession(connector=connector, timeout=client_timeout) as session:

        async def one(d: _Delivery) -> None:
            attempt = 0
            while True:
                attempt += 1
                body, header = _signed(d, secret)
                sent_headers = {"Content-Type": "application/json", "User-Agent": "elwh-nb-sender", **headers}
                if header:
                    sent_headers["ElevenLabs-Signature"] = header
                row: dict[str, Any] = {
                    "seq": d.seq,
                    "event_type": d.event_type,
                    "fault": d.fault,
                    "attempt": attempt,
                    "expected": FAULTS.get(d.fault or "", 200),
                    "bytes": len(body),
                    "sent_at": pd.Timestamp.now(tz="UTC"),
                }
                async with gate:
                    t0 = time.perf_counter()  # the round trip, not the wait for a free slot
                    try:
                        # Like curl, wait for "100 Continue" before sending a big body.
                        big = len(body) > 1024 * 1024
                        async with session.post(
                            url, data=body, headers=sent_headers, expect100=big
                        ) as response:
                            text = await response.read()
                            row["status"] = response.status
                            try:
                                answer = json.loads(text)
                            except ValueError:
                                answer = {}
                            if isinstance(answer, dict):
                                row["reason"] = answer.get("reason")
                                row["id"] = answer.get("id")
                                row["duplicate"] = answer.get("duplicate")
                    except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
                        row["status"] = None
                        row["error"] = f"{type(exc).__name__}: {exc}"[:200]
                    row["latency_ms"] = (time.perf_counter() - t0) * 1000
                rows.append(row)
                status = row["status"]
                retryable = (
                    status is not None
                    and (status >= 500 or status in RETRY_STATUSES)
                    and d.event_type in RETRIED_TYPES
                )
                if not (retry and retryable and attempt <= len(RETRY_DELAYS_S)):
                    break
                delay = RETRY_DELAYS_S[attempt - 1] * retry_scale
                await asyncio.sleep(delay * rng.uniform(0.9, 1.1))
            if progress is not None:
                progress.update(1)

        # Repeats go after their first copy, as a retry would.
        await asyncio.gather(*(one(d) for d in plan if not d.second))
        await asyncio.gather(*(one(d) for d in plan if d.second))
    return rows


def _run(coro: Any) -> Any:
    """Run a coroutine to the end on a fresh loop in a worker thread (a kernel's loop is busy)."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(coro)
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=target, name="elwh-sender", daemon=True)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


COLUMNS = [
    "seq", "event_type", "fault", "attempt", "status", "expected", "outcome", "ok", "reason",
    "id", "duplicate", "latency_ms", "bytes", "sent_at", "error",
]  # fmt: skip


def outcome(status: float | None) -> str:
    """What ElevenLabs makes of an answer: ``accepted`` (200), ``retryable`` (5xx, 429, 408),
    ``refused`` (any other code: never retried), or ``no answer``."""
    if status is None or status != status:  # None or NaN
        return "no answer"
    if status == 200:
        return "accepted"
    if status >= 500 or status in RETRY_STATUSES:
        return "retryable"
    return "refused"


def _verdict(frame: pd.DataFrame, strict: bool) -> pd.Series:
    """Each attempt's ``ok``: whether its delivery's last answer is one a correct receiver gives.

    By default an answer is right when ElevenLabs does the same with it as with the kit's
    answer (its :func:`outcome`), so a receiver written from ElevenLabs' docs (401 for every
    signature problem) is right; ``strict`` wants the kit's exact code. A delivery is judged
    by its last attempt: a 5xx, retried, then a 200 is a success.
    """
    if strict:
        right = frame["status"] == frame["expected"]
    else:
        right = frame["status"].map(outcome) == frame["expected"].map(outcome)
    return right.groupby(frame["seq"]).transform("last").astype(bool)


def send(
    url: str,
    secret: str,
    events: int | Iterable[Mapping[str, Any] | bytes] = 20,
    *,
    faults: Any = None,
    concurrency: int = 8,
    headers: Mapping[str, str] | None = None,
    types: Sequence[str] | Mapping[str, float] | None = None,
    retry: bool = True,
    retry_scale: float = 0.001,
    max_body: int = 64 * 1024 * 1024,
    timeout: float = 60.0,
    seed: int | None = None,
    progress: bool | None = None,
    strict: bool = False,
) -> pd.DataFrame:
    """POST signed deliveries to ``url`` as ElevenLabs would; returns one row per attempt.

    ``events`` is a count (realistic events from the payload factory, of ``types``) or
    events/bodies of your own. ``faults`` is a share of faulty deliveries (``0.2``), a
    list of fault names, or a mapping of name to count; names are those of ``FAULTS``.
    Retries after a 5xx, 429 or 408 follow ElevenLabs' schedule times ``retry_scale``. A
    progress bar shows when sending 50 or more (``progress=`` forces it on or off).

    ``expected`` is the status this kit's receiver answers, ``outcome`` what ElevenLabs
    makes of the status received, and ``ok`` whether the delivery ended as a correct
    receiver would have it: judged by its last attempt (a 5xx, retried, then a 200 is a
    success), by the class of the answer (200 accepted, other 4xx refused, 5xx/429/408
    retried), or by the exact code with ``strict=True``.
    """
    plan = _plan(events, faults, seed=seed, max_body=max_body, types=types)
    bar = None
    if progress or (progress is None and len(plan) >= 50):
        from tqdm.auto import tqdm

        bar = tqdm(total=len(plan), desc="sending", unit="delivery")
    try:
        rows = _run(
            _send_all(
                url,
                secret,
                plan,
                concurrency=concurrency,
                headers=dict(headers or {}),
                retry=retry,
                retry_scale=retry_scale,
                timeout=timeout,
                progress=bar,
            )
        )
    finally:
        if bar is not None:
            bar.close()
    frame = pd.DataFrame(rows, columns=COLUMNS).sort_values(["seq", "attempt"], ignore_index=True)
    frame["outcome"] = frame["status"].map(outcome)
    frame["ok"] = _verdict(frame, strict)
    return frame
