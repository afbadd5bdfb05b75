"""The public surface: __all__ is exactly the public names, each documented; the core stays pure."""

from __future__ import annotations

import ast
import subprocess
import sys
import types
from pathlib import Path

import elwh_nb


def test_all_matches_public_names() -> None:
    public = {
        name
        for name in dir(elwh_nb)
        if not name.startswith("_")
        and not isinstance(getattr(elwh_nb, name), types.ModuleType)
        and name not in ("annotations", "TYPE_CHECKING", "Any")
    }
    assert set(elwh_nb.__all__) - {"__version__"} == public
    assert len(elwh_nb.__all__) == len(set(elwh_nb.__all__))


def test_lazy_names_are_the_type_checking_imports() -> None:
    # One list for the lazy loader and one for type checkers: they must name the same things.
    tree = ast.parse(Path(elwh_nb.__file__).read_text())
    guarded = next(n for n in tree.body if isinstance(n, ast.If) and "TYPE_CHECKING" in ast.unparse(n.test))
    checked = {
        (f".{n.module}", a.name) for n in guarded.body if isinstance(n, ast.ImportFrom) for a in n.names
    }
    lazy = {(module, name) for module, names in elwh_nb._LAZY.items() for name in names}
    assert checked == lazy
    for _, name in lazy:
        assert getattr(elwh_nb, name) is not None


def test_every_public_name_is_documented() -> None:
    for name in elwh_nb.__all__:
        value = getattr(elwh_nb, name)
        if callable(value):
            assert (value.__doc__ or "").strip(), f"{name} has no docstring"


def test_issue_api_names_exist() -> None:
    for name in ("sign", "verify", "explain", "normalize", "EventStore", "payloads", "construct_event"):
        assert name in elwh_nb.__all__


FORBIDDEN = (
    "tornado",
    "ipywidgets",
    "aiohttp",
    "jupyter_server",
    "matplotlib",
    "duckdb",  # the history extra's readers (pyarrow is not here: pandas 3 imports it when installed)
    "dask",
    "elwh_nb._server",
    "elwh_nb._notebook",
)


def _loaded_after_importing(package: str) -> list[str]:
    """What a fresh interpreter holds after importing every module of one layer of elwh_nb."""
    code = (
        "import importlib, pkgutil, sys\n"
        f"pkg = importlib.import_module({package!r})\n"
        "for m in pkgutil.iter_modules(pkg.__path__):\n"
        "    importlib.import_module(f'{pkg.__name__}.{m.name}')\n"
        f"print('\\n'.join(sorted(n for n in sys.modules if n.startswith({FORBIDDEN!r}))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return out.stdout.split()


def test_the_core_imports_no_server_or_widget_library() -> None:
    assert _loaded_after_importing("elwh_nb._core") == []


def test_the_import_check_can_fail() -> None:
    loaded = _loaded_after_importing("elwh_nb._server")
    assert "tornado" in loaded and "elwh_nb._server.receiver" in loaded


def test_the_layout_guide_names_every_module_where_it_is() -> None:
    guide = (Path(elwh_nb.__file__).parent.parent / "docs" / "guides" / "development.md").read_text()
    block = guide.split("## Layout", 1)[1].split("```", 2)[1]
    listed, folder = set(), ""
    for line in block.splitlines():
        name = line.split()[0] if line.strip() else ""
        if line.startswith("  ") and not line.startswith("    ") and name.endswith("/"):
            folder = name
        elif line.startswith("    ") and name.endswith((".py", "/")):
            listed.add(folder + name)  # a module, or a package of them
    package = Path(elwh_nb.__file__).parent
    present = {
        p.relative_to(package).as_posix() for p in package.glob("_*/*.py") if p.name != "__init__.py"
    } | {p.parent.relative_to(package).as_posix() + "/" for p in package.glob("_*/*/__init__.py")}
    assert listed == present


def test_every_error_the_kit_defines_is_in_the_one_tree() -> None:
    import importlib
    import inspect
    import pkgutil

    defined = []
    for info in pkgutil.walk_packages(elwh_nb.__path__, "elwh_nb."):
        if info.name.endswith("serverext"):  # needs a Jupyter server's imports; holds no errors
            continue
        module = importlib.import_module(info.name)
        defined += [
            c
            for _, c in inspect.getmembers(module, inspect.isclass)
            if issubclass(c, BaseException)
            and c.__module__.split(".")[0] == "elwh_nb"  # defined here (the public ones say elwh_nb)
            and not c.__name__.startswith("_")
        ]
    assert {c.__name__ for c in defined} >= {"ExportError", "TunnelError", "InboxRefused", "StoreInUseError"}
    assert [c.__name__ for c in defined if not issubclass(c, elwh_nb.ElwhError)] == []
    assert issubclass(elwh_nb.TunnelError, elwh_nb.ReceiverError)  # what start(tunnel=...) raised before


def test_public_classes_print_as_elwh_nb_whichever_way_they_were_reached() -> None:
    code = (
        "from elwh_nb._core.store import EventStore\n"
        "from elwh_nb._core.exceptions import StoreError\n"
        "print(EventStore, StoreError)\n"
        "import elwh_nb, inspect\n"
        "print(sorted(n for n in elwh_nb.__all__ if inspect.isclass(getattr(elwh_nb, n))"
        " and getattr(elwh_nb, n).__module__ != 'elwh_nb'))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.splitlines() == ["<class 'elwh_nb.EventStore'> <class 'elwh_nb.StoreError'>", "[]"]
    import pickle

    error = elwh_nb.SignatureError("signature_mismatch", "no")
    assert pickle.loads(pickle.dumps(error)).reason == "signature_mismatch"  # found by its public name
    assert pickle.loads(pickle.dumps(elwh_nb.Appended(1, False, 1))) == elwh_nb.Appended(1, False, 1)
