"""The manual's home: a short README that links to guides that exist, and a docs site that
builds with warnings as errors and documents every public name (``make docs`` runs the notebooks
too; here they are not run: tests/test_notebooks.py does that)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import elwh_nb

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
SPHINX = (sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html")  # as `make docs`


def test_the_readme_reads_in_five_minutes_and_its_links_lead_somewhere() -> None:
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 220  # about 200 lines: the rest lives in the guides
    for section in ("## Set-up", "## Five minutes", "## The notebooks", "## Read more"):
        assert section in readme
    assert "elwh-nb sign" in readme and "curl" in readme and "rx.turns" in readme
    links = re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", readme)
    missing = [link for link in links if not (ROOT / link).exists()]
    assert links and not missing, missing


def test_the_api_page_has_an_entry_for_every_public_name() -> None:
    page = (DOCS / "api.md").read_text()
    documented = re.findall(r"^\.\. auto\w+:: elwh_nb\.(\w+)$", page, re.M)
    assert sorted(documented) == sorted(elwh_nb.__all__)
    assert len(documented) == len(set(documented))


def test_the_site_lists_every_guide_and_notebook() -> None:
    index = (DOCS / "index.md").read_text()
    for guide in sorted((DOCS / "guides").glob("*.md")):
        assert f"guides/{guide.stem}\n" in index, guide.name
    for notebook in sorted((ROOT / "notebooks").glob("*.ipynb")):
        assert f"notebooks/{notebook.stem}\n" in index, notebook.name


def test_the_docs_build_with_warnings_as_errors_and_the_check_finds_every_name(tmp_path: Path) -> None:
    pytest.importorskip("myst_nb")
    out = tmp_path / "html"
    build = subprocess.run(
        [*SPHINX, "-D", "nb_execution_mode=off", "-d", str(tmp_path / "doctrees"), str(DOCS), str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert build.returncode == 0, build.stderr
    check = [sys.executable, str(DOCS / "check_api.py"), str(out / "api.html")]
    done = subprocess.run(check, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and f"all {len(elwh_nb.__all__)} public names" in done.stdout, done.stderr
    # The check can fail: a page without one entry is named.
    api = (out / "api.html").read_text()
    (out / "short.html").write_text(api.replace('id="elwh_nb.Replayed"', 'id="gone"'))
    short = subprocess.run([*check[:2], str(out / "short.html")], capture_output=True, text=True, timeout=60)
    assert short.returncode == 1 and "Replayed" in short.stderr
