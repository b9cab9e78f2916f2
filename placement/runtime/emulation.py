"""How ``--emulate`` makes this machine behave like the problem's devices and links.

**Devices.** Each worker runs its blocks at host speed with one intra-op thread, then waits
out the difference to the block's predicted time: a block whose problem time is ``t`` takes
``time_scale * t`` of wall time (`pace`). A worker that waits does not use the CPU, so
three or more workers on two cores are not slowed by sharing it as long as every block's
host time stays below its emulated time. ``time_scale`` (>= 1) slows the whole emulated
world down by one factor when the host is slower than a device of the problem (a Jetson's
predicted time is shorter than this machine can run the block); every measured figure is
divided by it again before it is reported, so reports are in the problem's seconds.

**Links.** ``tc netem`` in network namespaces would shape the loopback traffic in the
kernel; where the kernel has no netem (`netem_available`), the sender throttles each
message itself (`Link`): a message of ``n`` bytes handed to a link at ``t`` is sent when
``t + time_scale * (latency_s + n / bandwidth_bytes_per_s)`` has come, then crosses the
loopback for real. For single inferences links are contention-free, as SPEC section 5
says for latency: every message is timed from its own ready time. For the pipelined
stream a directed link transmits one message at a time (its transmission time
``n / bandwidth`` is the link's load in the SPEC's period), latency added on top.

**Shared media** (SPEC 5a). A link whose two devices share a medium transmits through
that medium's `Medium`: one sender at a time. In single inferences the senders keep the
plan's sending order (its ``medium_order``, or the evaluator's first-come-first-served
order): a message waits until every message before it in that order has taken the air,
then reserves its slot (start = the later of its ready time and the medium's free time),
as the evaluator schedules it. In the stream they go in the order the messages become
ready (the period model has no order). The medium's free time is shared by the workers of all its devices (separate
processes on this host) through a small file in the run folder, under ``flock``;
``time.perf_counter`` is the system-wide monotonic clock on Linux, so the workers' times
compare. Latency is added after the medium is released, as in the model.
"""

from __future__ import annotations

import subprocess
import threading
import time

#: the name a report gives each kind of link emulation.
THROTTLE = "throttle"
NONE = "none"


#: seconds a sender waits for its turn in the plan's medium order before it sends anyway
#: (first come first served): a plan whose order the run cannot follow must not hang the
#: workers; its transfers then show, in the report, how far they are from the prediction.
ORDER_WAIT_S = 30.0


class Medium:
    """A shared medium's state, shared across processes through ``path`` (flock): when it is
    next free and, for single inferences, whose turn it is in the plan's sending order
    (``sequence``: channel ids; `prepare._medium_sequence`)."""

    def __init__(self, path: str, sequence=()):
        self.path = path
        self.position = {c: k for k, c in enumerate(sequence)}
        open(path, "a").close()

    def reserve(self, t_ready: float, tx: float, channel: int | None = None,
                inference: int | None = None) -> float:
        """The start of a transmission of ``tx`` seconds ready at ``t_ready``: at once if the
        medium is free, else when it frees; the medium is then busy until start + tx. With
        ``channel`` and ``inference`` (a single inference), a channel of the plan's order
        first waits until every channel before it in that order has reserved (the model's
        sending order, SPEC 5a), at most `ORDER_WAIT_S`."""
        import fcntl
        ordered = inference is not None and channel in self.position
        give_up = time.perf_counter() + ORDER_WAIT_S
        while True:
            with open(self.path, "r+") as fh:
                fcntl.flock(fh, fcntl.LOCK_EX)
                try:
                    words = fh.read().split()
                    free_at = float(words[0]) if words else -float("inf")
                    turn_of, pos = (int(words[1]), int(words[2])) if len(words) >= 3 else (-1, 0)
                    if ordered and turn_of != inference:
                        turn_of, pos = inference, 0          # a new inference: the order restarts
                    late = ordered and time.perf_counter() > give_up
                    if not ordered or late or self.position[channel] <= pos:
                        start = max(t_ready, free_at)
                        if ordered:
                            pos = max(pos, self.position[channel] + 1)
                        fh.seek(0)
                        fh.truncate()
                        fh.write(f"{start + tx!r} {turn_of} {pos}")
                        fh.flush()
                        return start
                finally:
                    fcntl.flock(fh, fcntl.LOCK_UN)
            time.sleep(0.0002)


class Link:
    """The sender's throttle for one directed link (see the module docstring)."""

    def __init__(self, latency_s: float, bandwidth_bytes_per_s: float, time_scale: float = 1.0,
                 medium: Medium | None = None):
        self.medium = medium
        self.latency_s = float(latency_s)
        self.inv_bandwidth = 0.0 if bandwidth_bytes_per_s in (0, float("inf")) else 1.0 / float(bandwidth_bytes_per_s)
        self.time_scale = float(time_scale)
        self.serialise = False
        self._free_at = -float("inf")
        self._lock = threading.Lock()

    def reserve(self, t_ready: float, nbytes: int, channel: int | None = None,
                inference: int | None = None) -> float:
        """When a message of ``nbytes`` ready at ``t_ready`` (monotonic s) has arrived. On a
        shared medium in a single inference, ``channel`` and ``inference`` keep the plan's
        sending order (`Medium.reserve`); the stream sends first come first served."""
        tx = self.time_scale * nbytes * self.inv_bandwidth
        if self.medium is not None:     # the air is shared: one sender at a time on it
            single = None if self.serialise else inference
            return self.medium.reserve(t_ready, tx, channel, single) + tx + self.time_scale * self.latency_s
        with self._lock:
            start = max(t_ready, self._free_at) if self.serialise else t_ready
            if self.serialise:
                self._free_at = start + tx
        return start + tx + self.time_scale * self.latency_s

    def reset(self, serialise: bool) -> None:
        with self._lock:
            self.serialise = serialise
            self._free_at = -float("inf")


def sleep_until(deadline: float) -> None:
    """Wait (without using the CPU) until ``time.perf_counter()`` reaches ``deadline``."""
    while True:
        left = deadline - time.perf_counter()
        if left <= 0:
            return
        time.sleep(left)


def netem_available() -> tuple[bool, str]:
    """Whether ``tc qdisc ... netem`` works here (tried once in a throw-away network
    namespace); (answer, what was found)."""
    ns = f"placement-probe-{time.monotonic_ns() % 10**9}"
    try:
        r = subprocess.run(["ip", "netns", "add", ns], capture_output=True, text=True, timeout=5)
        if r.returncode != 0:
            return False, f"ip netns add: {r.stderr.strip() or r.returncode}"
        try:
            r = subprocess.run(["ip", "netns", "exec", ns, "tc", "qdisc", "add", "dev", "lo", "root", "netem",
                                "delay", "1ms"], capture_output=True, text=True, timeout=5)
            ok = r.returncode == 0
            return ok, "tc netem works" if ok else f"tc qdisc add ... netem: {r.stderr.strip()}"
        finally:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=5)
    except (OSError, subprocess.SubprocessError) as exc:
        return False, f"{type(exc).__name__}: {exc}"
