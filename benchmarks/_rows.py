"""Resumable result tables for the benchmark scripts: the one implementation is
`placement.results` (read the rows already written; rewrite the whole CSV atomically after
every new row, so a killed run loses nothing)."""

from placement.results import read_csv_rows as read_rows  # noqa: F401
from placement.results import write_csv_rows as write_rows  # noqa: F401

__all__ = ["read_rows", "write_rows"]
