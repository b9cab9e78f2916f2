"""Child process of `milp` for the MPSolver backends (HiGHS, SCIP): reads a pickled
``(rows, deadline, backend)`` on stdin, writes the pickled `_Result` (or the exception) on
stdout. HiGHS prints a banner on stdout whatever it is told, so the real stdout is kept
aside and fd 1 points at /dev/null while the backend runs."""

from __future__ import annotations

import os
import pickle
import sys


def main() -> None:
    import signal
    # a terminal's Ctrl-C reaches the whole process group: the parent decides (it stops this
    # child on a stop request and keeps the warm start), so the child does not die mid-pickle
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    data = sys.stdin.buffer.read()
    result_fd = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    from solvers._milp_backends import _mpsolver_solve

    rows, deadline, backend = pickle.loads(data)
    try:
        out = _mpsolver_solve(rows, deadline, backend)
    except Exception as exc:  # an InputError (no such backend) travels back to the caller
        out = exc
    with os.fdopen(result_fd, "wb") as fh:
        fh.write(pickle.dumps(out, protocol=pickle.HIGHEST_PROTOCOL))


if __name__ == "__main__":
    main()
