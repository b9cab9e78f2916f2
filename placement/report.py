"""Terminal output with rich: a plan's summary, and a live status line while solving."""

from __future__ import annotations

import contextlib
import time
from typing import Callable, Iterator

from rich.console import Console
from rich.table import Table

from .plan import Plan, Status
from .problem import Problem

_STATUS_STYLE = {Status.OPTIMAL: "bold green", Status.FEASIBLE: "green", Status.TIME_LIMIT: "yellow",
                 Status.INFEASIBLE: "bold red", Status.NO_SOLUTION: "red", Status.ERROR: "bold red"}

_console: Console | None = None


def console() -> Console:
    global _console
    if _console is None:
        _console = Console(highlight=False, soft_wrap=True)
        if not _console.is_terminal:
            # piped to a file or a CI log: nobody's window to fit, so do not squeeze tables to 80
            _console = Console(highlight=False, soft_wrap=True, width=max(_console.width, 160))
    return _console


def fmt(x: float | None, unit: str = "") -> str:
    if x is None:
        return "-"
    return f"{x:.4g}{unit}"


def fmt_bytes(n: float) -> str:
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n:.0f} B"


def plan_report(problem: Problem, plan: Plan, out: Console) -> None:
    """Summary of a plan: status, value, bound, gap; one row per device; the metrics."""
    style = _STATUS_STYLE.get(plan.status, "")
    gap = plan.gap
    out.print(f"[bold]{plan.problem}[/] · method [bold]{plan.method}[/] · objective "
              f"{plan.objective} · status [{style}]{plan.status.value}[/]")
    out.print(f"value {fmt(plan.value)}   bound {fmt(plan.bound)}   gap "
              f"{'-' if gap is None else f'{100 * gap:.2f}%'}   solve time {plan.solve_time_s:.3g} s")
    if plan.message:
        out.print(f"[dim]{plan.message}[/]")
    if plan.assignment:
        table = Table(show_edge=False, pad_edge=False)
        for col, just in (("device", "left"), ("blocks", "right"), ("busy s", "right"),
                          ("memory", "right"), ("of", "right"), ("runs", "left")):
            table.add_column(col, justify=just, overflow="fold")
        for dev in problem.devices:
            blocks = (plan.order or {}).get(dev.id) or [b for b, d in plan.assignment.items() if d == dev.id]
            if not blocks:
                continue
            busy = sum(plan.schedule[b]["end_s"] - plan.schedule[b]["start_s"] for b in blocks
                       if b in plan.schedule)
            shown = ", ".join(blocks[:8]) + (f", ... (+{len(blocks) - 8})" if len(blocks) > 8 else "")
            table.add_row(dev.id, str(len(blocks)), f"{busy:.4g}",
                          fmt_bytes(plan.metrics.get("memory_bytes", {}).get(dev.id, 0.0)),
                          fmt_bytes(dev.memory_bytes), shown)
        out.print(table)
        m = plan.metrics
        out.print(f"latency {fmt(m.get('latency_s'), ' s')} · period {fmt(m.get('period_s'), ' s')} "
                  f"({fmt(m.get('throughput_per_s'), '/s')}) · energy {fmt(m.get('energy_j'), ' J')} · "
                  f"transfers {fmt_bytes(m.get('transfer_bytes') or 0.0)}")
    for v in plan.violations[:10]:
        out.print(f"[red]violation[/] {v}")
    if len(plan.violations) > 10:
        out.print(f"[red]... and {len(plan.violations) - 10} more violations[/]")


@contextlib.contextmanager
def solving_status(method: str, time_limit: float | None, quiet: bool = False
                   ) -> Iterator[Callable[[float | None, float | None], None] | None]:
    """A live status line on stderr while a method runs; yields the progress callback."""
    if quiet:
        yield None
        return
    err = Console(stderr=True, highlight=False)
    t0 = time.monotonic()
    limit = f"/{time_limit:g}" if time_limit is not None else ""
    best: dict[str, float | None] = {"value": None, "bound": None}

    def text() -> str:
        return (f"{method}: {time.monotonic() - t0:.1f}{limit} s · best {fmt(best['value'])} · "
                f"bound {fmt(best['bound'])}")

    with err.status(text()) as status:
        def progress(value: float | None, bound: float | None) -> None:
            if value is not None:
                best["value"] = value
            if bound is not None:
                best["bound"] = bound
            status.update(text())
        yield progress
