"""The continuity record of a probe run: every request's outcome, per traffic path, in time.

Plain data, no cluster: the runner calls :meth:`PathRecord.add` once per request with the
moment it ended (seconds on the probe's monotonic clock, 0 = traffic start) and its outcome;
:meth:`Continuity.report` turns the record into the JSON report, :func:`summary` into text.

A request counts as successful when the target answered 200 (the probe asks httpbin for
``/status/200``). Everything else is a failure, named by what a person would look for in
Envoy's access log: the HTTP status with the response flag Envoy's local reply body gives away
(``503 UH`` for ``no healthy upstream``), or curl's exit code (``curl exit 7``: no connection),
or the HTTP client's error for the ingress path (``ConnectError``).

Memory is bounded by the run's length, not its request count: a path keeps counters, the
longest gap and one timeline bucket per second in which it sent something.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

REPORT_VERSION = 1

# Envoy local reply bodies (1.26) -> the response flag Envoy logs with them.
ENVOY_BODIES: tuple[tuple[str, str], ...] = (
    ("no healthy upstream", "UH"),
    ("fault filter abort", "FI"),
    ("upstream request timeout", "UT"),
    ("reset reason: overflow", "UO"),
    ("reset reason: connection failure", "UF"),
    ("reset reason: connection termination", "UC"),
    ("reset reason: local reset", "LR"),
    ("reset reason: remote reset", "UR"),
    ("upstream connect error or disconnect/reset before headers", "UF"),
    ("no filter chain found", "NR"),
    ("route not found", "NR"),
)


def envoy_flag(status: int, body: str | None) -> str | None:
    """The response flag an Envoy local reply body names (``None`` for the app's answers)."""
    if status == 404 and not body:
        return "NR"  # Envoy's 404 for a route that matches nothing has an empty body
    text = (body or "").strip().lower()
    for marker, flag in ENVOY_BODIES:
        if marker in text:
            return flag
    return None


@dataclass(frozen=True)
class Outcome:
    """One request: ``status`` 0 when no HTTP response came back."""

    status: int
    exit_code: int = 0          # curl's exit code (in-mesh); 0 for the ingress path
    flag: str | None = None     # Envoy response flag read from the local reply body
    error: str | None = None    # the HTTP client's exception class (ingress path)

    @property
    def ok(self) -> bool:
        return self.status == 200 and self.exit_code == 0 and self.error is None

    @property
    def reason(self) -> str:
        """How the failure is counted: ``503 UH``, ``curl exit 28``, ``ConnectError``."""
        if self.status:
            return f"{self.status} {self.flag}" if self.flag else f"{self.status}"
        if self.error:
            return self.error
        return f"curl exit {self.exit_code}"


@dataclass
class Gap:
    seconds: float
    start: float   # the last success before (or the start of traffic)
    end: float     # the next success (or the end of traffic)


@dataclass
class PathRecord:
    """What one path (in-mesh or ingress) saw. Thread-safe: one writer, readers for progress."""

    name: str
    description: str
    requests: int = 0
    failures: dict[str, int] = field(default_factory=dict)
    by_status: dict[str, int] = field(default_factory=dict)
    by_exit_code: dict[str, int] = field(default_factory=dict)
    by_flag: dict[str, int] = field(default_factory=dict)
    unmeasured: dict[str, int] = field(default_factory=dict)  # the probe's own errors
    first_failure: float | None = None
    last_failure: float | None = None
    longest: Gap = field(default_factory=lambda: Gap(0.0, 0.0, 0.0))
    _last_success: float = 0.0
    _buckets: dict[int, list[int]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, at: float, outcome: Outcome) -> None:
        with self._lock:
            self.requests += 1
            bucket = self._buckets.setdefault(int(at), [0, 0])
            if outcome.ok:
                bucket[0] += 1
                self._close_gap(at)
                return
            bucket[1] += 1
            _count(self.failures, outcome.reason)
            _count(self.by_status, str(outcome.status))
            if outcome.exit_code:
                _count(self.by_exit_code, str(outcome.exit_code))
            if outcome.flag:
                _count(self.by_flag, outcome.flag)
            if self.first_failure is None:
                self.first_failure = at
            self.last_failure = at

    def probe_error(self, at: float, message: str) -> None:
        """The probe could not send (its client pod gone, the API unreachable): not a request."""
        with self._lock:
            _count(self.unmeasured, message[:200])

    def _close_gap(self, at: float) -> None:
        gap = at - self._last_success
        if gap > self.longest.seconds:
            self.longest = Gap(gap, self._last_success, at)
        self._last_success = at

    @property
    def failed(self) -> int:
        with self._lock:
            return sum(self.failures.values())

    @property
    def succeeded(self) -> int:
        return self.requests - self.failed

    def longest_gap(self, end: float) -> Gap:
        """The longest stretch without a success, counting the open one up to ``end``."""
        with self._lock:
            open_gap = end - self._last_success
            if open_gap > self.longest.seconds:
                return Gap(open_gap, self._last_success, end)
            return self.longest

    def error_rate(self) -> float:
        return self.failed / self.requests if self.requests else 0.0

    def timeline(self, end: float) -> list[dict[str, int]]:
        with self._lock:
            buckets = dict(self._buckets)
        return [{"second": s, "ok": buckets.get(s, [0, 0])[0], "failed": buckets.get(s, [0, 0])[1]}
                for s in range(int(end) + 1)]

    def to_json(self, end: float) -> dict[str, Any]:
        gap = self.longest_gap(end)
        with self._lock:
            failed = sum(self.failures.values())
            data = {
                "description": self.description, "requests": self.requests,
                "succeeded": self.requests - failed, "failed": failed,
                "error_rate": round(failed / self.requests, 6) if self.requests else 0.0,
                "failures": dict(sorted(self.failures.items())),
                "by_status": dict(sorted(self.by_status.items())),
                "by_curl_exit_code": dict(sorted(self.by_exit_code.items())),
                "by_envoy_flag": dict(sorted(self.by_flag.items())),
                "first_failure_s": _round(self.first_failure),
                "last_failure_s": _round(self.last_failure),
                "longest_gap": {"seconds": round(gap.seconds, 3), "from_s": round(gap.start, 3),
                                "to_s": round(gap.end, 3)},
                "probe_errors": dict(self.unmeasured),
            }
        data["timeline"] = self.timeline(end)
        return data


@dataclass(frozen=True)
class Budget:
    """The error budget of the command line: ``None`` = not limited."""

    max_error_rate: float | None = None   # a fraction, 0.01 = 1 %
    max_gap: float | None = None          # seconds

    def exceeded(self, paths: list[PathRecord], end: float) -> list[str]:
        """One sentence per path and budget that was exceeded (empty: within budget)."""
        out = []
        for path in paths:
            rate, gap = path.error_rate(), path.longest_gap(end).seconds
            if self.max_error_rate is not None and rate > self.max_error_rate:
                out.append(f"--max-error-rate exceeded on {path.name}: {rate:.2%} of "
                           f"{path.requests} requests failed (budget {self.max_error_rate:.2%})")
            if self.max_gap is not None and gap > self.max_gap:
                out.append(f"--max-gap exceeded on {path.name}: {gap:.1f} s without a "
                           f"successful request (budget {self.max_gap:g} s)")
        return out


def _count(counter: dict[str, int], key: str) -> None:
    counter[key] = counter.get(key, 0) + 1


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def summary(report: dict[str, Any]) -> str:
    """The text summary printed on stdout (the JSON report has the timeline)."""
    lines = [f"istiolab-probe: {report['duration_s']:.1f} s of traffic, namespace "
             f"{report['namespace']}, {report['stopped_by']}"]
    istiod = report.get("istiod_image") or {}
    if istiod:
        change = ("unchanged" if istiod.get("at_start") == istiod.get("at_end")
                  else f"-> {istiod.get('at_end')}")
        lines.append(f"  istiod image {istiod.get('at_start')} {change}")
    for name, path in report["paths"].items():
        gap = path["longest_gap"]
        lines.append(f"  {name:8} {path['requests']:6} requests, {path['failed']} failed "
                     f"({path['error_rate']:.2%}), longest gap {gap['seconds']:.1f} s "
                     f"({gap['from_s']:.1f} s .. {gap['to_s']:.1f} s)  [{path['description']}]")
        for reason, count in path["failures"].items():
            lines.append(f"           {count:6} x {reason}")
        for message, count in path["probe_errors"].items():
            lines.append(f"           not measured {count} x: {message}")
    verdict = report["budget"]
    if verdict["exceeded"]:
        lines += [f"  BUDGET EXCEEDED: {line}" for line in verdict["exceeded"]]
    else:
        lines.append(f"  within budget (max error rate {verdict['max_error_rate']}, "
                     f"max gap {verdict['max_gap_s']} s)")
    return "\n".join(lines)
