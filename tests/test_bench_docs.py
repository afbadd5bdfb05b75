"""The README's benchmark figures come from the run that wrote BENCHMARKS.md, not from a keyboard."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BLOCK = re.compile(r"<!-- bench:(\w+) -->\n(.*?)<!-- /bench:\1 -->", re.S)


def test_every_readme_benchmark_block_is_filled_from_benchmarks_md() -> None:
    from bench.ingest import DOC_PAGES

    benchmarks = (ROOT / "BENCHMARKS.md").read_text()
    found = [(page, *block) for page in DOC_PAGES for block in BLOCK.findall((ROOT / page).read_text())]
    assert {name for _, name, _ in found} == {"summary", "core", "reads", "dashboard", "conversations"}
    assert {page for page, _, _ in found} == set(DOC_PAGES)  # each page listed has a block to fill
    for page, name, text in found:
        lines = [line for line in text.splitlines() if line.strip()]
        assert lines, f"the {name} block of {page} is empty: run make bench"
        for line in lines:
            assert line in benchmarks, f"{page} {name} block line not in BENCHMARKS.md: {line!r}"


def tables(markdown: str) -> list[list[list[str]]]:
    """Markdown tables as lists of rows of cells (header first, the separator dropped)."""
    found: list[list[list[str]]] = []
    current: list[list[str]] = []
    for line in [*markdown.splitlines(), ""]:
        if line.startswith("|"):
            if not set(line) <= set("|-: "):
                current.append([cell.strip() for cell in line.strip("|").split("|")])
        elif current:
            found.append(current)
            current = []
    return found


def test_benchmarks_md_reads_back_every_kit_run_with_no_duplicates() -> None:
    text = (ROOT / "BENCHMARKS.md").read_text()
    checked = 0
    for header, *rows in tables(text):
        if "duplicates" not in header:
            continue
        assert any("median (range)" in cell for cell in header)
        column = header.index("duplicates")
        for row in rows:
            if "elwh_nb" in row[0]:
                assert row[column] == "0", row
                checked += 1
            else:
                assert row[column] == "n/a", row
    assert checked >= 6, "the direct, accumulated, proxy and public-route tables each have kit rows"
