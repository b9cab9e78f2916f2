"""Resumable result tables for the benchmark scripts: read the rows already written, and
rewrite the whole CSV atomically after every new row, so a killed run loses nothing."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Iterable, Sequence

from placement.plan import write_text_atomic


def read_rows(path: Path) -> list[dict]:
    """The rows of ``path`` (empty when it does not exist yet)."""
    if not path.exists():
        return []
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def write_rows(path: Path, rows: Iterable[dict], fields: Sequence[str], extra: str = "raise") -> None:
    """Rewrite ``path`` with ``rows`` (temporary file, then rename). ``extra="ignore"`` drops
    keys that are not in ``fields``."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(fields), extrasaction=extra)
    w.writeheader()
    w.writerows(rows)
    write_text_atomic(path, buf.getvalue())
