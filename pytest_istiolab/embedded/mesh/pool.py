"""A sidecar's connection pool for one upstream cluster: Envoy's circuit breakers, in virtual time.

Scope and limitations
---------------------
Modelled, per client sidecar and cluster (Istio applies a DestinationRule in every client's
proxy separately), from ``trafficPolicy.connectionPool`` (top level, then
``portLevelSettings`` for the port, then the subset's own ``trafficPolicy``, each replacing
whole fields as Istio merges them):

* ``tcp.maxConnections`` (Envoy ``max_connections``), ``http.http1MaxPendingRequests``
  (``max_pending_requests``), ``http.http2MaxRequests`` (``max_requests``),
  ``http.maxRequestsPerConnection`` (a connection closes after that many requests; 0 means
  unlimited) and ``http.maxRetries`` (``max_retries``, exposed for the retry logic).
  Istio's defaults are 2^32-1 for every threshold, with ``track_remaining`` on.
* HTTP/1.1 upstream connections: one request at a time per connection. A request that finds
  no idle connection waits in the pending queue (``upstream_rq_pending_total``) while a new
  connection is opened (sidecar to sidecar, mutual TLS: 0.2-0.9 ms of virtual time) or, at
  ``maxConnections``, until a busy one finishes (``upstream_cx_overflow``). A request that
  finds the queue full is refused at once: 503 ``UO``, ``x-envoy-overloaded: true``, body
  ``upstream connect error or disconnect/reset before headers. reset reason: overflow``,
  details ``upstream_reset_before_response_started{overflow}``
  (``upstream_rq_pending_overflow``). The same happens at ``http2MaxRequests`` active requests.
* Outlier detection lives in :mod:`.outlier`; the Envoy counters these produce are rendered by
  :mod:`.stats`.

The pool is a timeline: every request is admitted at the virtual time it reaches the router,
and its upstream call is computed at once, so later arrivals see when each connection frees
up. Arrivals must therefore come in time order, which the fortio simulation guarantees; a
request arriving earlier than one already admitted is treated as arriving with it. Not
modelled: priorities other than ``default``, HTTP/2 upstream multiplexing, idle timeouts,
``maxConnectionDuration``, connect timeouts (a connection always succeeds), retry budgets.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from typing import Any

from ..runtime import Runtime
from .model import Cluster, Endpoint, LocalReply, Response
from .outlier import Detector, OutlierPolicy, outlier_policy
from .state import extension

Obj = dict[str, Any]
UNLIMITED = 2**32 - 1
OVERFLOW = LocalReply(
    503, "upstream connect error or disconnect/reset before headers. reset reason: overflow",
    "UO", "upstream_reset_before_response_started{overflow}")
OVERLOADED_HEADER = ("x-envoy-overloaded", "true")
CONNECT_MS = (0.2, 0.9)  # a new upstream connection: TCP plus the mTLS handshake


@dataclass(frozen=True)
class Limits:
    """Envoy's circuit-breaker thresholds for the ``default`` priority, as Istio sets them."""

    max_connections: int = UNLIMITED
    max_pending: int = UNLIMITED
    max_requests: int = UNLIMITED
    max_retries: int = UNLIMITED
    per_connection: int = 0  # maxRequestsPerConnection; 0: unlimited


def traffic_policy(rule: Obj | None, port: int, subset: str | None) -> Obj:
    """The DestinationRule's effective trafficPolicy for ``port`` and ``subset``."""
    spec = (rule or {}).get("spec") or {}
    policy = _with_port(dict(spec.get("trafficPolicy") or {}), port)
    for entry in spec.get("subsets") or []:
        if subset and entry.get("name") == subset and entry.get("trafficPolicy"):
            policy.update(_with_port(dict(entry["trafficPolicy"]), port))
    return policy


def _with_port(policy: Obj, port: int) -> Obj:
    for level in policy.pop("portLevelSettings", None) or []:
        if int(((level.get("port") or {}).get("number")) or -1) == port:
            policy.update({k: v for k, v in level.items() if k != "port"})
    return policy


