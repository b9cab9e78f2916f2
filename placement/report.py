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


def plural(n: int, word: str, many: str | None = None) -> str:
    """``1 row``, ``2 rows`` (``many`` for irregular plurals)."""
    return f"{n} {word if n == 1 else (many or word + 's')}"


from .errors import fmt_bytes  # noqa: E402,F401  (one bytes formatter for tables and messages)


def time_unit(largest_s: float) -> tuple[float, str]:
    """(factor, unit) to show times whose largest is ``largest_s``: ms below a second, else s."""
    return (1e3, "ms") if largest_s < 1.0 else (1.0, "s")


#: the unit of each objective's value
OBJECTIVE_UNITS = {"latency": "s", "throughput": "s", "energy": "J", "weighted": ""}
_METRIC_OF = {"latency": "latency_s", "throughput": "period_s", "energy": "energy_j"}


def describe_objective(objective) -> str:
    """``latency (s)``, ``throughput (period, s)``, ``energy (J)``, or a weighted sum written
    out: ``1·latency_s + 0.2·energy_j``."""
    if isinstance(objective, dict):
        return " + ".join(f"{w:g}·{_METRIC_OF.get(k, k)}" for k, w in objective.items())
    return {"latency": "latency (s)", "throughput": "throughput (minimise the period, s)",
            "energy": "energy (J)"}.get(str(objective), str(objective))


def _objective_name(objective) -> str:
    return "weighted" if isinstance(objective, dict) else str(objective)


def bound_source(problem: Problem, plan: Plan) -> str:
    """Which bound ``plan.bound`` is: the package's cheap bound (`placement.bounds`), or a
    stronger one the method proved."""
    if plan.bound is None:
        return ""
    from . import bounds
    cheap = bounds.lower_bound(problem)
    if abs(plan.bound - cheap) <= 1e-12 * max(1.0, abs(cheap)):
        return "cheap bound"
    return f"proven by {plan.method}" if plan.method else "proven"


def plan_report(problem: Problem, plan: Plan, out: Console) -> None:
    """Summary of a plan: status, value, bound, gap; one row per device; the metrics."""
    style = _STATUS_STYLE.get(plan.status, "")
    method = plan.method or "(plan file)"
    out.print(f"[bold]{plan.problem}[/] · method [bold]{method}[/] · objective "
              f"{describe_objective(plan.objective)} · status [{style}]{plan.status.value}[/]")
    unit = OBJECTIVE_UNITS.get(_objective_name(plan.objective), "")
    u = f" {unit}" if unit else ""
    solve = f"   solve time {plan.solve_time_s:.3g} s" if plan.method else ""
    if plan.value is not None and not plan.feasible:
        out.print(f"value {fmt(plan.value)}{u} [red](infeasible plan: no bound, no gap)[/]{solve}")
    elif plan.value is not None:
        gap = plan.gap
        src = bound_source(problem, plan)
        out.print(f"value {fmt(plan.value)}{u}   bound {fmt(plan.bound)}{u if plan.bound is not None else ''}"
                  f"{f' ({src})' if src else ''}   gap "
                  f"{'-' if gap is None else f'{100 * gap:.2f}%'}{solve}")
    elif plan.method:
        out.print(f"no plan{solve}")
    if plan.message:
        out.print(f"[dim]{plan.message}[/]")
    split = getattr(plan, "split", None)
    if split:                    # SPEC 6: the ways the plan chose; shards are <block>#<k>
        cut = [f"{b} x{w}" for b, w in split.items() if w > 1]
        out.print("split ways: " + (", ".join(cut) if cut else "none (every split block whole)")
                  + (f" · {len(split) - len(cut)} kept whole" if cut and len(split) > len(cut) else ""))
    if plan.assignment:
        busy_of = {}
        for dev in problem.devices:
            blocks = (plan.order or {}).get(dev.id) or [b for b, d in plan.assignment.items() if d == dev.id]
            if blocks:
                busy_of[dev.id] = (blocks, sum(plan.schedule[b]["end_s"] - plan.schedule[b]["start_s"]
                                               for b in blocks if b in plan.schedule))
        factor, tu = time_unit(max((b for _, b in busy_of.values()), default=0.0))
        table = Table(show_edge=False, pad_edge=False)
        for col, just in (("device", "left"), ("blocks", "right"), (f"busy {tu}", "right"),
                          ("memory", "right"), ("capacity", "right"), ("runs", "left")):
            table.add_column(col, justify=just, overflow="fold")
        for dev in problem.devices:
            if dev.id not in busy_of:
                continue
            blocks, busy = busy_of[dev.id]
            shown = ", ".join(blocks[:8]) + (f", ... (+{len(blocks) - 8})" if len(blocks) > 8 else "")
            table.add_row(dev.id, str(len(blocks)), f"{busy * factor:.3f}",
                          fmt_bytes(plan.metrics.get("memory_bytes", {}).get(dev.id, 0.0)),
                          fmt_bytes(dev.memory_bytes), shown)
        out.print(table)
        m = plan.metrics
        unused = problem.n_devices - len(busy_of)
        out.print(f"latency {fmt(m.get('latency_s'), ' s')} · period {fmt(m.get('period_s'), ' s')} "
                  f"({fmt(m.get('throughput_per_s'), '/s')}) · energy {fmt(m.get('energy_j'), ' J')} · "
                  f"transfers {fmt_bytes(m.get('transfer_bytes') or 0.0)}"
                  + (f" · {plural(unused, 'device')} unused" if unused else ""))
        if m.get("scenarios"):      # SPEC 10: the figures above are expectations
            out.print("expected over scenarios; worst latency "
                      f"{fmt(m.get('latency_max_s'), ' s')} · " + " · ".join(
                          f"{name} (p={sc['probability']:.3g}): {fmt(sc['latency_s'], ' s')}, "
                          f"{fmt(sc['energy_j'], ' J')}" for name, sc in m["scenarios"].items()))
    for v in plan.violations[:10]:
        out.print(f"[red]violation[/] {v}")
    if len(plan.violations) > 10:
        out.print(f"[red]... and {plural(len(plan.violations) - 10, 'more violation')}[/]")


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
