"""The dashboard in a real kernel: refreshes run on its loop, wait while a cell runs, miss nothing."""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbclient import NotebookClient

CELLS = [
    """
import asyncio, time, elwh_nb
rx = elwh_nb.start("wsec_test_" + "k" * 64, store=":memory:")
dash = rx.dashboard()
before = dash.renders

async def rendered_after(count, deadline=10.0):
    end = time.monotonic() + deadline
    while dash.renders <= count and time.monotonic() < end:
        await asyncio.sleep(0.05)   # lets the kernel's loop run the refresh
    return dash.renders > count
""",
    # While this cell runs, the main loop is busy: no refresh can happen, deliveries still land.
    """
rx.simulate(30, via="direct", progress=False)
busy_renders = dash.renders
assert busy_renders == before, (busy_renders, before)
assert len(rx.events) == 30
""",
    # Once the cell is done, the loop runs the refresh, which shows every event.
    """
assert await rendered_after(busy_renders)
assert "<b>30</b> accepted" in dash.counters.value, dash.counters.value
""",
    """
rx.stop()
assert await rendered_after(dash.renders)  # one last refresh shows it stopped
assert "stopped" in dash.header.value
print("dashboard ok")
""",
]


def test_dashboard_refreshes_on_the_kernel_loop(tmp_path: Path) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in CELLS]
    NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    outputs = [o for cell in nb.cells for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert "dashboard ok" in "".join(o.get("text", "") for o in outputs)
