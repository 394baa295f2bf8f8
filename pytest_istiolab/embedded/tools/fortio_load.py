"""fortio's load generator as a discrete-event simulation in virtual time.

Scope and limitations
---------------------
Modelled as fortio's ``periodic`` runner and fast HTTP client behave: ``-c`` connections
(goroutines), each with its own keep-alive socket; ``-n`` exact calls split evenly with the
remainder on thread 0; ``-t`` duration at max speed (``-qps 0``) or at a fixed rate of
``qps/c`` per thread, catching up when late unless ``-nocatchup``; warm-up calls (one per
thread, not counted) when running for a duration. The fast client closes its socket after a
non-2xx answer (418 counts as OK) or a socket error and opens a new one (resolving the host
again) for its next call; opening takes 60-250 µs of virtual time on the pod's loopback to its
sidecar. ``-abort-on CODE`` stops every thread after the call that saw CODE.

Each call is one request through the mesh model (``send``), issued in the order the requests
are written, so a sidecar's connection pool sees them in time order. All timing noise comes
from the ``random.Random`` the caller passes (seeded from the run's seed). Not modelled:
``-uniform``, ``-jitter``, runs without an end (``-t 0``), HTTP/2, request payloads.
"""

from __future__ import annotations

import heapq
import random
from collections import Counter as Tally
from collections.abc import Callable
from dataclasses import dataclass, field

from .fortio_report import Histogram

CONNECT_S = (60e-6, 250e-6)
LOOP_S = (5e-6, 30e-6)
START_STAGGER_S = (5e-6, 80e-6)


def nanos(seconds: float) -> float:
    """Go measures time in whole nanoseconds: so do the samples."""
    return round(seconds * 1e9) / 1e9


def code_is_ok(code: int) -> bool:
    return 200 <= code <= 299 or code == 418


@dataclass
class Exchange:
    """One call as fortio's fast client sees it."""

    status: int  # -1: socket error
    header_bytes: int  # the header length fortio parsed (0 unless the code is OK)
    total_bytes: int  # everything read (headers and body)
    end: float  # virtual time the response was complete
    raw: bytes = b""


Send = Callable[[int, float], Exchange]  # (thread, time the request is written) -> Exchange


@dataclass
class LoadPlan:
    threads: int = 4
    qps: float = 8.0  # <= 0: as fast as possible
    exactly: int = 0  # > 0: run for exactly this many calls
    duration: float = 5.0  # seconds, when ``exactly`` is 0
    percentiles: list[float] = field(default_factory=lambda: [50, 75, 90, 99, 99.9])
    resolution: float = 0.001
    abort_on: int = 0
    no_catchup: bool = False
    keepalive: bool = True

    def calls_per_thread(self) -> tuple[int, int]:
        """(calls each, leftover for thread 0); (-1, 0): until the duration is over."""
        if self.exactly > 0:
            return self.exactly // self.threads, self.exactly % self.threads
        if self.qps > 0:
            return max(2, int(self.qps * self.duration)) // self.threads, 0
        return -1, 0


@dataclass
class Sample:
    thread: int
    start: float
    latency: float
    status: int
    header_bytes: int
    total_bytes: int
    raw: bytes = b""  # kept for warm-up calls (fortio quotes a failed one)


@dataclass
class ThreadState:
    index: int
    calls: int  # calls to make (-1: until the end time)
    start: float
    socket: bool = False
    sockets: int = 0
    connect: Histogram = field(default_factory=Histogram)
    done: int = 0


@dataclass
class LoadRun:
    """What the run produced; the report module prints it."""

    plan: LoadPlan
    start: float
    end: float = 0.0
    samples: list[Sample] = field(default_factory=list)
    warmup: list[Sample] = field(default_factory=list)
    threads: list[ThreadState] = field(default_factory=list)
    codes: Tally[int] = field(default_factory=Tally)
    aborted_by: int | None = None

    @property
    def elapsed(self) -> float:
        return max(self.end - self.start, 1e-9)

    def durations(self, errors_only: bool = False) -> Histogram:
        h = Histogram(divider=self.plan.resolution)
        for s in self.samples:
            if not errors_only or not code_is_ok(s.status):
                h.record(s.latency)
        return h

    def sizes(self, headers: bool) -> Histogram:
        """fortio's size histograms: headers by 5 bytes, totals by 100 bytes."""
        h = Histogram(divider=5.0 if headers else 100.0)
        for s in self.samples:
            h.record(float(s.header_bytes if headers else s.total_bytes))
        return h


