"""The public surface: __all__ is exactly the public names, each documented; the core stays pure."""

from __future__ import annotations

import subprocess
import sys
import types

import elwh_nb


def test_all_matches_public_names() -> None:
    public = {
        name
        for name, value in vars(elwh_nb).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType) and name != "annotations"
    }
    assert set(elwh_nb.__all__) - {"__version__"} == public
    assert len(elwh_nb.__all__) == len(set(elwh_nb.__all__))


def test_every_public_name_is_documented() -> None:
    for name in elwh_nb.__all__:
        value = getattr(elwh_nb, name)
        if callable(value):
            assert (value.__doc__ or "").strip(), f"{name} has no docstring"


def test_issue_api_names_exist() -> None:
    for name in ("sign", "verify", "explain", "normalize", "EventStore", "payloads", "construct_event"):
        assert name in elwh_nb.__all__


def test_core_imports_no_network_or_widget_library() -> None:
    code = (
        "import sys, elwh_nb._signature, elwh_nb._explain, elwh_nb._normalize, "
        "elwh_nb._payloads, elwh_nb._store; "
        "print(sorted(m for m in ('tornado', 'ipywidgets', 'jupyter_server') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
