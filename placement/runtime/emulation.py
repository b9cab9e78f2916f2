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

A shared medium (SPEC 5a) is not modelled yet. `Link.reserve` is the one place a
transmission is given its slot; a medium would be one more `Link`-like lock whose free
time all links on it share (across the workers of its devices).
"""

from __future__ import annotations

import subprocess
import threading
import time

#: the name a report gives each kind of link emulation.
THROTTLE = "throttle"
NONE = "none"


class Link:
    """The sender's throttle for one directed link (see the module docstring)."""

    def __init__(self, latency_s: float, bandwidth_bytes_per_s: float, time_scale: float = 1.0):
        self.latency_s = float(latency_s)
        self.inv_bandwidth = 0.0 if bandwidth_bytes_per_s in (0, float("inf")) else 1.0 / float(bandwidth_bytes_per_s)
        self.time_scale = float(time_scale)
        self.serialise = False
        self._free_at = -float("inf")
        self._lock = threading.Lock()

    def reserve(self, t_ready: float, nbytes: int) -> float:
        """When a message of ``nbytes`` ready at ``t_ready`` (monotonic s) has arrived."""
        tx = self.time_scale * nbytes * self.inv_bandwidth
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
