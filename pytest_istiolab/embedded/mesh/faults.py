"""Fault injection (VirtualService ``http[].fault``): Envoy's fault filter on the client side.

Where it runs: in the HTTP filter chain of a sidecar's outbound listeners and of gateways,
before the router — never on the server's inbound side. The fault belongs to the route the
request matched, so a route ``match`` (``end-user: jason``) limits it like any route.

How Istio 1.26 translates it (``route.TranslateFault``):

* ``delay.fixedDelay``, injected into ``percentage.value`` % of requests (value x 10000 per
  million); without ``percentage`` the deprecated integer ``percent`` (per hundred, catalogue
  D-27); with neither, no request is delayed. ``exponentialDelay`` is dropped by Istio.
* ``abort.httpStatus`` for ``percentage.value`` % of requests; without ``percentage`` no
  request is aborted (istio#36303: the API docs' "all requests" is not what happens).

What Envoy does per request: it samples the delay first and, after the delay (or at once),
the abort. A delay holds the request back before the router, so route timeouts and retries
start only after it (catalogue D-12), ``x-envoy-upstream-service-time`` leaves it out, and
the access-log duration and the client's ``%{time_total}`` include it; flag ``DI``. An abort
is a local reply: the configured status, body ``fault filter abort`` (text/plain), flag
``FI``, details ``fault_filter_abort``, upstream host ``-`` and the route's cluster in the
access log. A client that gives up during a delay leaves ``DI,DC``.

Sampling uses the run's seeded generator (semantic randomness, like weighted routing): one
draw per configured fault per request, as Envoy's runtime ``featureEnabled`` does.

Not modelled: ``abort.grpcStatus`` and ``abort.http2Error`` (no gRPC or HTTP/2 here: the
fault is left out), the ``x-envoy-fault-*`` request headers (Istio does not enable them),
``max_active_faults``, response rate limits and the fault filter's stats.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from . import clusters, flags, routing
from .flow import HopContext, Next, failed
from .model import LocalReply, Request, Response, RouteDecision
from .resilience import parse_duration

Obj = dict[str, Any]
ABORT_BODY = "fault filter abort"
MILLION, HUNDRED = 1_000_000, 100


@dataclass(frozen=True)
class Fraction:
    """Envoy's FractionalPercent: ``numerator`` out of ``denominator``."""

    numerator: int
    denominator: int

    def sample(self, rng: random.Random) -> bool:
        return rng.randrange(self.denominator) < self.numerator


NEVER = Fraction(0, HUNDRED)


@dataclass(frozen=True)
class Fault:
    """The fault filter's per-route config (None fields: that fault is not configured)."""

    delay: float | None = None
    delay_fraction: Fraction = NEVER
    abort_status: int | None = None
    abort_fraction: Fraction = NEVER


def parse_fault(spec: Obj | None) -> Fault | None:
    """Istio's translation of ``http[].fault``; None when nothing would be injected."""
    if not spec:
        return None
    delay_spec, abort_spec = spec.get("delay") or {}, spec.get("abort") or {}
    delay = parse_duration(delay_spec["fixedDelay"]) if delay_spec.get("fixedDelay") else None
    status = abort_spec.get("httpStatus")
    fault = Fault(delay, _fraction(delay_spec, legacy=True) if delay is not None else NEVER,
                  int(status) if status is not None else None,
                  _fraction(abort_spec, legacy=False) if status is not None else NEVER)
    return fault if fault.delay is not None or fault.abort_status is not None else None


def _fraction(spec: Obj, *, legacy: bool) -> Fraction:
    percentage = spec.get("percentage")
    if percentage is not None:
        return Fraction(int(float(percentage.get("value") or 0) * 10000), MILLION)
    if legacy:  # delay.percent, deprecated; abort.percent no longer exists
        return Fraction(int(spec.get("percent") or 0), HUNDRED)
    return NEVER


def fault_filter(hop: HopContext, decision: RouteDecision, request: Request, start: float,
                 deadline: float | None, next_: Next) -> Response:
    """The ``envoy.filters.http.fault`` filter for the route in ``decision``."""
    fault = parse_fault((decision.http_route or {}).get("fault"))
    if fault is None:
        return next_(request, start)
    rng = hop.flow.rng
    delayed = fault.delay is not None and fault.delay_fraction.sample(rng)
    aborted = fault.abort_status is not None and fault.abort_fraction.sample(rng)
    at = start
    if delayed:
        assert fault.delay is not None
        hop.record.flags = flags.merge(hop.record.flags, "DI")
        at = start + fault.delay
        if deadline is not None and at >= deadline:
            return failed("timeout", start, deadline - start)  # the client left mid-delay
    if aborted:
        assert fault.abort_status is not None
        _record_cluster(hop, decision)
        reply = LocalReply(fault.abort_status, ABORT_BODY, "FI", "fault_filter_abort")
        response = hop.local_reply(reply, request, at)
    else:
        response = next_(request, at)
    if delayed:
        response.response_flags = flags.merge(response.response_flags, "DI")
    end = response.end
    response.start, response.duration = start, end - start
    return response


def _record_cluster(hop: HopContext, decision: RouteDecision) -> None:
    """An aborted request still names the route's cluster in the access log."""
    if not decision.destinations:
        return
    dest = routing.pick_destination(decision.destinations, hop.flow.rng)
    cluster = clusters.resolve(hop.flow.snap, hop.namespace, dest, decision.match_port)
    hop.record.upstream_cluster = cluster.name if cluster.exists else None
