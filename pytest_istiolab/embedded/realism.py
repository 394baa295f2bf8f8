"""The realism profile: the embedded cluster made as unkind in time as a real one (off by default).

By default the embedded cluster applies everything at once: a VirtualService is in effect on
every Envoy the moment the API server answers, pods are Ready as soon as they start, watches
never end and writes never fail. A real cluster does none of that, and a suite that only ever
ran against the kind version passes checks that are races on a real one. With a
:class:`Realism` profile on the runtime:

* **config propagation** — every proxy (sidecar or gateway pod) sees each new version of the
  mesh configuration (Istio config, Services, Endpoints, mesh config) after its own delay,
  drawn uniformly from :attr:`Realism.push_delay` per (proxy, version), seeded from the run's
  seed. Until then it routes by the version it had. A gateway listens on a port only once a
  Gateway binding it has reached that gateway pod (before that: connection refused);
* **readiness** — a started pod turns Ready after :attr:`Realism.ready_delay`; Endpoints
  follow readiness, so a Service has no backend for that long;
* **rollouts** — a proxy whose config still lists a pod a rollout removed sends to its address
  and is refused (503 ``UF``, retried on another endpoint by the default retry policy) until
  the new Endpoints reach it (:mod:`.mesh.network`);
* **API server** — a watch ends after :attr:`Realism.watch_lifetime` (clients resume from
  the last resourceVersion; too old a one gets 410 Expired, as always); a write of the
  suite's own client (the Python ``kubernetes`` client: ``OpenAPI-Generator`` User-Agent)
  fails now and then with 429 ``Retry-After`` or with 500, before anything is written.
  kubectl and istioctl retry 429 themselves (client-go) and are spared: their retries are
  not what the suite tests.

Every draw is a function of the seed and what it is for (proxy, version, pod), so a failure
under realism replays with the same ``--istio-seed``. The API faults come from one seeded
sequence; the order of concurrent writes is the threads', so they replay only roughly.
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

PROFILES: tuple[str, ...] = ("off", "on")


@dataclass(frozen=True)
class Realism:
    """The distributions of the realism profile (seconds unless said otherwise)."""

    seed: int = 0
    push_delay: tuple[float, float] = (0.05, 2.0)      # uniform, per proxy and config version
    ready_delay: tuple[float, float] = (0.2, 1.5)      # uniform, per pod
    watch_lifetime: tuple[float, float] = (5.0, 30.0)  # uniform, per watch
    write_429: float = 0.03                            # share of the suite's writes
    write_500: float = 0.01
    retry_after: int = 1                               # the 429's Retry-After, in seconds
    _faults: random.Random = field(init=False, repr=False, compare=False)
    answered: dict[int, int] = field(default_factory=dict, repr=False, compare=False)
    _forced: list[int] = field(default_factory=list, repr=False, compare=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_faults", random.Random(self.seed * 104729 + 17))

    def describe(self) -> str:
        lo, hi = self.push_delay
        rlo, rhi = self.ready_delay
        wlo, whi = self.watch_lifetime
        return (f"config push {lo * 1000:.0f} ms-{hi:g} s per proxy, readiness {rlo:g}-{rhi:g} s, "
                f"watches end after {wlo:g}-{whi:g} s, writes {self.write_429:.0%} 429 "
                f"(Retry-After {self.retry_after} s) and {self.write_500:.0%} 500")

    def draw(self, what: str, span: tuple[float, float]) -> float:
        """A uniform draw from ``span`` that depends only on the seed and ``what``."""
        digest = hashlib.blake2b(f"{self.seed}:{what}".encode(), digest_size=8).digest()
        unit = int.from_bytes(digest, "big") / 2**64
        return span[0] + (span[1] - span[0]) * unit

    def push_delay_of(self, proxy: str, version: int) -> float:
        return self.draw(f"push:{proxy}:{version}", self.push_delay)

    def ready_delay_of(self, pod_uid: str) -> float:
        return self.draw(f"ready:{pod_uid}", self.ready_delay)

    def watch_lifetime_of(self, serial: int) -> float:
        return self.draw(f"watch:{serial}", self.watch_lifetime)

    def force_write_faults(self, *codes: int) -> None:
        """Test control: the suite client's next writes answer ``codes`` (429 or 500), in order,
        before the drawn faults resume."""
        if not set(codes) <= {429, 500}:
            raise ValueError(f"write faults are 429 or 500, not {codes}")
        with self._lock:
            self._forced.extend(codes)

    def write_fault(self) -> int | None:
        """429, 500 or None (the write goes through) for the next write of the suite's client."""
        with self._lock:
            x = self._faults.random()
            code = 429 if x < self.write_429 else 500 if x < self.write_429 + self.write_500 \
                else None
            if self._forced:
                code = self._forced.pop(0)
            if code is not None:
                self.answered[code] = self.answered.get(code, 0) + 1
        return code


def is_suite_client(user_agent: str) -> bool:
    """The Python ``kubernetes`` client (the suite's own) rather than kubectl or istioctl."""
    return user_agent.startswith("OpenAPI-Generator/")


class Later:
    """One daemon thread that runs callbacks after a delay (readiness, listener resyncs)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._ids = itertools.count()
        self._thread: threading.Thread | None = None
        self._stopping = False

    def call(self, delay: float, fn: Callable[[], None]) -> None:
        with self._cond:
            if self._stopping:
                return
            heapq.heappush(self._heap, (time.monotonic() + delay, next(self._ids), fn))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="istiolab-realism",
                                                daemon=True)
                self._thread.start()
            self._cond.notify_all()

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._heap.clear()
            self._cond.notify_all()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopping and (
                        not self._heap or self._heap[0][0] > time.monotonic()):
                    wait = self._heap[0][0] - time.monotonic() if self._heap else None
                    self._cond.wait(timeout=wait)
                if self._stopping:
                    return
                _, _, fn = heapq.heappop(self._heap)
            try:
                fn()
            except Exception as problem:  # noqa: BLE001 - one callback must not stop the rest
                import sys

                print(f"istiolab realism: a delayed step failed: {problem!r}", file=sys.stderr)
