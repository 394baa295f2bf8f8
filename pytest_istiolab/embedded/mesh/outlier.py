"""Outlier detection of one sidecar for one cluster (Envoy's consecutive-error ejection).

Scope and limitations
---------------------
Modelled from a DestinationRule's ``outlierDetection`` as Istio 1.26 translates it:
``consecutive5xxErrors`` (Envoy ``consecutive_5xx``; Istio's default 5 when the block is
present; 0 turns it off), ``consecutiveGatewayErrors`` (502, 503, 504 only) and the deprecated
``consecutiveErrors`` (mapped to gateway errors, with 5xx enforcement off), ``interval``
(default 10s), ``baseEjectionTime`` (default 30s) and ``maxEjectionPercent`` (default 10).
A host is ejected as soon as its counter reaches the threshold, for ``baseEjectionTime`` times
the number of times it has been ejected (at most 300 s), and comes back at the first
``interval`` tick after that. An ejection that would make more than ``maxEjectionPercent`` of
the hosts ejected does not happen (``ejections_overflow``). Istio's ``minHealthPercent``
defaults to 0, so there is no panic mode: with every host ejected the sidecar answers 503
``UH`` ``no healthy upstream``. A connection failure counts as a 503. Requests refused by the
circuit breaker never reach a host and are never counted (Envoy ignores overflow resets).

Not modelled: success-rate and failure-percentage detection, ``splitExternalLocalOriginErrors``,
``consecutiveLocalOriginFailures``, ``minHealthPercent`` above 0, jitter.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from .model import Endpoint

Obj = dict[str, Any]
GATEWAY_ERRORS = (502, 503, 504)
MAX_EJECTION_TIME = 300.0


@dataclass(frozen=True)
class OutlierPolicy:
    consecutive_5xx: int = 5  # 0: not enforced
    consecutive_gateway: int = 0  # 0: not enforced
    interval: float = 10.0
    base_ejection: float = 30.0
    max_ejection_percent: int = 10


def seconds(value: object, default: float) -> float:
    """A protobuf Duration as YAML carries it (``1s``, ``3m``, ``100ms``, ``1.5s``, ``1h``)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)(ms|s|m|h)\s*", str(value or ""))
    if not match:
        return default
    return float(match.group(1)) * {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}[
        match.group(2)]


def outlier_policy(policy: Obj) -> OutlierPolicy | None:
    """The ``outlierDetection`` block of an effective trafficPolicy, or None without one."""
    raw = policy.get("outlierDetection")
    if raw is None:
        return None
    five = _count(raw.get("consecutive5xxErrors"), 5)
    gateway = _count(raw.get("consecutiveGatewayErrors"), 0)
    deprecated = _count(raw.get("consecutiveErrors"), 0)
    if deprecated > 0:
        gateway, five = deprecated, 0  # Istio: gateway errors only (istio/api#617)
    percent = _count(raw.get("maxEjectionPercent"), 0)
    return OutlierPolicy(five, gateway, seconds(raw.get("interval"), 10.0),
                         seconds(raw.get("baseEjectionTime"), 30.0), percent or 10)


def _count(value: object, default: int) -> int:
    if value is None:
        return default
    try:
        return max(0, int(str(value)))
    except ValueError:
        return default


@dataclass
class HostState:
    five: int = 0
    gateway: int = 0
    times: int = 0
    ejected_until: float | None = None


@dataclass
class Detector:
    """Per-host counters and ejections (keys are ``ip:port``)."""

    hosts: dict[str, HostState] = field(default_factory=dict)
    epoch: float | None = None  # when the interval timer started

    def healthy(self, policy: OutlierPolicy | None, endpoints: list[Endpoint], t: float,
                counters: dict[str, int]) -> list[Endpoint]:
        if policy is None:
            return list(endpoints)
        self._return_due(t, counters)
        out = []
        for ep in endpoints:
            state = self.hosts.get(f"{ep.ip}:{ep.port}")
            if state is None or state.ejected_until is None:
                out.append(ep)
        return out

    def _return_due(self, t: float, counters: dict[str, int]) -> None:
        for state in self.hosts.values():
            if state.ejected_until is not None and state.ejected_until <= t:
                state.ejected_until = None
                state.five = state.gateway = 0
                counters["outlier_detection.ejections_active"] -= 1

    def record(self, policy: OutlierPolicy | None, host: str, status: int, t: float,
               total_hosts: int, counters: dict[str, int]) -> None:
        if policy is None:
            return
        if self.epoch is None:
            self.epoch = t
        state = self.hosts.setdefault(host, HostState())
        if status >= 500:
            state.five += 1
            state.gateway = state.gateway + 1 if status in GATEWAY_ERRORS else 0
        else:
            state.five = state.gateway = 0
            return
        if state.ejected_until is not None:
            return
        kind = self._tripped(policy, state)
        if kind is not None:
            self._eject(policy, state, kind, t, total_hosts, counters)

    @staticmethod
    def _tripped(policy: OutlierPolicy, state: HostState) -> str | None:
        if policy.consecutive_5xx and state.five >= policy.consecutive_5xx:
            return "consecutive_5xx"
        if policy.consecutive_gateway and state.gateway >= policy.consecutive_gateway:
            return "consecutive_gateway_failure"
        return None

    def _eject(self, policy: OutlierPolicy, state: HostState, kind: str, t: float,
               total_hosts: int, counters: dict[str, int]) -> None:
        counters[f"outlier_detection.ejections_detected_{kind}"] += 1
        active = counters["outlier_detection.ejections_active"]
        if 100.0 * (active + 1) / max(1, total_hosts) > policy.max_ejection_percent:
            counters["outlier_detection.ejections_overflow"] += 1
            return
        state.times += 1
        duration = min(policy.base_ejection * state.times, max(MAX_EJECTION_TIME,
                                                                policy.base_ejection))
        state.ejected_until = self._next_tick(policy, t + duration)
        counters["outlier_detection.ejections_active"] += 1
        counters["outlier_detection.ejections_enforced_total"] += 1
        counters[f"outlier_detection.ejections_enforced_{kind}"] += 1
        counters["outlier_detection.ejections_total"] += 1
        counters[f"outlier_detection.ejections_{kind}"] += 1

    def _next_tick(self, policy: OutlierPolicy, due: float) -> float:
        epoch = self.epoch if self.epoch is not None else due
        ticks = math.ceil((due - epoch) / policy.interval) if policy.interval > 0 else 0
        return epoch + ticks * policy.interval
