"""Set-up stays honest: environment.yml matches pyproject.toml, the README and CI run what they say."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml  # type: ignore[import-untyped,unused-ignore]

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]

ROOT = Path(__file__).resolve().parent.parent


def _requirement(text: str) -> tuple[str, str]:
    match = re.fullmatch(r"\s*([A-Za-z0-9_.\-]+(?:\[\w+\])?)\s*(.*?)\s*", text)
    assert match, text
    return match.group(1).lower().replace("_", "-"), match.group(2).replace(" ", "")


def test_environment_yml_matches_pyproject() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert "conda-forge" in env["channels"]
    conda = [d for d in env["dependencies"] if isinstance(d, str)]
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    # The runtime dependencies and the lab, history and hub extras: conda users get JupyterLab, a
    # kernel, and DuckDB and Dask too (conda-forge's names for two of them).
    extras = project["optional-dependencies"]
    wanted = dict(
        _requirement(r) for r in project["dependencies"] + extras["lab"] + extras["history"] + extras["hub"]
    )
    assert {"jupyterlab", "ipykernel", "pyarrow"} <= set(wanted)
    conda_names = {"dask[dataframe]": "dask", "duckdb": "python-duckdb"}
    wanted = {conda_names.get(name, name): version for name, version in wanted.items()}
    have = dict(_requirement(d) for d in conda if not d.startswith(("python>", "pip")))
    assert have == wanted
    python = next(d for d in conda if d.startswith("python"))
    assert _requirement(python)[1] == project["requires-python"]
    assert "-e ." in pip


def test_readme_opens_with_the_two_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    head = readme[: readme.index("\n## ")]
    assert "make demo" in head and "make test" in head


def test_readme_first_screen_says_how_to_open_the_notebooks() -> None:
    readme = (ROOT / "README.md").read_text()
    head = readme[: readme.index("\n## ", readme.index("\n## ") + 1)]  # the intro and the first section
    assert "make lab" in head and 'pip install "elwh-nb[lab]"' in head
    assert "JupyterHub" in head and "ImportError" in head and "proxy URL" in head  # adding it to yours


def test_the_lab_extra_and_make_lab_go_together() -> None:
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert {_requirement(r)[0] for r in extras["lab"]} == {"jupyterlab", "ipykernel"}
    assert "elwh-nb[lab]" in extras["dev"]  # the test tools include what `make lab` runs
    makefile = (ROOT / "Makefile").read_text()
    assert "pip install --quiet -e '.[lab]'" in makefile
    assert re.search(r"^lab: \$\(VENV\)/\.lab$", makefile, re.M)
    assert re.search(
        r"^\t\$\(PY\) -m jupyterlab .*\$\(LAB_ARGS\) notebooks/01_quickstart.ipynb$", makefile, re.M
    )


def test_ci_runs_make_test() -> None:
    script = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^make test$", script, re.M)
    assert re.search(r"^make docs$", script, re.M)  # the site builds, warnings as errors


def test_make_docs_builds_with_warnings_as_errors_and_checks_the_api_page() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^docs: \$\(VENV\)/\.docs$", makefile, re.M)
    assert re.search(r"^\t\$\(PY\) -m sphinx -W --keep-going -b html docs docs/_build/html$", makefile, re.M)
    assert re.search(r"^\t\$\(PY\) docs/check_api.py docs/_build/html/api.html$", makefile, re.M)


def test_makefile_test_runs_lint_types_and_pytest() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^test: lint typecheck pytest$", makefile, re.M)
    assert "ruff format --check" in makefile and "mypy" in makefile


def _settings_under(ci: str) -> str:
    """The hypothesis profile and the missing-tool verdict the tests' conftest picks for ``CI=ci``."""
    code = (
        "import pytest\n"
        "from hypothesis import settings\n"
        "from tests import conftest\n"
        "try:\n"
        "    conftest.require(False, 'a tool', 'install it')\n"
        "except pytest.fail.Exception:\n"
        "    verdict = 'fail'\n"
        "except pytest.skip.Exception:\n"
        "    verdict = 'skip'\n"
        "print(settings().max_examples, verdict)\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "HYPOTHESIS_PROFILE")}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env={**env, "CI": ci}, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


@pytest.mark.parametrize(
    ("ci", "expected"),
    [
        ("true", "3000 fail"),
        ("1", "3000 fail"),
        ("YES", "3000 fail"),
        ("false", "300 skip"),
        ("0", "300 skip"),
    ],
)
def test_one_reading_of_ci(ci: str, expected: str) -> None:
    # The example counts and the missing-tool rule agree on what CI means.
    assert _settings_under(ci) == expected


@pytest.mark.parametrize(("ci", "outcome"), [("true", "3 errors"), ("", "3 skipped")])
def test_a_missing_sdk_oracle_fails_in_ci(tmp_path: Path, ci: str, outcome: str) -> None:
    # An elevenlabs that moved its webhook module: CI must not stay green without the oracle.
    (tmp_path / "elevenlabs").mkdir()
    (tmp_path / "elevenlabs" / "__init__.py").write_text("class ElevenLabs: ...\n")
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "HYPOTHESIS_PROFILE")}
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_sdk_agreement.py"],
        cwd=ROOT,
        env={**env, "CI": ci, "PYTHONPATH": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    summary = out.stdout.strip().splitlines()[-1]
    assert outcome in summary and (out.returncode != 0) == bool(ci), out.stdout[-2000:]
    assert "elevenlabs" in out.stdout  # and it says what is missing


def test_property_tests_take_their_example_counts_from_the_profile() -> None:
    # The README's 300 locally and 3,000 in CI hold for every property test only if none fixes its own.
    fixed = [
        f"{path.relative_to(ROOT)}:{n}"
        for path in sorted((ROOT / "tests").rglob("*.py"))
        if path.name != "conftest.py"
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if re.search(r"max_examples\s*=", line)
    ]
    assert not fixed, fixed


def test_stores_and_what_the_dashboard_exports_are_git_ignored() -> None:
    from elwh_nb._core import colcache, derived_copy
    from elwh_nb._server.claim import lock_path

    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    store = Path("notebooks/agent_tools.sqlite")
    names = [
        "elwh_events.sqlite",
        str(store),
        f"{store}-wal",
        f"{store}-shm",
        str(lock_path(store)),
        f"{store}.receiver.json",
        f"{store}{colcache.SUFFIX}",
        f"{store}{derived_copy.SUFFIX}",
        "elwh_all_20261207-101010.csv",
        "notebooks/elwh_failed_20261207-101010.parquet",
        "notebooks/elwh_event_12.json",
        "history/events/day=2026-12-07/abc-1-9.parquet",
    ]
    ignored = subprocess.run(["git", "check-ignore", *names], cwd=ROOT, capture_output=True, text=True)
    assert sorted(ignored.stdout.split()) == sorted(names)
    kept = subprocess.run(
        ["git", "check-ignore", "tests/test_parquet.py", "notebooks/01_quickstart.ipynb"], cwd=ROOT
    )
    assert kept.returncode == 1  # nothing of ours is ignored
