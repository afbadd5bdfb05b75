"""Which parts of the package may import which, read from the code (imports inside functions too).

Importing the modules (tests/test_public_api.py) shows what a layer loads at import time;
this reads every ``import`` in the source, so a lazy import inside a method that reaches
back into a layer above counts as well.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import elwh_nb

PACKAGE = Path(elwh_nb.__file__).parent

#: What each part may import besides itself (``elwh_nb`` is the package's own ``__init__``).
ALLOWED = {
    "_core": set(),  # signing, the event model, the store, the agent-tool model: pure
    "_notebook": {"_core"},  # frames, plots and widgets over a store
    "_server": {"_core", "_notebook", "elwh_nb"},  # the receiver shows dashboards; __version__
    "_cli": {"_core", "_notebook", "_server", "elwh_nb"},
    "elwh_nb": {"_core", "_notebook", "_server"},  # the lazy re-exports
    "__main__": {"_cli"},
}


def _part(module: list[str]) -> str:
    """The part of the package an absolute module path (``["elwh_nb", "_core", ...]``) is in."""
    if len(module) == 1 or not module[1].startswith("_") or module[1] == "__version__":
        return "elwh_nb"
    return module[1]


def imports(path: Path, source: str | None = None) -> Iterator[tuple[int, str]]:
    """(line, part) of every import of the package's own modules in ``path`` (any depth)."""
    package = list(path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1])  # where "." points
    tree = ast.parse(source if source is not None else path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                module = base + (node.module.split(".") if node.module else [])
            else:
                module = (node.module or "").split(".")
            if module[0] != "elwh_nb":
                continue
            if len(module) == 1:  # from elwh_nb import X / from .. import X
                for alias in node.names:
                    yield node.lineno, _part([*module, alias.name])
            else:
                yield node.lineno, _part(module)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "elwh_nb":
                    yield node.lineno, _part(alias.name.split("."))


def _own_part(path: Path) -> str:
    parts = path.relative_to(PACKAGE).parts
    if len(parts) == 1:  # the package's own __init__.py, or __main__.py
        return "__main__" if path.stem == "__main__" else "elwh_nb"
    return parts[0]


def violations(path: Path, source: str | None = None) -> list[str]:
    own = _own_part(path)
    return [
        f"{path.relative_to(PACKAGE.parent)}:{line} imports {part}"
        for line, part in imports(path, source)
        if part != own and part not in ALLOWED[own]
    ]


def test_no_part_imports_one_it_may_not() -> None:
    found = [v for path in sorted(PACKAGE.rglob("*.py")) for v in violations(path)]
    assert found == []


def test_every_part_has_rules() -> None:
    parts = {_own_part(path) for path in PACKAGE.rglob("*.py")}
    assert parts == set(ALLOWED)


def test_an_import_inside_a_method_counts() -> None:
    # What storefile.py did until route ids moved into the core: a lazy import reaching back.
    source = "class StoreFile:\n    def route(self):\n        from .._server.routes import new_route_id\n"
    assert violations(PACKAGE / "_core" / "storefile.py", source) == [
        "elwh_nb/_core/storefile.py:3 imports _server"
    ]
    assert violations(PACKAGE / "_notebook" / "tabs.py", "import elwh_nb._cli.main\n") == [
        "elwh_nb/_notebook/tabs.py:1 imports _cli"
    ]
