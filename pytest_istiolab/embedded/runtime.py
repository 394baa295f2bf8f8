"""Shared run-time state of one embedded cluster: store, container logs, virtual clock, randomness.

Every part of the embedded cluster (API server, controllers, mesh model, workloads, exec
tools, listeners) receives one :class:`Runtime`; none of them keeps cluster state of its own.
"""

from __future__ import annotations

import random
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime

from .store import Store

NODE_NAME = "embedded-control-plane"
NODE_IP = "127.0.0.1"
CLUSTER_DOMAIN = "cluster.local"


@dataclass
class ExecResult:
    """What a command run in a container produced."""

    exit_code: int
    stdout: bytes = b""
    stderr: bytes = b""


class VirtualClock:
    """Wall-clock time plus an offset that grows when the mesh model "spends" simulated time.

    A request that takes 7 s of virtual time returns at once, but every timestamp it
    produces (access logs, app logs, Date headers) is on this clock, and the clock
    moves forward past it, so later requests never appear to happen earlier.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._offset = 0.0

    def now(self) -> float:
        with self._lock:
            return time.time() + self._offset

    def advance_to(self, t: float) -> None:
        """Make sure ``now()`` is never earlier than ``t`` from here on."""
        with self._lock:
            real = time.time()
            if real + self._offset < t:
                self._offset = t - real


@dataclass
class LogLine:
    when: float  # epoch seconds (virtual clock)
    text: str


class LogBook:
    """Container logs, keyed by (namespace, pod, container); what ``kubectl logs`` reads."""

    def __init__(self, max_lines: int = 20000) -> None:
        self._lock = threading.Lock()
        self._lines: dict[tuple[str, str, str], list[LogLine]] = defaultdict(list)
        self._max = max_lines

    def append(self, namespace: str, pod: str, container: str, text: str, when: float) -> None:
        with self._lock:
            lines = self._lines[(namespace, pod, container)]
            for part in text.rstrip("\n").split("\n"):
                lines.append(LogLine(when, part))
            if len(lines) > self._max:
                del lines[: len(lines) - self._max]

    def lines(self, namespace: str, pod: str, container: str) -> list[LogLine]:
        with self._lock:
            return sorted(self._lines.get((namespace, pod, container), []), key=lambda ln: ln.when)

    def read(self, namespace: str, pod: str, container: str, *, since_seconds: float | None = None,
             since_time: float | None = None, tail_lines: int | None = None,
             timestamps: bool = False, now: float | None = None) -> str:
        lines = self.lines(namespace, pod, container)
        if since_seconds is not None:
            cutoff = (now if now is not None else time.time()) - since_seconds
            lines = [ln for ln in lines if ln.when >= cutoff]
        if since_time is not None:
            lines = [ln for ln in lines if ln.when >= since_time]
        if tail_lines is not None:
            lines = lines[-tail_lines:] if tail_lines > 0 else []
        out = []
        for ln in lines:
            prefix = rfc3339_nano(ln.when) + " " if timestamps else ""
            out.append(prefix + ln.text + "\n")
        return "".join(out)

    def forget_pod(self, namespace: str, pod: str) -> None:
        with self._lock:
            for key in [k for k in self._lines if k[0] == namespace and k[1] == pod]:
                del self._lines[key]


def rfc3339_nano(t: float) -> str:
    dt = datetime.fromtimestamp(t, UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond:06d}000Z"


def iso_millis(t: float) -> str:
    """Envoy's ``%START_TIME%`` format: 2025-05-09T00:44:20.123Z."""
    dt = datetime.fromtimestamp(t, UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


@dataclass
class Runtime:
    """Everything one embedded cluster shares between its parts."""

    store: Store
    seed: int
    logs: LogBook = field(default_factory=LogBook)
    clock: VirtualClock = field(default_factory=VirtualClock)
    rng: random.Random = field(init=False)
    node_name: str = NODE_NAME
    node_ip: str = NODE_IP

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