def limits_of(policy: Obj) -> Limits:
    pool = policy.get("connectionPool") or {}
    tcp, http = pool.get("tcp") or {}, pool.get("http") or {}
    return Limits(max_connections=_int(tcp.get("maxConnections"), UNLIMITED),
                  max_pending=_int(http.get("http1MaxPendingRequests"), UNLIMITED),
                  max_requests=_int(http.get("http2MaxRequests"), UNLIMITED),
                  max_retries=_int(http.get("maxRetries"), UNLIMITED),
                  per_connection=_int(http.get("maxRequestsPerConnection"), 0))


def _int(value: object, default: int) -> int:
    try:
        number = int(str(value)) if value is not None else default
    except ValueError:
        return default
    return number if number > 0 or default == 0 else default


# ----------------------------------------------------------------------- the timeline
@dataclass
class Slot:
    """One upstream connection of the pool (open, busy until ``free_at``, or closed)."""

    free_at: float = -math.inf  # when the request on it completes (inf: still computing)
    open_until: float = -math.inf  # the connection exists until then (inf: kept alive)
    served: int = 0

    def busy(self, t: float) -> bool:
        return self.free_at > t

    def is_open(self, t: float) -> bool:
        return self.busy(t) or t < self.open_until


@dataclass
class Ticket:
    """An admitted request: written upstream at ``start`` on ``slot``."""

    arrival: float
    start: float
    slot: Slot
    pending: bool
    new_connection: bool


@dataclass
class Gate:
    """The pool state of one sidecar for one cluster, as intervals on the virtual clock."""

    slots: list[Slot] = field(default_factory=list)
    queue: list[tuple[float, float]] = field(default_factory=list)  # (arrival, dispatch)

    def pending_at(self, t: float) -> int:
        return sum(1 for arrival, dispatch in self.queue if arrival <= t < dispatch)

    def open_at(self, t: float) -> int:
        return sum(1 for s in self.slots if s.is_open(t))

    def busy_at(self, t: float) -> int:
        return sum(1 for s in self.slots if s.busy(t))

    def admit(self, t: float, limits: Limits, connect: float, counters: dict[str, int]
              ) -> Ticket | None:
        """Admit a request arriving at ``t``; None: refused (circuit breaker overflow)."""
        self.queue = [q for q in self.queue if q[1] > t]
        if self.busy_at(t) >= limits.max_requests:
            return None
        waiting = self.pending_at(t)
        idle = self._idle(t, limits) if waiting == 0 else None
        if idle is not None:
            idle.free_at, idle.served = math.inf, idle.served + 1
            return Ticket(t, t, idle, pending=False, new_connection=False)
        if waiting >= limits.max_pending:
            return None
        counters["upstream_rq_pending_total"] += 1
        ticket = self._queue(t, limits, connect, counters)
        self.queue.append((t, ticket.start))
        return ticket

    def _idle(self, t: float, limits: Limits) -> Slot | None:
        for slot in self.slots:
            if not slot.busy(t) and t < slot.open_until and (
                    limits.per_connection == 0 or slot.served < limits.per_connection):
                return slot
        return None

    def _queue(self, t: float, limits: Limits, connect: float,
               counters: dict[str, int]) -> Ticket:
        if self.open_at(t) < limits.max_connections:
            slot = next((s for s in self.slots if not s.is_open(t)), None)
            if slot is None:
                slot = Slot()
                self.slots.append(slot)
            return self._connect(slot, t, t + connect, counters)
        counters["upstream_cx_overflow"] += 1
        waiting = [s for s in self.slots if s.free_at != math.inf and s.is_open(t)]
        if not waiting:  # only re-entrant calls hold the connections: do not deadlock
            slot = Slot()
            self.slots.append(slot)
            return self._connect(slot, t, t + connect, counters)
        slot = min(waiting, key=lambda s: s.free_at)
        freed = max(t, slot.free_at)
        if slot.open_until <= freed:  # it closes when done (maxRequestsPerConnection)
            return self._connect(slot, t, freed + connect, counters)
        slot.free_at, slot.served = math.inf, slot.served + 1
        return Ticket(t, freed, slot, pending=True, new_connection=False)

    @staticmethod
    def _connect(slot: Slot, t: float, start: float, counters: dict[str, int]) -> Ticket:
        counters["upstream_cx_total"] += 1
        counters["upstream_cx_http1_total"] += 1
        slot.free_at, slot.open_until, slot.served = math.inf, math.inf, 1
        return Ticket(t, start, slot, pending=True, new_connection=True)

    @staticmethod
    def release(ticket: Ticket, end: float, limits: Limits, counters: dict[str, int]) -> None:
        slot = ticket.slot
        slot.free_at = max(end, ticket.start)
        if limits.per_connection and slot.served >= limits.per_connection:
            slot.open_until = slot.free_at
            counters["upstream_cx_max_requests"] += 1
            counters["upstream_cx_destroy"] += 1
            counters["upstream_cx_destroy_local"] += 1


