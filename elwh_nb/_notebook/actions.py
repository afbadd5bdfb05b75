"""The dashboard's actions row: send test events, replay the selected event, export the filtered rows."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path

import ipywidgets as w  # type: ignore[import-untyped]

from . import render
from .source import EventSource
from .tabs import DeliveriesTab, Pick

FAULT_MIXES = {"no faults": None, "some faults (20%)": 0.2, "many faults (50%)": 0.5}


class Actions(w.HBox):
    """The buttons that act through the source (the panel never holds the secret).

    What they did goes to :attr:`message` (shown by the panel under the row); ``changed``
    re-renders the panel after a replay.
    """

    def __init__(self, source: EventSource, deliveries: DeliveriesTab, changed: Callable[[], object]) -> None:
        self.source = source
        self.deliveries = deliveries
        self._changed = changed
        self.send_count = w.BoundedIntText(
            value=20, min=1, max=10_000, description="send", layout=w.Layout(width="160px")
        )
        self.fault_mix = w.Dropdown(
            options=list(FAULT_MIXES), value="some faults (20%)", layout=w.Layout(width="180px")
        )
        fit = {"layout": w.Layout(width="auto")}  # a label cut to "Send test ..." says little
        self.send_button = w.Button(description="Send test events", icon="paper-plane", **fit)
        self.replay_button = w.Button(
            description="Replay selected",
            icon="redo",
            tooltip="an event: deliver it again (a duplicate); a failure: verify it again with the secret",
            **fit,
        )
        self.as_new = w.Checkbox(
            value=False,
            description="as new",
            indent=False,
            tooltip="replaying an event runs the on_event callbacks again, as for a new one",
            layout=w.Layout(width="80px"),
        )
        self.curl_button = w.Button(
            description="Copy as curl",
            icon="terminal",
            tooltip="a curl command that delivers it again",
            **fit,
        )
        self.export_format = w.Dropdown(
            options=["csv", "parquet"], value="csv", layout=w.Layout(width="90px")
        )
        self.export_button = w.Button(description="Export filtered", icon="download", **fit)
        self.message = w.HTML()
        super().__init__(
            [
                self.send_count,
                self.fault_mix,
                self.send_button,
                self.replay_button,
                self.as_new,
                self.curl_button,
                self.export_format,
                self.export_button,
            ]
        )
        self.send_button.on_click(lambda _: self.send_test_events())
        self.replay_button.on_click(lambda _: self.replay_selected())
        self.curl_button.on_click(lambda _: self.curl_selected())
        self.export_button.on_click(lambda _: self.export())
        self.follow(source.running)

    def follow(self, running: bool) -> None:
        """Sending and replaying need a receiver that listens: off, and saying why, while it is stopped."""
        for button, does in ((self.send_button, "send"), (self.replay_button, "replay")):
            button.disabled = not running
            button.tooltip = "" if running else f"the receiver is stopped: start one to {does}"
        if not hasattr(self.source, "curl"):  # a hub connection: the secret stays in the service
            self.curl_button.disabled = True
            self.curl_button.tooltip = "only the receiver that holds the secret can sign"

    def _stopped(self) -> bool:
        if self.source.running:
            return False
        self.message.value = (
            "the receiver is stopped: nothing was sent (start one with <code>elwh_nb.start()</code>)"
        )
        return True

    def send_test_events(self, wait: bool = False) -> threading.Thread:
        """Play ElevenLabs in the background (the receiver answers; the next refresh shows it)."""
        n, faults = self.send_count.value, FAULT_MIXES[self.fault_mix.value]
        if self._stopped():
            done = threading.Thread(target=lambda: None, name="elwh-dashboard-send")
            done.start()  # nothing to send; a caller may still join it
            return done

        def run() -> None:
            try:
                sent = self.source.simulate(n, faults=faults, progress=False)
                self.message.value = f"sent {len(sent)} deliveries: {int(sent.ok.sum())} answered as expected"
            except Exception as exc:
                self.message.value = f"sending failed: {render.esc(exc)}"

        thread = threading.Thread(target=run, name="elwh-dashboard-send", daemon=True)
        thread.start()
        if wait:
            thread.join()
        return thread

    def replay_selected(self) -> None:
        """Replay the row picked: an event is delivered again, signed anew (a duplicate; "as new"
        runs the callbacks again); a failure is verified again with the secret now."""
        chosen: Pick | None = self.deliveries.pick.value
        if self._stopped():
            return
        if chosen is None or chosen[0] not in ("event", "failure"):
            self.message.value = "click an event or a failure to replay it"
            return
        kind, row_id = chosen
        if kind == "failure":
            self.message.value = self._replay_failure(row_id)
        else:
            sent = self.source.replay(row_id, as_new=self.as_new.value)
            last = sent.iloc[-1]
            said = "a duplicate, kept once" if last.get("duplicate") else "stored"
            ran = (
                "; the on_event callbacks ran on it again"
                if last.get("callbacks_run")
                else " (callbacks did not run: tick 'as new' for that)"
            )
            self.message.value = f"replayed event #{row_id}: answered {last.status}, {said}{ran}"
        self._changed()

    def _replay_failure(self, failure_id: int) -> str:
        replay = getattr(self.source, "replay_failure", None)
        if replay is None:  # a hub connection: the secret stays in the service
            return "only the receiver that holds the secret can verify a failure again"
        try:
            return render.esc(replay(failure_id))
        except KeyError as exc:
            return f"cannot replay failure #{failure_id}: {render.esc(exc.args[0] if exc.args else exc)}"

    def curl_selected(self) -> None:
        """Show a curl command that delivers the selected event again, signed now (see ``rx.curl``)."""
        chosen: Pick | None = self.deliveries.pick.value
        if chosen is None or chosen[0] != "event":
            self.message.value = "pick an accepted event to copy as curl"
            return
        command = self.source.curl(chosen[1])  # type: ignore[attr-defined]
        self.message.value = (
            f"event #{chosen[1]} as curl (signed now: good for the receiver's tolerance, 30 minutes by "
            "default; click to select it all):"
            f"<pre style='user-select:all;white-space:pre-wrap'>{render.esc(command)}</pre>"
        )

    def export(self, directory: str | Path = ".") -> Path | None:
        """Write the filtered rows (events or failures, as shown) to CSV or Parquet in ``directory``."""
        frame = self.deliveries.selected()
        if "headers" in frame.columns:
            frame = frame.assign(headers=frame["headers"].map(json.dumps))
        stamp = time.strftime("%Y%m%d-%H%M%S")
        path = Path(directory) / f"elwh_{self.deliveries.outcome.value}_{stamp}.{self.export_format.value}"
        try:
            if self.export_format.value == "csv":
                frame.to_csv(path)
            else:
                frame.to_parquet(path)
        except ImportError as exc:
            self.message.value = (
                f"Parquet needs pyarrow: <code>pip install pyarrow</code> ({render.esc(exc)})"
            )
            return None
        link = render.download_link(path, "download it")
        self.message.value = f"wrote {len(frame):,} rows to <code>{render.esc(path)}</code>: {link}"
        return path
