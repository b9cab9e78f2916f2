"""Results files: tables of rows that a long run rewrites atomically after every row.

Two users: ``placement compare`` (`ResultsFile`, the comparator's columns) and the
benchmark scripts (`read_csv_rows` / `write_csv_rows`, their own columns). Both rewrite the
whole file through `placement.plan.write_text_atomic` (temporary file beside it, fsync,
``os.replace``), so a reader, a crash or a ``kill -9`` never sees half a row.

A path that exists and is not a results file of this tool (a problem file given by mistake,
say) is never overwritten: `ResultsFile.check_writable` raises an `InputError` naming it.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from .errors import InputError

#: file extensions of results files, by format.
SUFFIXES = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}


def read_csv_rows(path: str | Path) -> list[dict[str, str]]:
    """The rows of a CSV file as dicts of strings ([] when the file does not exist yet)."""
    path = Path(path)
    if not path.exists():
        return []
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def csv_text(rows: Iterable[Mapping[str, Any]], fields: Sequence[str], extra: str = "raise",
             cell: Callable[[Any], Any] = lambda x: x) -> str:
    """CSV text with a header; ``extra="ignore"`` drops keys that are not in ``fields``."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(fields), extrasaction=extra, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: cell(v) for k, v in r.items()} if cell is not None else r)
    return buf.getvalue()


def write_csv_rows(path: str | Path, rows: Iterable[Mapping[str, Any]], fields: Sequence[str],
                   extra: str = "raise") -> None:
    """Rewrite ``path`` with ``rows`` atomically."""
    from .plan import write_text_atomic
    write_text_atomic(path, csv_text(rows, fields, extra))


def _jsonable(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def _csv_cell(x: Any) -> Any:
    if x is None:
        return ""
    if isinstance(x, float):
        return repr(x) if math.isfinite(x) else ""
    return x


class ResultsFile:
    """A table of typed rows in a ``.csv`` or JSON Lines (``.jsonl``/``.ndjson``) file.

    ``columns`` maps each column to its type (str, int, float, bool) for reading back; ``key``
    names the columns that every row must have (and that identify it). Floats round-trip
    exactly (``repr``)."""

    def __init__(self, path: str | Path, columns: Mapping[str, type], key: Sequence[str]):
        self.path = Path(path)
        self.columns = dict(columns)
        self.key = tuple(key)
        suffix = self.path.suffix.lower()
        if suffix not in SUFFIXES:
            raise InputError(f"{path}: expected a results file ending in .csv or .jsonl, "
                             f"found '{suffix or 'no extension'}'")
        self.format = SUFFIXES[suffix]

    # ------------------------------------------------------------------ safety
    def check_writable(self) -> None:
        """Raise `InputError` unless writing here loses nothing: the path is new, or it is a
        results file of this tool (its rows are kept: a writer starts from them or is asked
        to ``resume``), and its folder can be written."""
        from .plan import check_output_path
        check_output_path(self.path, what="results file")
        if self.path.exists() and not self.is_results_file():
            raise InputError(f"{self.path}: exists and is not a results file of placement "
                             f"(expected {self.format.upper()} rows with the columns "
                             f"{', '.join(self.key)}); refusing to overwrite it: give a new file name")

    def is_results_file(self) -> bool:
        """Whether the existing file holds rows of this table (an empty file counts)."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return False
        if not text.strip():
            return True
        if self.format == "csv":
            header = next(csv.reader(io.StringIO(text.splitlines()[0])), [])
            return all(k in header for k in self.key)
        lines = [ln for ln in text.splitlines() if ln.strip()]
        # every line but a torn last one must be a row object with the key columns
        for i, line in enumerate(lines):
            try:
                raw = json.loads(line)
            except ValueError:
                if i == len(lines) - 1 and i > 0:
                    continue
                return False
            if not isinstance(raw, dict) or not all(k in raw for k in self.key):
                return False
        return True

    # ----------------------------------------------------------------- reading
    def read(self, warn: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
        """The rows already in the file ([] when it does not exist). A torn or malformed line
        (left by an appending writer that was killed) is dropped, with a warning. A file that
        is not a results file is an `InputError`."""
        self._clean_stale_temporaries()
        if not self.path.exists():
            return []
        if not self.is_results_file():
            raise InputError(f"{self.path}: expected a results file with the columns "
                             f"{', '.join(self.key)}; this file is something else")
        text = self.path.read_text(encoding="utf-8")
        rows, dropped = [], 0
        if self.format == "jsonl":
            for line in text.splitlines():
                if not line.strip():
                    continue
                try:
                    raw = json.loads(line)
                    if not isinstance(raw, dict):
                        raise ValueError("not an object")
                    rows.append(self._typed(raw))
                except (ValueError, KeyError):
                    dropped += 1
        else:
            complete = text if text.endswith("\n") or not text else text[: text.rfind("\n") + 1]
            dropped += text != complete
            reader = csv.DictReader(io.StringIO(complete))
            for raw in reader:
                if None in raw or any(raw.get(k) in (None, "") for k in self.key[:2]):
                    dropped += 1
                    continue
                try:
                    rows.append(self._typed(raw))
                except (ValueError, KeyError):
                    dropped += 1
        if dropped and warn:
            warn(f"{self.path}: dropped {dropped} incomplete line{'s' if dropped != 1 else ''}")
        return rows

    def _typed(self, raw: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, t in self.columns.items():
            x = raw.get(k)
            if x is None or x == "":
                out[k] = "" if t is str and k not in self.key else None
            elif t is bool:
                out[k] = x if isinstance(x, bool) else str(x).lower() == "true"
            elif t is str:
                out[k] = str(x)
            else:
                out[k] = t(float(x)) if t is int else float(x)
        for k in self.key:
            if t_is_required(self.columns.get(k)) and out.get(k) in (None, ""):
                raise KeyError(k)
        return out

    # ----------------------------------------------------------------- writing
    def write(self, rows: Sequence[Mapping[str, Any]]) -> None:
        from .plan import write_text_atomic
        if self.format == "jsonl":
            text = "".join(json.dumps({k: _jsonable(r.get(k)) for k in self.columns}) + "\n"
                           for r in rows)
        else:
            text = csv_text(({k: _csv_cell(r.get(k)) for k in self.columns} for r in rows),
                            list(self.columns), cell=None)
        write_text_atomic(self.path, text)

    def _clean_stale_temporaries(self) -> None:
        # write_text_atomic's temporaries are ".<name>.<random>.tmp"; a kill -9 can leave one
        if self.path.parent.is_dir():
            for tmp in self.path.parent.glob(f".{self.path.name}.*.tmp"):
                try:
                    tmp.unlink()
                except OSError:
                    pass


def t_is_required(t: type | None) -> bool:
    """Key columns of type str must be non-empty; numeric key columns may be empty (None)."""
    return t is str
