"""The public surface: __all__ is exactly the public names, each documented; the core stays pure."""

from __future__ import annotations

import ast
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
