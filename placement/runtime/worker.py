"""One worker process: the blocks of one device of the plan.

Started by the supervisor as ``python -m placement.runtime.worker RUN_DIR RANK`` (or by hand
on another machine, see docs/runtime.md). It reads the run description, rebuilds only its
own blocks, joins the gloo process group, and runs two phases:

1. single inferences, one at a time (a barrier between them), the first one a warm-up;
2. a pipelined stream: every input is in flight at once and the worker runs, among its
   blocks whose inputs have arrived, the one of the earliest input (the plan's order within
   one input), so that it starts the next input as soon as it can.

Threads: the compute thread runs the blocks; one sender thread per outgoing channel (a
block's values for one consumer device: one message, one send) throttles and sends; one
receiver thread per incoming channel posts its receives (the message size is fixed by the
layout, so a receive is posted before the message exists); a heartbeat thread reports the
worker's state to the supervisor every `HEARTBEAT_S` on the control pipe (stdout, one JSON
object a line; the worker's own prints go to stderr).

Every record is a ``time.perf_counter()`` timestamp (CLOCK_MONOTONIC on Linux, shared by
the processes of one machine), taken where the event happens.
"""

from __future__ import annotations

import ctypes
import datetime
import gc
import json
import os
import pickle
import queue
import signal
import socket
import sys
import threading
import time
import traceback
from typing import Any

HEARTBEAT_S = 0.5
#: tag = channel * TAG_STRIDE + inference index
TAG_STRIDE = 1 << 16

_ctl_lock = threading.Lock()
_ctl = None


def emit(**msg: Any) -> None:
    """One line to the supervisor."""
    if _ctl is None:
        return
    with _ctl_lock:
        try:
            _ctl.write(json.dumps(msg) + "\n")
            _ctl.flush()
        except (OSError, ValueError):
            pass


