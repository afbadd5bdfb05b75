"""One full notebook session, everything it leaves behind searched for the secret."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from ..conftest import SECRET

ROOT = Path(__file__).resolve().parents[2]


def test_a_quickstart_session_leaves_the_secret_nowhere(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    work = tmp_path / "work"
    work.mkdir()
    runtime = tmp_path / "runtime"
    monkeypatch.setenv("ELWH_WEBHOOK_SECRET", SECRET)  # the kernel inherits it, as from a real shell
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(runtime))
    shutil.copy(ROOT / "notebooks" / "01_quickstart.ipynb", work)
    nb = nbformat.read(work / "01_quickstart.ipynb", as_version=4)
    client = NotebookClient(
        nb,
        timeout=120,
        kernel_name="python3",
        resources={"metadata": {"path": str(work)}},
        store_widget_state=True,
    )
    client.execute()
    nbformat.write(nb, work / "executed.ipynb")
    assert any("events so far" in json.dumps(cell.get("outputs", [])) for cell in nb.cells)  # it really ran

    leftovers = {}
    for path in [*work.rglob("*"), *runtime.rglob("*")] if runtime.exists() else work.rglob("*"):
        if path.is_file():
            leftovers[str(path)] = path.read_bytes()
    assert any(name.endswith("elwh_events.sqlite") for name in leftovers)  # the store file is searched too
    assert "widgets" in nb.metadata  # and the widget state the notebook saved
    for name, data in leftovers.items():
        text = data.decode("latin-1")
        assert SECRET not in text and SECRET[5:] not in text, name
    assert os.environ["ELWH_WEBHOOK_SECRET"] == SECRET