# ---------------------------------------------------------------------------- lanes
class Counters(dict[str, int]):
    """Envoy cluster counters: every name reads 0 until incremented."""

    def __missing__(self, key: str) -> int:
        return 0


@dataclass
class Lane:
    """One sidecar's view of one upstream cluster: pool, outlier detector and counters."""

    cluster: str
    limits: Limits = field(default_factory=Limits)
    outlier: OutlierPolicy | None = None
    gate: Gate = field(default_factory=Gate)
    detector: Detector = field(default_factory=Detector)
    counters: Counters = field(default_factory=Counters)
    lock: threading.RLock = field(default_factory=threading.RLock)

    def configure(self, rule: Obj | None, port: int, subset: str | None) -> None:
        policy = traffic_policy(rule, port, subset)
        self.limits, self.outlier = limits_of(policy), outlier_policy(policy)

    def healthy(self, endpoints: list[Endpoint], t: float) -> list[Endpoint]:
        """Endpoints not ejected by outlier detection at ``t``."""
        with self.lock:
            return self.detector.healthy(self.outlier, endpoints, t, self.counters)

    def admit(self, t: float, connect: float) -> Ticket | None:
        with self.lock:
            ticket = self.gate.admit(t, self.limits, connect, self.counters)
            if ticket is None:
                self.counters["upstream_rq_pending_overflow"] += 1
            else:
                self.counters["upstream_rq_total"] += 1
            return ticket

    def finish(self, ticket: Ticket, endpoint: Endpoint, response: Response,
               endpoints: int) -> None:
        """The upstream answered (or failed): free the connection, feed outlier detection."""
        with self.lock:
            self.gate.release(ticket, response.end, self.limits, self.counters)
            self.counters["upstream_rq_completed"] += 1
            if response.failure is None:
                self.counters[f"upstream_rq_{response.status}"] += 1
                self.counters[f"upstream_rq_{response.status // 100}xx"] += 1
            status = 503 if response.failure is not None else response.status
            self.detector.record(self.outlier, f"{endpoint.ip}:{endpoint.port}", status,
                                 response.end, endpoints, self.counters)


def lanes_of(runtime: Runtime, pod: Obj) -> dict[str, Lane]:
    """Every lane of ``pod``'s sidecar, by cluster name (cumulative for the pod's life)."""
    registry: dict[tuple[str, str, str], dict[str, Lane]] = extension(runtime, "pool", dict)
    meta = pod["metadata"]  # the uid: a re-created pod of the same name starts from zero
    key = (str(meta.get("namespace") or "default"), str(meta["name"]), str(meta.get("uid", "")))
    return registry.setdefault(key, {})


def lane(runtime: Runtime, pod: Obj, cluster: Cluster) -> Lane:
    """The lane of ``pod``'s sidecar for ``cluster``, configured from its DestinationRule."""
    lanes = lanes_of(runtime, pod)
    found = lanes.get(cluster.name)
    if found is None:
        found = lanes.setdefault(cluster.name, Lane(cluster.name))
    found.configure(cluster.destination_rule, cluster.port, cluster.subset)
    return found
