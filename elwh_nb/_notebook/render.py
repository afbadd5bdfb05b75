"""The dashboard's HTML: header, counters, tables, page labels and the inspector's details.

Pure functions of plain values and frames (no widgets), each returning an HTML string;
every value from a delivery or a call is escaped.
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .query import ID_COLUMNS, Page
from .source import EventSource

_LONG = 160  # strings longer than this are shortened in the JSON view
_DOWNLOAD_MAX = 128 * 1024  # raw bodies up to this size get a download link

EVENT_HEADER = [
    "id",
    "received",
    "type",
    "event time",
    "conversation / request / voice",
    "status",
    "duration",
    "lag",
    "deliveries",
]
FAILURE_HEADER = ["id", "received", "status", "reason", "explanation", "from"]
CALL_HEADER = ["id", "received", "name", "method", "status", "latency", "conversation", "parameters", "error"]
_CELL = 80  # characters of parameters shown in a calls table cell
NO_CALLS = (
    "<i>no calls yet: serve a notebook function to ElevenLabs agents with <code>@rx.tool</code> "
    "or <code>@rx.initiation</code> (docs: Agent tools and call personalisation)</i>"
)


def esc(value: Any) -> str:
    """``value`` as escaped text; missing values (None, NaN, NaT) as nothing."""
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NaT:
        return ""
    return html.escape(str(value))


def _seconds(value: Any) -> str:
    return "" if value is None or pd.isna(value) else f"{value:,.1f} s"


def _count(n: int, thing: str) -> str:
    """``<b>1</b> duplicate``, ``<b>2</b> duplicates``."""
    return f"<b>{n:,}</b> {thing}{'' if n == 1 else 's'}"


def duration(seconds: float) -> str:
    """A span as people say it: ``3 s``, ``3 min 13 s``, ``2 h 5 min``."""
    s = max(0, int(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60} s"
    return f"{s // 3600} h {s // 60 % 60} min"


def _millis(value: Any) -> str:
    return "" if value is None or pd.isna(value) else f"{value * 1000:,.1f} ms"


def _shortened(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def json_view(value: Any, key: str = "", depth: int = 0) -> str:
    """Collapsible HTML for a parsed event; long strings shortened, the top level open."""
    label = f"<b>{html.escape(key)}</b>: " if key else ""
    if isinstance(value, dict):
        inner = "".join(f"<li>{json_view(v, str(k), depth + 1)}</li>" for k, v in value.items())
        opened = " open" if depth < 1 else ""
        return f"<details{opened}><summary>{label}{{{len(value)} keys}}</summary><ul>{inner}</ul></details>"
    if isinstance(value, list):
        inner = "".join(f"<li>{json_view(v, str(i), depth + 1)}</li>" for i, v in enumerate(value))
        return f"<details><summary>{label}[{len(value)} items]</summary><ul>{inner}</ul></details>"
    if isinstance(value, str) and len(value) > _LONG:
        text = f'"{html.escape(value[:_LONG])}…" <i>({len(value):,} characters)</i>'
    else:
        text = html.escape(json.dumps(value, ensure_ascii=False))
    return f"{label}<code>{text}</code>"


def table(header: list[str], rows: list[list[str]], *, wrap: tuple[int, ...] = (), pick: bool = False) -> str:
    """A compact HTML table of already escaped cells; the columns in ``wrap`` wrap (long prose).

    ``pick``: each row says its place (``data-row``), for a :class:`.rowtable.RowTable` click.
    """
    head = "".join(f"<th style='text-align:left;padding:2px 8px'>{h}</th>" for h in header)
    cells = [
        "<td style='padding:2px 8px;white-space:normal;min-width:18em'>"
        if i in wrap
        else "<td style='padding:2px 8px;white-space:nowrap'>"
        for i in range(len(header))
    ]
    body = "".join(
        (f"<tr data-row='{n}'>" if pick else "<tr>")
        + "".join(f"{cell}{c}</td>" for cell, c in zip(cells, row, strict=True))
        + "</tr>"
        for n, row in enumerate(rows)
    )
    style = "border-collapse:collapse;font-size:90%"
    return f"<table style='{style}'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def header(source: EventSource, now: float) -> str:
    """One line: listening or stopped, and the URL to give ElevenLabs (a click selects it);
    where it listens, the other URLs and the notes folded under it (the note's start shows).
    ``now`` is a ``time.time()``."""
    stopped_at = getattr(source, "stopped_at", None)
    if source.running:
        state = f"<span style='color:#2a7'>listening</span> for {duration(now - source.started_at)}"
    else:
        ran = "" if stopped_at is None else f" (it ran {duration(stopped_at - source.started_at)})"
        state = f"<b>stopped</b>{ran}"
    line = (
        f"<b>elwh-nb</b> {state} · give ElevenLabs "
        f"<code style='user-select:all;font-weight:bold'>{esc(source.url)}</code>"
    )
    folded = [
        f"receiver on <code>{esc(source.local_url)}</code>; {esc(source.url_story)}",
    ]
    if source.public_url and source.public_url != source.url:
        folded.append(f"public hook route (no login): <code>{esc(source.public_url)}</code>")
    if source.proxy_url:
        folded.append(f"proxy URL (needs a Jupyter login): <code>{esc(source.proxy_url)}</code>")
    if source.url_note:
        folded.append(esc(source.url_note))
    if source.tunnel is not None:
        folded.append(f"tunnel: {esc(source.tunnel.summary)}")
    hint = _first_sentence(source.url_note) if source.url_note else "where it listens"
    return (
        f"{line}<details><summary style='cursor:pointer'>{esc(hint)}</summary>{'<br>'.join(folded)}</details>"
    )


def _first_sentence(text: str, limit: int = 90) -> str:
    first = text.split(". ", 1)[0].rstrip(".")
    return first if len(first) <= limit else first[: limit - 1] + "…"


def counters(
    counts: Mapping[str, int],
    by_reason: Mapping[str, int],
    per_minute: int,
    *,
    calls: int = 0,
    calls_not_ok: int = 0,
    conversations: Mapping[str, Any] | None = None,
) -> str:
    """Accepted, duplicates, failures by reason (most first), events in the last minute, and
    the calls (agent tools, call starts) when there were any, with how many were not a 200."""
    reasons = ", ".join(f"{esc(k)} {v}" for k, v in sorted(by_reason.items(), key=lambda kv: -kv[1]))
    line = (
        f"<b>{counts['events']}</b> accepted · {_count(counts['duplicates'], 'duplicate')} · "
        f"{_count(counts['failures'], 'failure')} ({reasons or 'none'}) · "
        f"{_count(per_minute, 'event')} in the last minute"
    )
    if calls:
        line += f" · {_count(calls, 'call')}" + (
            f" ({calls_not_ok} not answered 200)" if calls_not_ok else ""
        )
    if conversations and conversations.get("count"):
        rate, wait = conversations.get("success_rate"), conversations.get("median_wait_s")
        line += f"<br>{_count(conversations['count'], 'conversation')}"
        line += f" · success <b>{'–' if rate is None else f'{rate:.0%}'}</b>"
        line += f" · median wait <b>{'–' if wait is None else f'{wait:.2f} s'}</b>"
    return line


def events_table(rows: pd.DataFrame) -> str:
    """One page of events; the first id found names the conversation, request or voice."""
    shown = [
        [
            str(i),
            f"{r.received_at:%H:%M:%S}",
            esc(r.event_type),
            f"{r.event_timestamp:%Y-%m-%d %H:%M:%S}" if not pd.isna(r.event_timestamp) else "",
            esc(next((getattr(r, c) for c in ID_COLUMNS if getattr(r, c)), "")),
            esc(r.status or r.failure_reason),  # a call that never started: busy, no-answer
            _seconds(r.duration_s),
            _seconds(r.delivery_lag_s),
            str(r.deliveries),
        ]
        for i, r in rows.iterrows()
    ]
    return table(EVENT_HEADER, shown, pick=True) if shown else "<i>no events match</i>"


def events_label(page: Page) -> str:
    """Which rows of how many the events (or calls) page shows."""
    n = len(page.rows)
    last = page.first + n
    if page.total is not None:
        of = f"of {page.total:,}"
    elif page.more:
        of = f"of more than {last:,}"
    else:
        of = f"of {last:,}"
    return f"newest first · rows {page.first + 1 if n else 0}-{last} {of}"


def failures_table(rows: pd.DataFrame) -> str:
    shown = [
        [
            str(i),
            f"{r.received_at:%H:%M:%S}",
            str(r.status),
            esc(r.reason),
            esc(_first_sentence(r.explanation, 240)),
            esc(r.remote),
        ]
        for i, r in rows.iterrows()
    ]
    # The explanation and where it came from wrap: cut off, neither says anything.
    return table(FAILURE_HEADER, shown, wrap=(4, 5), pick=True) if shown else "<i>no failures</i>"


def failures_label(matched: int, max_failures: int) -> str:
    return f"newest first · {matched:,} kept (the newest {max_failures:,})"


def download_link(path: Path, label: str) -> str:
    """A link that downloads the file ``path``: its bytes inline when small (works in any
    frontend), else a link relative to the notebook's folder (JupyterLab serves it from there)."""
    size = path.stat().st_size
    if size <= _DOWNLOAD_MAX:
        kind = "text/csv" if path.suffix == ".csv" else "application/octet-stream"
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        return f"<a download='{esc(path.name)}' href='data:{kind};base64,{data}'>{esc(label)}</a>"
    return f"<a download='{esc(path.name)}' href='{esc(path.as_posix())}' target='_blank'>{esc(label)}</a>"


def event_detail(event_id: int, raw_body: Callable[[int], bytes], *, json_tree: bool = True) -> str:
    """The whole payload as collapsible JSON (unless ``json_tree`` is False: shown elsewhere),
    and where to get the raw body."""
    try:
        raw = raw_body(event_id)
        payload = json.loads(raw)
    except (KeyError, ValueError) as exc:
        return f"<i>cannot load event {event_id}: {esc(exc)}</i>"
    link = ""
    if len(raw) <= _DOWNLOAD_MAX:  # bigger ones would weigh down the widget state
        data = base64.b64encode(raw).decode("ascii")
        href = f"data:application/json;base64,{data}"
        link = f"<a download='event-{event_id}.json' href='{href}'>download</a> or "
    tree = f"<div style='max-height:400px;overflow:auto'>{json_view(payload)}</div>" if json_tree else ""
    return (
        f"<br><b>event #{event_id}</b> ({len(raw):,} bytes). Raw body: {link}"
        f"<code>rx.store.raw_body({event_id})</code>{tree}"
    )


def failure_detail(failures: pd.DataFrame, failure_id: int) -> str:
    """Reason, plain-words explanation, redacted headers and the body preview."""
    if failure_id not in failures.index:
        return "<i>that failure is no longer kept</i>"
    f = failures.loc[failure_id]
    headers = table(["header", "value"], [[esc(k), esc(v)] for k, v in f.headers.items()])
    details = _beyond(f.explanation, f.details)
    details = f"<pre style='white-space:pre-wrap'>{esc(details)}</pre>" if details else ""
    return (
        f"<b>failure #{failure_id}: {esc(f.reason)}</b>, answered {f.status}, from {esc(f.remote)} "
        f"to {esc(f.path)} at {f.received_at:%Y-%m-%d %H:%M:%S} UTC"
        f"<p>{esc(f.explanation)}</p>{details}<b>headers</b> (credentials redacted){headers}"
        f"<b>body</b> ({f.body_bytes:,} bytes)"
        f"<pre style='white-space:pre-wrap'>{esc(f.body_preview)}</pre>"
    )


def _beyond(explanation: str, details: Any) -> str:
    """The diagnosis without its first paragraph when that repeats the explanation shown above it."""
    if not isinstance(details, str):
        return ""
    first, _, rest = details.partition("\n\n")
    return rest.strip("\n") if explanation and explanation in first else details


def _last_line(text: Any) -> str:
    """An error's last line (a traceback's names the exception)."""
    lines = [line for line in text.splitlines() if line.strip()] if isinstance(text, str) else []
    return lines[-1].strip() if lines else ""


def calls_table(rows: pd.DataFrame) -> str:
    """One page of calls: the parameters shortened, of an error its last line."""
    shown = [
        [
            str(i),
            f"{r.received_at:%H:%M:%S}",
            esc(r["name"]),  # (r.name is the row's index: the call id)
            esc(r.method),
            str(r.status),
            _millis(r.latency_s),
            esc(r.conversation_id),
            esc(_shortened(json.dumps(r.parameters, ensure_ascii=False, default=str), _CELL)),
            esc(_shortened(_last_line(r.error), 120)),
        ]
        for i, r in rows.iterrows()
    ]
    return table(CALL_HEADER, shown, pick=True) if shown else "<i>no calls match</i>"


def _answer(text: str) -> str:
    try:
        return json_view(json.loads(text), "answer")
    except ValueError:  # shortened past the store's limit: no longer JSON
        return f"<b>answer</b><pre style='white-space:pre-wrap'>{esc(text)}</pre>"


def call_detail(calls: pd.DataFrame, call_id: int) -> str:
    """What came (parameters, redacted headers), what went back (answer or error), and how fast."""
    if call_id not in calls.index:
        return f"<i>no call #{call_id} is kept</i>"
    c = calls.loc[call_id]
    conversation = f", conversation <code>{esc(c.conversation_id)}</code>" if c.conversation_id else ""
    error = f"<b>error</b><pre style='white-space:pre-wrap'>{esc(c.error)}</pre>" if c.error else ""
    answer = _answer(c.answer) if isinstance(c.answer, str) else ""
    headers = table(["header", "value"], [[esc(k), esc(v)] for k, v in c.headers.items()])
    return (
        f"<b>call #{call_id}: {esc(c['name'])}</b> ({esc(c.kind)}), {esc(c.method)}, answered {c.status} "
        f"in {_millis(c.latency_s)}, from {esc(c.remote)} at {c.received_at:%Y-%m-%d %H:%M:%S} UTC"
        f"{conversation}<div style='max-height:400px;overflow:auto'>{json_view(c.parameters, 'parameters')}"
        f"{answer}</div>{error}<b>headers</b> (credentials redacted){headers}"
    )
