"""Every notebook runs top to bottom in a fresh kernel; its own asserts make a broken feature fail."""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

pytestmark = pytest.mark.slow  # a real server, kernel, browser or hub: `make test-fast` skips it

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))

PLOT_CELL = re.compile(r"\bplot_\w+\(")  # a cell that calls one of the plot helpers

# What each notebook must show, beyond running without an error.
EXPECTED = {
    "01_quickstart.ipynb": [
        "Give ElevenLabs this URL: http://127.0.0.1:",
        "application/vnd.jupyter.widget-view+json",
    ],
    "02_signatures.ipynb": ["re-serialised", "timestamp_expired", "only secret #2 matches"],
    "03_conversion_timings.ipynb": [
        "processing_s",
        "image/png",
        "turnaround_s",
        "proj_never_back",
        "speech-to-text",
    ],
    "04_failures_and_retries.ipynb": ["body_too_large", "job ", "voice "],
    "05_agent_tools.ipynb": [
        "'found': True",
        "401 {'error': 'no X-Callback-Secret header'}",
        "the caller got: 500: flaky raised RuntimeError",
        "latency_s",
        "query_params_schema",
        "/initiation",
        "application/vnd.jupyter.widget-view+json",  # the live dashboard
    ],
    "06_conversation_analytics.ipynb": [
        "wait_s",
        "image/png",
        "caller waited",  # the slowest call, opened as a chat
        "eval.issue_resolved",
        "not analysed",
        "lookup_booking",
    ],
}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs_clean(path: Path, tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(work)}}
    )
    client.execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    text = "".join(o.get("text", "") + json.dumps(o.get("data", {})) for o in outputs)
    for expected in EXPECTED.get(path.name, []):
        assert expected in text
    assert "wsec_test_" not in text  # the notebook's secret never shows
    for cell in nb.cells:  # a returned figure shows as a picture, not as "<Figure size ...>"
        if cell.cell_type == "code" and PLOT_CELL.search(cell.source):
            assert any("image/png" in o.get("data", {}) for o in cell.outputs), cell.source


def test_every_notebook_has_expectations() -> None:
    assert NOTEBOOKS
    assert {p.name for p in NOTEBOOKS} == set(EXPECTED)


def test_notebooks_are_committed_without_outputs() -> None:
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        assert all(not cell.get("outputs") for cell in nb.cells if cell.cell_type == "code"), path.name


def test_run_all_in_the_quickstart_leaves_it_live_and_notebook_05_runs_beside_it(tmp_path: Path) -> None:
    """Each notebook has its own store, so two live at once in one folder both run clean; and
    Run All ends with the quickstart's receiver listening (its dashboard live)."""
    work = tmp_path / "work"
    work.mkdir()
    resources = {"metadata": {"path": str(work)}}
    quick = nbformat.read(NOTEBOOK_DIR / "01_quickstart.ipynb", as_version=4)
    quick.cells.append(
        nbformat.v4.new_code_cell("assert rx.running, 'Run All ended with a stopped receiver'")
    )
    tools = nbformat.read(NOTEBOOK_DIR / "05_agent_tools.ipynb", as_version=4)
    first = NotebookClient(quick, timeout=300, kernel_name="python3", resources=resources)
    with first.setup_kernel():  # its kernel stays up, receiver and all, while 05 runs
        for index, cell in enumerate(quick.cells):
            first.execute_cell(cell, index)
        NotebookClient(tools, timeout=300, kernel_name="python3", resources=resources).execute()
    for nb in (quick, tools):
        errors = [
            o
            for c in nb.cells
            if c.cell_type == "code"
            for o in c.get("outputs", [])
            if o.output_type == "error"
        ]
        assert not errors, errors
