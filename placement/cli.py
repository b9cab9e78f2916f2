"""The ``placement`` command (SPEC section 9).

Exit codes: 0 a plan was found; 3 none was (proven infeasible, or nothing found within the
time limit: the output says which and why); 2 bad input (one line on stderr naming the
file, the field and what was expected; no traceback); 1 an internal failure. Set
``PLACEMENT_DEBUG=1`` to get tracebacks.

Each subcommand is a module with ``configure(parser)`` and ``run(args) -> int``; this file
only dispatches, so that a command's imports (matplotlib, torch, ray) load only when used.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from typing import Any, Sequence

#: subcommand -> (module, one-line help). Modules are imported only when their command runs.
COMMANDS: dict[str, tuple[str, str]] = {
    "solve": ("placement.cli", "plan one problem with one method"),
    "evaluate": ("placement.cli", "re-score a plan on a problem, report violations"),
    "methods": ("placement.cli", "list the methods and what each guarantees"),
    "generate": ("placement.cli", "write a reproducible synthetic problem"),
    "compare": ("placement.compare_cli", "run methods on problems: value, bound, gap, time"),
    "pareto": ("placement.pareto_front", "the Pareto front of plans over two or three metrics"),
    "show": ("placement.plots", "draw a plan: Gantt chart and the block graph by device"),
    "profile": ("profiles.cli", "measure a torch model's blocks into a problem file"),
    "schema": ("placement.cli", "print the JSON Schema of problem or plan files (for editors)"),
    "run": ("placement.runtime.cli", "execute a plan on worker processes and measure it against the prediction"),
}

EXIT_OK, EXIT_INTERNAL, EXIT_INPUT, EXIT_NO_PLAN = 0, 1, 2, 3
#: Ctrl-C (128 + SIGINT), and a closed pipe on stdout (128 + SIGPIPE), as a shell reports them
EXIT_INTERRUPTED, EXIT_BROKEN_PIPE = 130, 141
#: commands whose work stops at the first Ctrl-C with its best result so far (the others,
#: short or with their own teardown, keep Ctrl-C's usual meaning)
INTERRUPTIBLE = frozenset({"solve", "compare"})


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse's own exit code is 2 too; keep its text short
        self.print_usage(sys.stderr)
        self.exit(EXIT_INPUT, f"{self.prog}: error: {message}\n")


def check_output_path(path: str, what: str) -> None:
    from .plan import check_output_path as check
    check(path, what=what)


def _method_options(pairs: Sequence[str]) -> dict[str, Any]:
    from .errors import InputError
    out: dict[str, Any] = {}
    for pair in pairs or ():
        if "=" not in pair:
            raise InputError(f"--option: expected KEY=VALUE, found '{pair}'")
        key, value = pair.split("=", 1)
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def _objective_arg(text: str | None):
    """``latency`` or a JSON weighted sum ``{"latency": 1, "energy": 0.2}``."""
    if text is None or not text.lstrip().startswith("{"):
        return text
    from .errors import InputError, _short, did_you_mean
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"--objective: expected a name or a JSON object of weights ({exc.msg})") from None
    names = ("latency", "throughput", "energy")
    if not isinstance(value, dict) or not value:
        raise InputError("--objective: expected weights like {\"latency\": 1.0, \"energy\": 0.2}, "
                         f"found {_short(value)}")
    for k, w in value.items():
        if k not in names:
            hint = did_you_mean(k, names) or f"expected one of {', '.join(names)}"
            raise InputError(f"--objective: unknown metric {_short(k)} ({hint})")
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not w >= 0 or w == float("inf"):
            raise InputError(f"--objective: the weight of {k}: expected a finite number >= 0, found {_short(w)}")
    if not any(w > 0 for w in value.values()):
        raise InputError(f"--objective: expected at least one positive weight, found {_short(value)} "
                         "(every plan would score 0)")
    return value


# ---------------------------------------------------------------------------- solve
def configure_solve(p: argparse.ArgumentParser) -> None:
    from .api import DEFAULT_METHOD, DEFAULT_TIME_LIMIT_S
    p.add_argument("problem", help="problem file (JSON; format: docs/format.md, or 'placement schema problem')")
    p.add_argument("-m", "--method", "--methods", dest="method", default=DEFAULT_METHOD,
                   help=f"method name (see 'placement methods'; default {DEFAULT_METHOD})")
    p.add_argument("-t", "--time-limit", type=float, default=DEFAULT_TIME_LIMIT_S,
                   help=f"wall-clock limit in seconds (default {DEFAULT_TIME_LIMIT_S:g})")
    p.add_argument("--objective", help="latency, throughput, energy, or JSON weights; "
                   "default: the problem's own")
    p.add_argument("--seed", "--seeds", dest="seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--option", action="append", metavar="KEY=VALUE",
                   help="a method option (repeatable), e.g. --option backend=highs")
    p.add_argument("--backend", help="shorthand for --option backend=... (milp: cbc, highs, scip)")
    p.add_argument("-o", "--output", help="write the plan here (JSON, atomically)")
    p.add_argument("--json", action="store_true", help="print the plan as JSON on stdout")


def run_solve(args: argparse.Namespace) -> int:
    from . import api
    from .loader import load
    from .report import console, plan_report, solving_status

    problem = load(args.problem)
    if args.output:
        check_output_path(args.output, what="plan file")  # before the solve, not after
    options = _method_options(args.option)
    if args.backend:
        options["backend"] = args.backend
    from . import interrupt
    with solving_status(args.method, args.time_limit, quiet=args.json) as progress:
        # Ctrl-C: the method stops as at its time limit and its best plan is kept (interrupt.py)
        plan = api.solve(problem, args.method, objective=_objective_arg(args.objective),
                         time_limit=args.time_limit, seed=args.seed, progress=progress, **options)
        interrupted = interrupt.requested()
    if args.output:
        plan.save(args.output)
    if args.json:
        print(json.dumps(plan.to_dict(), indent=2))
    else:
        plan_report(problem.with_objective(_objective_arg(args.objective)), plan, console())
        if args.output:
            console().print(f"plan written to {args.output}")
    if interrupted:
        print("placement: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    return exit_code(plan)


def exit_code(plan) -> int:
    from .plan import Status
    if plan.status == Status.ERROR:
        return EXIT_INTERNAL
    return EXIT_OK if plan.feasible else EXIT_NO_PLAN


# ------------------------------------------------------------------------- evaluate
def configure_evaluate(p: argparse.ArgumentParser) -> None:
    p.add_argument("problem", help="problem file (JSON)")
    p.add_argument("plan", help="plan file (JSON; only 'assignment' is required; format: docs/format.md)")
    p.add_argument("--objective", help="score for this objective instead of the problem's own")
    p.add_argument("-o", "--output", help="write the re-scored plan here (JSON, atomically)")
    p.add_argument("--json", action="store_true", help="print the re-scored plan as JSON on stdout")


def run_evaluate(args: argparse.Namespace) -> int:
    from . import api
    from .loader import load
    from .report import console, plan_report

    objective = _objective_arg(args.objective)
    problem = load(args.problem).with_objective(objective)
    if args.output:
        check_output_path(args.output, what="plan file")
    plan = api.evaluate(problem, args.plan)
    if args.output:
        plan.save(args.output)
    if args.json:
        print(json.dumps(plan.to_dict(), indent=2))
    else:
        plan_report(problem, plan, console())
    return exit_code(plan)


# -------------------------------------------------------------------------- methods
def configure_methods(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print as JSON on stdout")


def run_methods(args: argparse.Namespace) -> int:
    from .registry import methods
    infos = methods()
    if args.json:
        print(json.dumps([i.to_dict() for i in infos], indent=2))
        return EXIT_OK
    from rich.table import Table
    from .report import console
    table = Table(title="placement methods")
    for col in ("name", "kind", "objectives", "features", "guarantee", "options (--option KEY=VALUE)"):
        table.add_column(col, overflow="fold")
    for i in infos:
        features = ", ".join(f for f, ok in i.features.items() if ok) or "none"
        table.add_row(i.name, i.kind, ", ".join(i.objectives), features, i.guarantee,
                      "\n".join(i.options.values()) or "none")
    console().print(table)
    return EXIT_OK


# ------------------------------------------------------------------------- generate
def configure_generate(p: argparse.ArgumentParser) -> None:
    from .generator import DEVICE_SETS, NETWORKS, SHAPES
    p.add_argument("--shape", choices=SHAPES, default="hybrid", help="model shape (default hybrid)")
    p.add_argument("--blocks", type=int, default=20, help="number of blocks before splitting (default 20)")
    p.add_argument("--devices", type=int, default=4, help="number of devices (default 4)")
    p.add_argument("--device-set", choices=DEVICE_SETS, default="edge", help="default edge")
    p.add_argument("--network", choices=NETWORKS, default="star", help="default star")
    p.add_argument("--split", type=float, default=0.0,
                   help="fraction of the heaviest blocks that may be split (default 0)")
    p.add_argument("--objective", default="latency", help="latency, throughput, energy, or JSON weights")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--name", help="problem name (default: from the arguments)")
    p.add_argument("--no-media", dest="media", action="store_false", default=None,
                   help="star network: no shared air at the access point (links contention-free)")
    p.add_argument("-o", "--output", help="write the problem here (default: stdout)")


def run_generate(args: argparse.Namespace) -> int:
    from .generator import generate
    from .plan import write_json_atomic
    if args.output:
        check_output_path(args.output, what="problem file")
    problem = generate(args.shape, args.blocks, args.devices, device_set=args.device_set,
                       network=args.network, seed=args.seed, split=args.split,
                       objective=_objective_arg(args.objective), name=args.name, media=args.media)
    from .loader import load
    load(problem)  # the generator's output always loads; fail here, not in the user's solve
    if args.output:
        write_json_atomic(args.output, problem)
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        print(json.dumps(problem, indent=2))
    return EXIT_OK


# --------------------------------------------------------------------------- schema
def configure_schema(p: argparse.ArgumentParser) -> None:
    p.add_argument("kind", nargs="?", choices=("problem", "plan"), default="problem",
                   help="which file format (default problem)")
    p.add_argument("-o", "--output", help="write the schema here instead of stdout")


def run_schema(args: argparse.Namespace) -> int:
    from .schema import json_schema
    text = json.dumps(json_schema(args.kind), indent=2) + "\n"
    if args.output:
        from .plan import write_text_atomic
        check_output_path(args.output, what="schema file")
        write_text_atomic(args.output, text)
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return EXIT_OK


configure = {"solve": configure_solve, "evaluate": configure_evaluate,
             "methods": configure_methods, "generate": configure_generate,
             "schema": configure_schema}
run = {"solve": run_solve, "evaluate": run_evaluate, "methods": run_methods,
       "generate": run_generate, "schema": run_schema}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    parser = _Parser(prog="placement", description=(
        "Place the blocks of a vision model on edge devices: exact solvers with proven bounds, "
        "fast heuristics, one evaluator."))
    from . import __version__
    parser.add_argument("--version", action="version", version=f"placement {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        # only the chosen command's module is imported (so 'solve' never imports torch)
        if command is None or name == command:
            _configure(name, module, p)
    return parser


def _configure(name: str, module: str, p: argparse.ArgumentParser) -> None:
    if module == "placement.cli":
        configure[name](p)
        return
    try:
        mod = importlib.import_module(module)
    except ImportError as exc:
        p.set_defaults(_unavailable=f"'placement {name}' is not available: {exc}")
        p.add_argument("rest", nargs=argparse.REMAINDER)
        return
    mod.configure(p)
    p.set_defaults(_run=mod.run)


def main(argv: Sequence[str] | None = None) -> int:
    from .errors import InputError, PlacementError

    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(command if command in COMMANDS else None)
    args, extra = parser.parse_known_args(argv)
    if extra:
        # problem files may come anywhere ('compare P1 --methods a P2'); argparse takes only
        # the first run of them, so the rest arrive here. Anything else is an error.
        if isinstance(getattr(args, "problems", None), list) and not any(a.startswith("-") for a in extra):
            args.problems.extend(extra)
        else:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
    debug = bool(os.environ.get("PLACEMENT_DEBUG"))
    try:
        if getattr(args, "_unavailable", None):
            print(f"placement: error: {args._unavailable}", file=sys.stderr)
            return EXIT_INTERNAL
        runner = getattr(args, "_run", None) or run[args.command]
        if args.command in INTERRUPTIBLE:
            # from here on, the first Ctrl-C is a stop request: the running method returns its
            # best plan as at its time limit (placement/interrupt.py); the second stops at once
            from . import interrupt
            with interrupt.handling_sigint():
                return int(runner(args))
        return int(runner(args))
    except InputError as exc:
        if debug:
            raise
        print(f"placement {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    except KeyboardInterrupt:
        print("placement: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # the reader went away ('placement generate | head'): stop quietly, as Unix tools do.
        # Python would complain again when it flushes stdout at exit: point it at /dev/null.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except (PlacementError, Exception) as exc:  # our bug: say so in one line, exit 1
        if debug:
            raise
        print(f"placement {args.command}: internal error: {type(exc).__name__}: {exc} "
              "(set PLACEMENT_DEBUG=1 for the traceback)", file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
