"""Write one benchmark's section of docs/benchmarks.md, keeping the others.

Each benchmark script owns the text between ``<!-- NAME:start -->`` and
``<!-- NAME:end -->``; the markers are appended when absent. The page is
replaced through a temporary file, so an interrupted run leaves it whole.
"""

from __future__ import annotations

import os
from pathlib import Path

BENCHMARKS_PAGE = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"


def write_section(text: str, name: str, path: Path = BENCHMARKS_PAGE) -> None:
    """Replace the section ``name`` of the benchmarks page with ``text``."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    block = f"{start}\n{text}\n{end}"
    current = path.read_text() if path.exists() else "# Benchmarks\n"
    if start in current and end in current:
        head, rest = current.split(start, 1)
        tail = rest.split(end, 1)[1]
        updated = f"{head}{block}{tail}"
    else:
        updated = f"{current.rstrip()}\n\n{block}\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(updated)
    temporary.replace(path)
