"""Ctrl-C as a request to stop, so that a long solve ends with its best plan so far.

The command line runs its work inside `handling_sigint()`: the first Ctrl-C only sets a flag,
which every method sees through `placement.method.Context.expired()` (its deadline is now),
so it stops as at a time limit and returns its best plan; the API marks that plan
``time_limit`` with the message "interrupted", the CLI writes it where ``-o`` was given and
exits 130. A second Ctrl-C stops at once (``KeyboardInterrupt``), losing the plan.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Iterator

_requested = threading.Event()
_at = [float("inf")]  # time.monotonic() of the request

#: the message of a plan cut by Ctrl-C (``compare`` marks such a row ``interrupted``).
MESSAGE = "interrupted"


def requested() -> bool:
    """Whether Ctrl-C was pressed inside the current `handling_sigint()` block."""
    return _requested.is_set()


def request() -> None:
    """Ask the running method to stop as at its time limit (what Ctrl-C does)."""
    import time
    _at[0] = min(_at[0], time.monotonic())
    _requested.set()


def requested_at() -> float:
    """``time.monotonic()`` of the stop request (inf: none)."""
    return _at[0] if _requested.is_set() else float("inf")


def clear() -> None:
    _requested.clear()
    _at[0] = float("inf")


def wait(timeout: float) -> bool:
    """Block up to ``timeout`` seconds for a stop request; True if one came."""
    return _requested.wait(timeout)


@contextlib.contextmanager
def handling_sigint() -> Iterator[None]:
    """Within the block, the first SIGINT requests a stop and the second raises
    ``KeyboardInterrupt``. Only the main thread can install handlers; elsewhere (a worker
    thread, a pool's child) this is a no-op and Ctrl-C keeps its usual meaning."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    clear()

    def on_sigint(signum, frame):
        if _requested.is_set():
            raise KeyboardInterrupt
        request()

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        clear()