def _die_with_parent() -> None:
    """Linux: SIGKILL this process when the supervisor dies (no orphans even if it is killed)."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class Worker:
    def __init__(self, spec: dict[str, Any], rank: int):
        import torch

        self.torch = torch
        self.spec = spec
        self.rank = rank
        self.device = spec["world"][rank]
        self.state = "starting"
        self.cond = threading.Condition()
        self.values: dict[tuple[int, str], Any] = {}
        self.arrived: dict[tuple[int, str], float] = {}
        self.rec: dict[str, list] = {"blocks": [], "sends": [], "recvs": [], "inputs": [], "outputs": []}
        self.outputs: dict[int, Any] = {}
        self.failed: BaseException | None = None
        self.blocks_done = 0
        fault = os.environ.get("PLACEMENT_RUNTIME_FAULT", "")  # tests: "kill|hang|stop:DEVICE:BLOCK"
        parts = fault.split(":", 2)
        self.fault = (parts[0], parts[2]) if len(parts) == 3 and parts[1] == self.device else None

    # ------------------------------------------------------------------ state
    def set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            emit(state=state, done=self.blocks_done)

    def heartbeat(self) -> None:
        while True:
            emit(hb=time.time(), state=self.state, done=self.blocks_done)
            time.sleep(HEARTBEAT_S)

    def thread(self, target, *args) -> threading.Thread:
        def body():
            try:
                target(*args)
            except BaseException as exc:  # noqa: BLE001 - any failure ends the worker, reported
                self.fail(exc)
        t = threading.Thread(target=body, daemon=True)
        t.start()
        return t

    def fail(self, exc: BaseException) -> None:
        emit(error=f"{type(exc).__name__}: {exc}", state=self.state,
             traceback=traceback.format_exc(limit=8))
        sys.stderr.flush()
        os._exit(1)

    # ------------------------------------------------------------------ setup
    def setup(self) -> None:
        import torch.distributed as dist

        from .blocks import build_model, rebuild, trace_model

        spec = self.spec
        torch = self.torch
        torch.set_num_threads(spec["threads"])
        mine = [b for b in spec["order"].get(self.device, [])]
        self.set_state("rebuilding its blocks")
        if mine and spec.get("conditional"):   # a scenario problem: several source models, router, exits
            from .conditional import rebuild_for_worker
            self.blocks = rebuild_for_worker(spec, mine)
        elif mine:
            model = build_model(spec["model"], spec["seed"])
            gm = trace_model(model, **(spec.get("trace") or {}))
            self.blocks = rebuild(gm, [(b, spec["blocks"][b]["fx_nodes"]) for b in mine])
            self._shard_blocks(model)
            del model, gm
            gc.collect()
        else:
            self.blocks = {}
        self.order = mine
        self.is_source = self.device == spec["source"]
        self.is_sink = self.device == spec["sink"]
        chans = spec["channels"]
        self.out_ch: dict[str, list[dict]] = {}
        self.in_ch = [c for c in chans if c["dst"] == self.device]
        for c in chans:
            if c["src"] == self.device:
                self.out_ch.setdefault(c["producer"], []).append(c)
        if self.is_source:
            g = torch.Generator().manual_seed(spec["seed"] + 1000)
            self.inputs = [torch.randn(*spec["input_shape"], generator=g) for _ in range(spec["n_inputs"])]
        from .emulation import Link, Medium
        self.links = {}
        media: dict[str, Medium] = {}
        for c in chans:
            if c["src"] == self.device and c["dst"] not in self.links:
                med = None
                if c.get("medium") is not None and spec["emulate"]:
                    mid = c["medium"]
                    if mid not in media:
                        media[mid] = Medium(os.path.join(spec["media_dir"], f"medium-{mid}.time"),
                                            (spec.get("medium_sequence") or {}).get(mid, ()))
                    med = media[mid]
                self.links[c["dst"]] = Link(c["latency_s"], c["bandwidth_bytes_per_s"], spec["time_scale"],
                                            medium=med)
        self.queues: dict[int, queue.Queue] = {}
        for cs in self.out_ch.values():
            for c in cs:
                q: queue.Queue = queue.Queue()
                self.queues[c["id"]] = q
                self.thread(self.sender, c, q)

        self.set_state("joining the process group")
        addr, port = spec["master_addr"], spec["master_port"]
        dist.init_process_group("gloo", init_method=f"tcp://{addr}:{port}", rank=self.rank,
                                world_size=len(spec["world"]),
                                timeout=datetime.timedelta(seconds=spec["timeout_s"]))
        self.dist = dist
        self.ctrl = dist.new_group(backend="gloo")
        emit(ready=True, host=socket.gethostname(), pid=os.getpid())

    def _shard_blocks(self, model) -> None:
        """Shards of split blocks (SPEC 6) run as their shard (runtime/shards.py), not whole."""
        from .shards import runtime_shard

        for bid in list(self.blocks):
            desc = self.spec["blocks"][bid].get("shard")
            if desc is not None:
                self.blocks[bid] = runtime_shard(self.blocks[bid], desc, model)

    def _has(self, i: int, name: str) -> bool:
        """Whether value ``name`` of inference ``i`` is here or can be made here (a slice or
        a gather of split blocks' values whose ingredients are here). Under ``self.cond``."""
        if (i, name) in self.values:
            return True
        derived = self.spec.get("derived") or {}
        if name not in derived:
            return False
        from .shards import resolvable
        return resolvable(name, _Have(self.values, i), derived)

    def _value(self, i: int, name: str):
        """Value ``name`` of inference ``i``, made from its recipe if needed (cached, its
        arrival the latest of its ingredients'). Under ``self.cond``."""
        if (i, name) in self.values:
            return self.values[(i, name)]
        from .shards import resolve

        def put(n, v, ingredients):
            self.values[(i, n)] = v
            self.arrived[(i, n)] = max(self.arrived.get((i, x), 0.0) for x in ingredients)

        return resolve(name, lambda n: self.values[(i, n)], put, self.spec.get("derived") or {})

    # ------------------------------------------------------------------ threads
    def sender(self, ch: dict, q: queue.Queue) -> None:
        from .blocks import pack
        from .emulation import sleep_until

        dst = self.spec["world"].index(ch["dst"])
        link = self.links[ch["dst"]]
        emulate = self.spec["emulate"]
        while True:
            item = q.get()
            if item is None:
                q.task_done()
                return
            i, t_ready, vals = item
            buf = pack(ch["names"], ch["layout"], ch["object_bytes"], vals)
            if emulate:
                sleep_until(link.reserve(t_ready, buf.numel(), ch["id"], i))
            t_s = time.perf_counter()
            self.dist.isend(buf, dst, tag=ch["id"] * TAG_STRIDE + i).wait()
            t_e = time.perf_counter()
            self.rec["sends"].append((ch["id"], i, t_ready, t_s, t_e))
            q.task_done()

    def receiver(self, ch: dict, ids: list[int]) -> None:
        from .blocks import unpack

        src = self.spec["world"].index(ch["src"])
        torch = self.torch
        for i in ids:
            buf = torch.empty(ch["nbytes"], dtype=torch.uint8)
            self.dist.irecv(buf, src, tag=ch["id"] * TAG_STRIDE + i).wait()
            t = time.perf_counter()
            vals = unpack(buf, ch["names"], ch["layout"], ch["object_bytes"])
            with self.cond:
                for n, v in vals.items():
                    self.values[(i, n)] = v
                    self.arrived[(i, n)] = t
                self.cond.notify_all()
            self.rec["recvs"].append((ch["id"], i, t))

    # ------------------------------------------------------------------ one phase
    def phase(self, ids: list[int], stream: bool) -> None:
        from .blocks import SOURCE

        for link in self.links.values():
            link.reset(serialise=stream)
        receivers = [self.thread(self.receiver, c, [i for i in ids if self._active(c, i)]) for c in self.in_ch]
        tasks = {i: self._tasks(i) for i in ids}
        if self.is_source:
            t_in = time.perf_counter()
            with self.cond:
                for i in ids:
                    self._put(i, {self.spec["in_name"]: self.inputs[i % len(self.inputs)]}, t_in)
                    self.rec["inputs"].append((i, t_in))
            for i in ids:
                self._send(SOURCE, i, t_in)
        ptr = {i: 0 for i in ids}
        live = [i for i in ids if tasks[i]]
        while live:
            pick = None
            with self.cond:
                while pick is None:
                    for i in live:
                        if self._ready(i, tasks[i][ptr[i]]):
                            pick = (i, tasks[i][ptr[i]])
                            break
                        if not stream:
                            break
                    if pick is None:
                        i = live[0]
                        self.set_state(f"waiting for the inputs of {self._what(tasks[i][ptr[i]])} (inference {i})")
                        self.cond.wait(0.2)
            i, task = pick
            if task == "@output":
                self._collect(i)
            else:
                self._run(i, task)
            ptr[i] += 1
            if ptr[i] == len(tasks[i]):
                live.remove(i)
                with self.cond:  # nothing of inference i is needed here any more
                    for key in [k for k in self.values if k[0] == i]:
                        del self.values[key]
                        self.arrived.pop(key, None)
        for t in receivers:
            t.join()
        for q in self.queues.values():
            q.join()

    def _what(self, task: str) -> str:
        return "the model output" if task == "@output" else f"block '{task}'"

    def _ready(self, i: int, task: str) -> bool:
        names = self._output_names(i) if task == "@output" else self.blocks[task].inputs
        return all(self._has(i, n) for n in names)

    def _put(self, i: int, vals: dict[str, Any], t: float) -> None:
        for n, v in vals.items():
            self.values[(i, n)] = v
            self.arrived[(i, n)] = t

    def _send(self, producer: str, i: int, t_ready: float) -> None:
        for c in self.out_ch.get(producer, ()):
            if not self._active(c, i):
                continue
            with self.cond:
                vals = {n: self._value(i, n) for n in c["names"]}
            self.queues[c["id"]].put((i, t_ready, vals))

    def _run(self, i: int, bid: str) -> None:
        from .blocks import run_block
        from .emulation import sleep_until

        blk = self.blocks[bid]
        self.set_state(f"running block '{bid}' (inference {i})")
        if self.fault and self.fault[1] == bid:
            if self.fault[0] == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            elif self.fault[0] == "hang":
                time.sleep(10**6)
            elif self.fault[0] == "stop":  # frozen whole (heartbeat thread too), as a paused process
                os.kill(os.getpid(), signal.SIGSTOP)
        with self.cond:
            ins = {n: self._value(i, n) for n in blk.inputs}
        t0 = time.perf_counter()
        outs = run_block(blk, ins)
        t1 = time.perf_counter()
        if self.spec["emulate"]:
            sleep_until(t0 + self.spec["time_scale"] * self.spec["blocks"][bid]["compute_s"])
        t2 = time.perf_counter()
        with self.cond:
            self._put(i, outs, t2)
            self.cond.notify_all()
        self.rec["blocks"].append((i, bid, t0, t1, t2))
        self.blocks_done += 1
        self._send(bid, i, t2)

    def _collect(self, i: int) -> None:
        from .blocks import fill_structure

        names = self._output_names(i)
        with self.cond:
            vals = {n: self._value(i, n) for n in names}
            t_out = max(self.arrived[(i, n)] for n in names)
        out = self._output_value(i, vals) if self._scenario(i) else fill_structure(self.spec["output_structure"], vals)
        self.outputs[i] = self.torch.utils._pytree.tree_map(
            lambda v: v.clone() if isinstance(v, self.torch.Tensor) else v, out)
        self.rec["outputs"].append((i, t_out))

    # ------------------------------------------------------------------ scenarios
    # (placement/runtime/conditional.py): each inference runs one scenario, fixed in the run
    # description; only its blocks run here and only its messages travel. Without scenarios
    # every inference runs every block.
    def _scenario(self, i: int) -> str | None:
        seq = self.spec.get("scenario_of")
        return None if seq is None else seq[i]

    def _active(self, ch: dict, i: int) -> bool:
        return ch.get("scenarios") is None or self._scenario(i) in ch["scenarios"]

    def _tasks(self, i: int) -> list[str]:
        s = self._scenario(i)
        run = None if s is None else set(self.spec["scenarios"][s]["run"])
        mine = [b for b in self.order if run is None or b in run]
        return mine + (["@output"] if self.is_sink else [])

    def _output_names(self, i: int) -> list[str]:
        s = self._scenario(i)
        return self.spec["output_names"] if s is None else self.spec["scenarios"][s]["output_names"]

    def _output_value(self, i: int, vals: dict[str, Any]) -> dict[str, tuple]:
        """A scenario's result: block id -> its result values (conditional.references)."""
        res = self.spec["scenarios"][self._scenario(i)]["results"]
        return {b: tuple(vals[n] for n in names) for b, names in res.items()}

    # ------------------------------------------------------------------ main
    def main(self, run_dir: str) -> None:
        self.setup()
        spec = self.spec
        n = spec["n_single"]
        for i in range(n):
            self.phase([i], stream=False)
            self.set_state(f"at the barrier after single inference {i}")
            self.dist.barrier(group=self.ctrl)
        ids = list(range(n, n + spec["n_stream"]))
        self.phase(ids, stream=True)
        self.set_state("at the barrier after the stream")
        self.dist.barrier(group=self.ctrl)
        self.set_state("sending its measurements to the sink")
        mine = {"device": self.device, "rank": self.rank, "host": socket.gethostname(), **self.rec}
        sink_rank = spec["world"].index(spec["sink"])
        gathered = [None] * len(spec["world"]) if self.rank == sink_rank else None
        self.dist.gather_object(mine, gathered, dst=sink_rank, group=self.ctrl)
        if self.rank == sink_rank:
            records = os.path.join(run_dir, "records.pkl")
            with open(records + ".tmp", "wb") as f:
                pickle.dump({"workers": gathered, "outputs": self.outputs}, f)
            os.replace(records + ".tmp", records)
        self.dist.barrier(group=self.ctrl)
        for q in self.queues.values():
            q.put(None)
        self.dist.destroy_process_group()
        self.set_state("done")
        emit(done=True)
        sys.stderr.flush()
        os._exit(0)  # the records are written; do not wait for library destructors at shutdown


class _Have:
    """The value names of inference ``i`` present in a worker's ``values`` (for `resolvable`)."""

    def __init__(self, values, i: int):
        self.values, self.i = values, i

    def __contains__(self, name: str) -> bool:
        return (self.i, name) in self.values


def main(argv: list[str] | None = None) -> int:
    global _ctl
    argv = sys.argv[1:] if argv is None else argv
    run_dir, rank = argv[0], int(argv[1])
    # the control pipe is the original stdout; anything the libraries print goes to stderr
    _ctl = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    if os.environ.get("PLACEMENT_RUNTIME_SUPERVISED"):
        _die_with_parent()
    with open(os.path.join(run_dir, "run.pkl"), "rb") as f:
        spec = pickle.load(f)
    state = {"state": "starting (importing torch)", "done": 0}

    def early_heartbeat():  # until the worker exists: importing torch takes seconds on a busy host
        while state.get("worker") is None:
            emit(hb=time.time(), state=state["state"], done=0)
            time.sleep(HEARTBEAT_S)
        state["worker"].heartbeat()

    threading.Thread(target=early_heartbeat, daemon=True).start()
    try:
        w = Worker(spec, rank)
    except BaseException as exc:  # noqa: BLE001
        emit(error=f"{type(exc).__name__}: {exc}", state=state["state"])
        os._exit(1)
    state["worker"] = w
    try:
        w.main(run_dir)
    except BaseException as exc:  # noqa: BLE001 - reported on the control pipe, exit 1
        w.fail(exc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
