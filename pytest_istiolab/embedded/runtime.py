"""Shared run-time state of one embedded cluster: store, container logs, virtual clock, randomness.

Every part of the embedded cluster (API server, controllers, mesh model, workloads, exec
tools, listeners) receives one :class:`Runtime`; none of them keeps cluster state of its own.
"""

from __future__ import annotations

import random
import socket
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime

from .realism import Later, Realism
from .store import Store

NODE_NAME = "embedded-control-plane"
NODE_IP = "127.0.0.1"
CLUSTER_DOMAIN = "cluster.local"


@dataclass
class ExecResult:
    """What a command run in a container produced.

    ``order`` keeps the writes as the command made them (``(1, bytes)`` for stdout,
    ``(2, bytes)`` for stderr), so that an exec with a tty, or a ``2>&1`` capture, sees them
    interleaved as a real process writes them; without it, stdout comes before stderr.
    """

    exit_code: int
    stdout: bytes = b""
    stderr: bytes = b""
    order: tuple[tuple[int, bytes], ...] = ()

    @classmethod
    def written(cls, exit_code: int, writes: list[tuple[int, bytes]]) -> ExecResult:
        kept = tuple((fd, data) for fd, data in writes if data)
        out = b"".join(data for fd, data in kept if fd == 1)
        err = b"".join(data for fd, data in kept if fd == 2)
        return cls(exit_code, out, err, kept)

    def writes(self) -> list[tuple[int, bytes]]:
        """The writes in the order the command made them."""
        if self.order:
            return list(self.order)
        return [(fd, data) for fd, data in ((1, self.stdout), (2, self.stderr)) if data]


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


class NodePortHolds:
    """NodePorts this cluster owns on the host, held by a bound (not listening) socket.

    Several embedded clusters may run on one machine (one per xdist worker). A NodePort is
    allocated only if this process can bind it, and stays bound from allocation until the
    Service goes away, so no other process can take it while nothing listens behind it
    (connections are refused, as on a node whose Service has no ready backend). The listener
    manager borrows the socket to listen on it and hands the port back when it stops.
    The sockets never set SO_REUSEADDR (on Linux two such sockets could share a port), except
    when a port is held again after its listener closed (see :meth:`give_back`).
    """

    def __init__(self, host: str) -> None:
        self.host = host
        self._lock = threading.Lock()
        self._held: dict[int, socket.socket | None] = {}  # None: lent to a listener

    def reserve(self, port: int) -> bool:
        """Hold ``port`` for this cluster; False if another socket on the host has it."""
        with self._lock:
            if port in self._held:
                return True
            sock = _bind(self.host, port)
            if sock is None:
                return False
            self._held[port] = sock
            return True

    def lend(self, port: int) -> socket.socket | None:
        """The bound socket of ``port`` for a listener to ``listen()`` on (None if not held)."""
        with self._lock:
            if self._held.get(port) is None and port in self._held:
                return None  # already lent
            if port not in self._held:
                sock = _bind(self.host, port)
                if sock is None:
                    return None
                self._held[port] = sock
            lent, self._held[port] = self._held[port], None
            if lent is None:
                return None
            # connections of a listening socket linger in TIME_WAIT after it closes; they block
            # holding the port again (give_back) unless the listener had SO_REUSEADDR
            lent.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            return lent

    def give_back(self, port: int) -> None:
        """A listener closed its socket: hold the port again while its Service exists."""
        with self._lock:
            if port in self._held and self._held[port] is None:
                # the listener's closed connections linger in TIME_WAIT on this port: without
                # SO_REUSEADDR (on both) the port could not be held again for a minute. Safe:
                # the listener had the port exclusively, and a socket without SO_REUSEADDR
                # (every other cluster's hold) still cannot bind it next to this one.
                sock = _bind(self.host, port, reuse=True)
                if sock is None:
                    del self._held[port]
                else:
                    self._held[port] = sock

    def keep_only(self, ports: set[int]) -> None:
        """Release every held port no Service uses any more (listeners release their own)."""
        with self._lock:
            for port in [p for p in self._held if p not in ports and self._held[p] is not None]:
                sock = self._held.pop(port)
                if sock is not None:
                    sock.close()

    def close(self) -> None:
        with self._lock:
            for sock in self._held.values():
                if sock is not None:
                    sock.close()
            self._held.clear()


def _bind(host: str, port: int, reuse: bool = False) -> socket.socket | None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if reuse:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        return None
    return sock


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
    realism: Realism | None = None  # the realism profile (see .realism); None: off
    later: Later = field(default_factory=Later)  # delayed steps of the realism profile

    node_ports: NodePortHolds = field(init=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.node_ports = NodePortHolds(self.node_ip)
