"""The supervisor: start one worker process per device, watch them, tear them all down on
the first failure (as torchrun's elastic agent does).

Each worker reports on its control pipe (stdout, one JSON object a line): a heartbeat every
`worker.HEARTBEAT_S` with its state ("running block 'x' (inference 3)", "waiting for the
inputs of block 'y'"), a line at every change of state, ``error`` with the exception when
it fails, ``done`` at the end. The run fails, with the device and the block in the message,
when

* a worker exits before ``done`` (killed, crashed, could not bind or connect);
* a worker sends no heartbeat for `HEARTBEAT_TIMEOUT_S` (stopped, frozen);
* no worker changes state for ``timeout_s`` (`STARTUP_TIMEOUT_S` at least, until all have
  joined the process group: a worker that cannot bind or connect fails there) (a hang: a block that never ends, a message
  that never comes): the workers that are running a block are named, else those waiting.

Teardown: SIGTERM to every worker still alive, SIGKILL after `KILL_GRACE_S`, then wait for
each; the workers also ask the kernel to kill them if the supervisor dies
(``PR_SET_PDEATHSIG``), so no process outlives a run.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Sequence

from ..errors import PlacementError

HEARTBEAT_TIMEOUT_S = 10.0
#: until every worker has joined the process group, the progress timeout is at least this
#: long: importing torch and rebuilding the blocks takes seconds on a busy host.
STARTUP_TIMEOUT_S = 120.0
KILL_GRACE_S = 2.0


class WorkerFailure(PlacementError):
    """A worker died, hung or could not start: CLI exit 1, the message names the device."""


@dataclass
class _Watched:
    device: str
    rank: int
    proc: subprocess.Popen
    log: str
    state: str = "starting"
    last_hb: float = field(default_factory=time.monotonic)
    error: str | None = None
    done: bool = False
    ready: bool = False
    buf: bytes = b""


def _describe_exit(rc: int) -> str:
    if rc < 0:
        try:
            name = signal.Signals(-rc).name
        except ValueError:
            name = str(-rc)
        return f"was killed by {name}"
    return f"exited with code {rc}"


def _tail(path: str, n: int = 3) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = [ln.rstrip() for ln in f.readlines() if ln.strip()]
    except OSError:
        return ""
    return " | ".join(lines[-n:])


def supervise(run_dir: str, world: Sequence[str], local: Sequence[str], *, timeout_s: float,
              env: dict[str, str] | None = None, on_state=None) -> None:
    """Start the workers of the ``local`` devices (ranks from ``world``), wait until all are
    done. Raises `WorkerFailure` after tearing every worker down."""
    base_env = dict(os.environ if env is None else env)
    base_env["PLACEMENT_RUNTIME_SUPERVISED"] = "1"
    paths = [os.getcwd()] + [p for p in sys.path if p and os.path.isdir(p)]
    base_env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths + [base_env.get("PYTHONPATH", "")]))
    sel = selectors.DefaultSelector()
    watched: list[_Watched] = []
    try:
        for dev in local:
            rank = list(world).index(dev)
            log = os.path.join(run_dir, f"worker-{rank}.log")
            with open(log, "wb") as err:
                proc = subprocess.Popen([sys.executable, "-m", "placement.runtime.worker", run_dir, str(rank)],
                                        stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL,
                                        env=base_env)
            w = _Watched(dev, rank, proc, log)
            watched.append(w)
            os.set_blocking(proc.stdout.fileno(), False)
            sel.register(proc.stdout, selectors.EVENT_READ, w)
        last_change = time.monotonic()
        while not all(w.done and w.proc.poll() is not None for w in watched):
            for key, _ in sel.select(timeout=0.2):
                w = key.data
                try:
                    chunk = os.read(key.fileobj.fileno(), 65536)
                except BlockingIOError:
                    continue
                if not chunk:
                    sel.unregister(key.fileobj)
                    continue
                w.buf += chunk
                *lines, w.buf = w.buf.split(b"\n")
                for line in lines:
                    try:
                        msg = json.loads(line)
                    except ValueError:
                        continue
                    w.last_hb = time.monotonic()
                    if "error" in msg:
                        w.error = msg["error"]
                    if msg.get("done"):
                        w.done = True
                    if msg.get("ready"):
                        w.ready = True
                    st = msg.get("state")
                    if st and st != w.state:
                        w.state = st
                        last_change = time.monotonic()
                        if on_state:
                            on_state(w.device, st)
            now = time.monotonic()
            for w in watched:
                rc = w.proc.poll()
                if rc is not None and not w.done:
                    _drain(w)
                    why = w.error or _tail(w.log)
                    raise WorkerFailure(f"worker of device '{w.device}' (rank {w.rank}) {_describe_exit(rc)} "
                                        f"while {w.state}" + (f": {why}" if why else ""))
                if rc is None and w.done and now - w.last_hb > KILL_GRACE_S:
                    w.proc.kill()  # said done and stopped talking: it is exiting
                elif rc is None and now - w.last_hb > HEARTBEAT_TIMEOUT_S:
                    raise WorkerFailure(f"worker of device '{w.device}' (rank {w.rank}) stopped responding "
                                        f"(no heartbeat for {HEARTBEAT_TIMEOUT_S:g} s) while {w.state}")
            limit = timeout_s if all(w.ready for w in watched) else max(timeout_s, STARTUP_TIMEOUT_S)
            if now - last_change > limit:
                busy = [w for w in watched if w.state.startswith("running block")] or \
                       [w for w in watched if not w.done]
                names = "; ".join(f"device '{w.device}' (rank {w.rank}) {w.state}" for w in busy)
                raise WorkerFailure(f"no progress for {limit:g} s (--timeout): {names}")
    finally:
        teardown([w.proc for w in watched])
        sel.close()


def _drain(w: _Watched) -> None:
    """Read what the worker wrote before it died (its error line may be there)."""
    try:
        rest = w.proc.stdout.read() or b""
    except (OSError, ValueError, TypeError):
        rest = b""
    for line in (w.buf + rest).split(b"\n"):
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        if "error" in msg:
            w.error = msg["error"]
        if msg.get("state"):
            w.state = msg["state"]


def teardown(procs: Sequence[subprocess.Popen]) -> None:
    """SIGTERM every live process, SIGKILL those left after `KILL_GRACE_S`, reap all."""
    for p in procs:
        if p.poll() is None:
            try:
                p.terminate()
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + KILL_GRACE_S
    for p in procs:
        try:
            p.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
    for p in procs:
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL cannot be ignored
            pass
        if p.stdout:
            p.stdout.close()
