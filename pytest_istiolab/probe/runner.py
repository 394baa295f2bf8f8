"""The traffic loops: bounded, rate-limited requests on each path until told to stop.

In-mesh: one ``kubectl exec`` into the sleep pod per batch, one curl invocation sending the
batch's requests to ``httpbin:8000/status/200`` (``traffic.batch_argv``; bodies kept so an
Envoy local reply names its flag). A batch holds one second's worth of requests at ``rate``,
so the API server sees one exec per second per probe. Ingress: one httpx request at a time to
the gateway, Host ``<namespace>.probe.istiolab.example``, paced at ``rate``.

Rate limiting never catches up: when a batch or a request took longer than its slot, the next
starts at once but the missed slots are dropped, so ``rate`` is an upper bound at every moment.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from pytest_istiolab import traffic
from pytest_istiolab.errors import IstioLabError
from pytest_istiolab.probe.continuity import Outcome, PathRecord, envoy_flag
from pytest_istiolab.probe.target import IN_MESH_URL, TARGET_PATH, ProbeTarget

Clock = Callable[[], float]


@dataclass(frozen=True)
class Limits:
    rate: float               # requests per second per path
    max_requests: int         # per path
    request_timeout: float    # seconds, one request (curl --max-time, httpx timeout)


class Pacer:
    """Slots ``1/rate`` apart; a late caller gets the next slot from now (no bursts)."""

    def __init__(self, rate: float, clock: Clock = time.monotonic) -> None:
        self.interval, self.clock = 1.0 / rate, clock
        self.next_at = clock()

    def wait(self, stop: threading.Event, slots: int = 1) -> bool:
        """Wait for the next slot (``slots`` intervals after the last one); False if stopped."""
        delay = self.next_at - self.clock()
        if delay > 0 and stop.wait(delay):
            return False
        self.next_at = max(self.next_at, self.clock()) + slots * self.interval
        return not stop.is_set()


class InMeshLoop(threading.Thread):
    """Batched curl from the sleep pod to httpbin."""

    def __init__(self, target: ProbeTarget, record: PathRecord, limits: Limits,
                 stop: threading.Event, t0: float, clock: Clock = time.monotonic) -> None:
        super().__init__(name="probe-in-mesh", daemon=True)
        self.target, self.record, self.limits, self.stop = target, record, limits, stop
        self.t0, self.clock = t0, clock
        self.batch = max(1, math.ceil(limits.rate))  # one second's worth
        self._pod: str | None = None

    def run(self) -> None:
        pacer = Pacer(self.limits.rate, self.clock)
        while self.record.requests < self.limits.max_requests:
            n = min(self.batch, self.limits.max_requests - self.record.requests)
            if not pacer.wait(self.stop, n):
                return
            self.send(n)

    def send(self, n: int) -> None:
        kube, ns = self.target.session.kube, self.target.namespace
        argv = traffic.batch_argv([IN_MESH_URL] * n, output=None,
                                  max_time=self.limits.request_timeout)
        start = self.clock()
        try:
            if self._pod is None:
                self._pod = kube.first_pod(ns, "app=sleep")
            result = kube.exec(ns, self._pod, argv, container="sleep",
                               timeout=n * self.limits.request_timeout + kube.timeouts.exec)
            results = traffic.parse_batch(result.stdout)
        except (IstioLabError, ValueError, OSError) as exc:
            self._pod = None  # the client pod may have been replaced: look again next time
            self.record.probe_error(self.clock() - self.t0, f"in-mesh client: {_first(exc)}")
            return
        done = self.clock()
        at = start
        for one in results:
            at = min(at + one.time_total, done)
            self.record.add(at - self.t0, Outcome(one.status, one.exit_code,
                                                  envoy_flag(one.status, one.body)))


class IngressLoop(threading.Thread):
    """httpx from this host to the ingress gateway, for the probe's own host name."""

    def __init__(self, target: ProbeTarget, record: PathRecord, limits: Limits,
                 stop: threading.Event, t0: float, clock: Clock = time.monotonic) -> None:
        super().__init__(name="probe-ingress", daemon=True)
        self.target, self.record, self.limits, self.stop = target, record, limits, stop
        self.t0, self.clock = t0, clock

    def run(self) -> None:
        pacer = Pacer(self.limits.rate, self.clock)
        while self.record.requests < self.limits.max_requests:
            if not pacer.wait(self.stop):
                return
            self.send()

    def send(self) -> None:
        ingress = self.target.session.ingress
        try:
            answer = ingress.get(TARGET_PATH, host=self.target.host,
                                 timeout=self.limits.request_timeout)
            outcome = Outcome(answer.status_code,
                              flag=envoy_flag(answer.status_code, answer.text))
        except httpx.TransportError as exc:
            outcome = Outcome(0, error=type(exc).__name__)
        except (IstioLabError, OSError) as exc:  # the gateway's Service or pods not found
            ingress.refresh()
            self.record.probe_error(self.clock() - self.t0, f"ingress: {_first(exc)}")
            return
        self.record.add(self.clock() - self.t0, outcome)


def _first(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0]
