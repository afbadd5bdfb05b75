"""The dashboard in a real kernel: refreshes run on its loop, wait while a cell runs, miss nothing."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

pytestmark = pytest.mark.slow  # a real server, kernel, browser or hub: `make test-fast` skips it

CELLS = [
    """
import asyncio, time, elwh_nb
rx = elwh_nb.start("wsec_test_" + "k" * 64, store=":memory:")
dash = rx.dashboard()
before = dash.renders

async def until(condition, deadline=10.0):
    end = time.monotonic() + deadline
    while not condition() and time.monotonic() < end:
        await asyncio.sleep(0.05)   # lets the kernel's loop run the refresh
    return condition()

async def rendered_after(count):
    return await until(lambda: dash.renders > count)
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
    # Displaying the receiver again and again shows one dashboard with one refresh timer.
    """
import gc
from IPython.display import display
from tornado.ioloop import PeriodicCallback

def timers():
    return sum(isinstance(o, PeriodicCallback) and o.is_running() for o in gc.get_objects())

display(rx)
await asyncio.sleep(0)
once = timers()
for _ in range(9):
    display(rx)
await asyncio.sleep(0)
assert timers() == once, (timers(), once)
""",
    """
rx.stop()
assert await rendered_after(dash.renders)  # one last refresh shows it stopped
assert "stopped" in dash.header.value
assert await until(lambda: timers() == once - 2), (timers(), once)  # both dashboards stopped
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