class Simulation:
    """Threads as events on a heap keyed by the virtual time each next request is written."""

    def __init__(self, plan: LoadPlan, send: Send, rng: random.Random, t0: float) -> None:
        self.plan, self.send, self.rng = plan, send, rng
        self.run = LoadRun(plan, t0)
        self.heap: list[tuple[float, int, float, float]] = []  # (write, thread, fstart, connect)
        each, leftover = plan.calls_per_thread()
        for index in range(plan.threads):
            calls = each + leftover if index == 0 else each
            self.run.threads.append(ThreadState(index, calls, t0,
                                                connect=Histogram(divider=plan.resolution)))

    def warm_up(self) -> list[Sample]:
        """One call per thread in parallel before a duration run (fortio's parallel warm-up)."""
        out = []
        t = self.run.start
        for state in self.run.threads:
            begin = t + self.rng.uniform(*START_STAGGER_S)
            connect = nanos(self.rng.uniform(*CONNECT_S))
            state.sockets += 1
            state.connect.record(connect)
            ex = self.send(state.index, begin + connect)
            state.socket = code_is_ok(ex.status) and self.plan.keepalive
            out.append(Sample(state.index, begin, nanos(ex.end - begin), ex.status,
                              ex.header_bytes, ex.total_bytes, ex.raw))
        self.run.warmup = out
        self.run.start = max([t, *[s.start + s.latency for s in out]])
        for state in self.run.threads:
            state.start = self.run.start
        return out

    def execute(self) -> LoadRun:
        run = self.run
        for state in run.threads:
            if state.calls != 0:
                self._schedule(state, run.start + self.rng.uniform(*START_STAGGER_S))
        while self.heap:
            write, index, fstart, connect = heapq.heappop(self.heap)
            state = run.threads[index]
            if run.aborted_by is not None:
                continue
            self._call(state, fstart, write, connect)
        run.end = max([run.start, *[s.start + s.latency for s in run.samples]])
        return run

    def _schedule(self, state: ThreadState, fstart: float) -> None:
        if state.calls < 0 and fstart > self.run.start + self.plan.duration:
            return
        connect = 0.0 if state.socket else nanos(self.rng.uniform(*CONNECT_S))
        heapq.heappush(self.heap, (fstart + connect, state.index, fstart, connect))

    def _call(self, state: ThreadState, fstart: float, write: float, connect: float) -> None:
        if not state.socket:
            state.sockets += 1
            state.connect.record(connect)
        ex = self.send(state.index, write)
        sample = Sample(state.index, fstart, nanos(ex.end - fstart), ex.status,
                        ex.header_bytes, ex.total_bytes)
        self.run.samples.append(sample)
        self.run.codes[ex.status] += 1
        state.socket = code_is_ok(ex.status) and self.plan.keepalive
        state.done += 1
        if self.plan.abort_on and ex.status == self.plan.abort_on:
            self.run.aborted_by = ex.status
            return
        if state.calls >= 0 and state.done >= state.calls:
            return
        self._schedule(state, self._next_start(state, ex.end))

    def _next_start(self, state: ThreadState, end: float) -> float:
        soon = end + self.rng.uniform(*LOOP_S)
        plan = self.plan
        if plan.qps <= 0:
            return soon
        per_thread = plan.qps / plan.threads
        i = state.done
        if plan.exactly:
            target = i / per_thread
        else:
            total = max(2, int(plan.qps * plan.duration) // plan.threads)
            target = (i + i / max(1, total - 1)) / per_thread
        due = state.start + target
        if due < soon and plan.no_catchup:
            return soon + (1 / per_thread - (soon - due) % (1 / per_thread))
        return max(due, soon)


def simulate(plan: LoadPlan, send: Send, rng: random.Random, t0: float, *,
             warmup: bool | None = None) -> LoadRun:
    """Run ``plan`` from virtual time ``t0``; warm-up as fortio does unless told otherwise."""
    sim = Simulation(plan, send, rng, t0)
    if warmup if warmup is not None else plan.exactly <= 0:
        sim.warm_up()
    return sim.execute()
