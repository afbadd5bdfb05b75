"""The public surface: __all__ is exactly the public names, each documented; the core stays pure."""

from __future__ import annotations

import ast
import types
from pathlib import Path

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


CORE = (
    "_exceptions",
    "_signature",
    "_explain",
    "_normalize",
    "_payloads",
    "_columns",
    "_store",
    "_intake",
    "_routes",
    "_urls",
)
FORBIDDEN = {"tornado", "ipywidgets", "aiohttp", "jupyter_server", "matplotlib"}


def _imports(module: str) -> set[str]:
    """Top-level packages a module of elwh_nb imports at module level, following its own modules."""
    package = Path(elwh_nb.__file__).parent
    seen: set[str] = set()
    found: set[str] = set()
    todo = [module]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        tree = ast.parse((package / f"{name}.py").read_text())
        for node in tree.body:  # module level only: lazy imports inside functions are fine
            if isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    targets = [node.module] if node.module else [a.name for a in node.names]
                    todo.extend(t for t in targets if (package / f"{t}.py").exists())
                elif node.module:
                    found.add(node.module.split(".")[0])
    return found


def test_the_core_imports_no_server_or_widget_library() -> None:
    for module in CORE:
        assert not _imports(module) & FORBIDDEN, module


def test_the_import_check_can_fail() -> None:
    assert "tornado" in _imports("_receiver")
