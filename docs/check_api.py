"""Fail unless the built API page documents every name in ``elwh_nb.__all__`` (run by ``make docs``).

Usage: ``python docs/check_api.py docs/_build/html/api.html``. Sphinx gives each documented
object an anchor ``id="elwh_nb.<name>"``; a name added to ``__all__`` without its entry in
``docs/api.md`` has none, and this says which.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import elwh_nb


def missing(page: str) -> list[str]:
    """The public names the built page has no entry for."""
    documented = set(re.findall(r'id="elwh_nb\.([A-Za-z_][A-Za-z0-9_]*)"', page))
    return sorted(set(elwh_nb.__all__) - documented)


def main(argv: list[str]) -> int:
    page = Path(argv[1] if len(argv) > 1 else "docs/_build/html/api.html")
    gone = missing(page.read_text(encoding="utf-8"))
    if gone:
        print(f"{page}: no entry for {', '.join(gone)} (add each to docs/api.md)", file=sys.stderr)
        return 1
    print(f"{page}: all {len(elwh_nb.__all__)} public names documented")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
