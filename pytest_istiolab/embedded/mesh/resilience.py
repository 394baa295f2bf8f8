"""Route timeouts and retries, as Envoy's router applies a VirtualService ``timeout``/``retries``.

What Istio 1.26 configures (``pilot/pkg/networking/core/route``, ``route/retry``):

* ``http[].timeout``: absent means no timeout at all (Istio writes ``0s``, which disables
  Envoy's 15 s default);
* ``http[].retries``: absent means ``meshConfig.defaultHttpRetryPolicy`` if set, else Istio's
  default policy: 2 retries on ``connect-failure,refused-stream,unavailable,cancelled,
  retriable-status-codes`` with status 503; the same default covers routes without a
  VirtualService. ``attempts: 0`` disables retries; ``attempts: N`` allows N retries (N+1
  tries). ``retryOn`` replaces the conditions; integers in it are status codes (the default
  503 is then dropped). ``perTryTimeout``; ``backoff`` (the base interval, default 25 ms);
  ``retryIgnorePreviousHosts`` (default true: a retry prefers an endpoint not tried yet).

What Envoy's router does with it (modelled here, for one request on one hop):

* the global timeout runs from the moment the router has the request (after any fault delay,
  catalogue D-12) until the response; when it fires the upstream stream is reset and the
  client gets ``504 upstream request timeout`` (flag ``UT``, ``upstream_response_timeout``),
  never retried;
* a per-try timeout bounds each attempt; the attempt is reset and retried only when
  ``retryOn`` has ``5xx``, ``gateway-error`` or ``reset`` (istio#17613), otherwise (or out
  of retries) the client gets 504 ``UT`` ``upstream_per_try_timeout`` (``UT,URX`` when the
  limit was the reason);
* an upstream response is retried by status (``5xx``: any 5xx, ``gateway-error``: 502-504,
  ``retriable-4xx``: 409, ``retriable-status-codes``); a connection failure by
  ``connect-failure``, ``5xx``, ``gateway-error``, ``reset``, ``reset-before-request``;
  this proxy's own local replies (circuit-breaker overflow ``UO``, ``UH``, ``NC``) never;
* out of retries the last answer goes to the client with ``URX``; a connection failure's
  body then reads ``... before headers. retried and the latest reset reason: ...``;
* between tries a fully jittered exponential back-off (``[0, (2^n - 1) * base)``, at most
  10 x base); every upstream request carries ``x-envoy-attempt-count``, and
  ``x-envoy-expected-rq-timeout-ms`` when a timeout applies; ``x-envoy-upstream-service-time``
  covers all tries and back-offs.

This is the router of outbound sidecars and gateways. Not modelled: the inbound side's
``reset-before-request`` retries (Istio >= 1.24 retries an app that refuses the connection;
here the inbound sidecar answers 503 ``UF`` at once), the cluster's retry circuit breaker
(``max_retries``; Istio leaves it unlimited) and retry budgets, hedging, the
``x-envoy-retry-on``/``x-envoy-max-retries``/``x-envoy-upstream-rq-timeout-ms`` request
headers, ``retriable-headers``, ``envoy-ratelimited`` and the gRPC conditions (the model
speaks HTTP/1.1), locality-aware ``retryRemoteLocalities`` (one locality). An unparsable
duration counts as absent: a real cluster's validating webhook would have rejected the
VirtualService.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, MutableMapping, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from . import flags
from .flow import HopContext, failed, millis
from .model import Endpoint, LocalReply, Request, Response

Obj = dict[str, Any]
DEFAULT_RETRY_ON = frozenset({"connect-failure", "refused-stream", "unavailable", "cancelled",
                              "retriable-status-codes"})
BACKOFF_BASE = 0.025
TIMEOUT_BODY = "upstream request timeout"
RESET_PREFIX = "upstream connect error or disconnect/reset before headers. "
ON_RESET = frozenset({"connect-failure", "5xx", "gateway-error", "reset", "reset-before-request"})
ON_PER_TRY_TIMEOUT = frozenset({"5xx", "gateway-error", "reset"})


@dataclass(frozen=True)
class RetryPolicy:
    """An Envoy route's retry policy, as Istio writes it."""

    retries: int
    retry_on: frozenset[str]
    status_codes: frozenset[int]
    per_try_timeout: float | None = None
    backoff_base: float = BACKOFF_BASE
    previous_hosts: bool = True


DEFAULT_POLICY = RetryPolicy(2, DEFAULT_RETRY_ON, frozenset({503}))


@dataclass(frozen=True)
class Try:
    """One upstream attempt the router makes."""

    start: float
    until: float | None  # the earliest of the client's, the route's and the per-try deadline
    number: int  # 1 for the first try (``x-envoy-attempt-count``)
    expected_timeout_ms: int | None  # ``x-envoy-expected-rq-timeout-ms``, None: not sent


Attempt = Callable[[Try], Response]


# ------------------------------------------------------------------------ config
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNIT = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(value: object) -> float | None:
    """A Go/Istio duration ("1s", "0.5s", "100ms", "1m30s") in seconds; None if not one."""
    text = str(value if value is not None else "").strip()
    if text == "0":
        return 0.0
    total, position = 0.0, 0
    for part in _DURATION_PART.finditer(text):
        if part.start() != position:
            return None
        total += float(part.group(1)) * _UNIT[part.group(2)]
        position = part.end()
    return total if text and position == len(text) else None


def route_timeout(route: Obj | None) -> float | None:
    """The route's global timeout in seconds; None when there is none (absent or 0s)."""
    raw = (route or {}).get("timeout")
    return (parse_duration(raw) or None) if raw else None


def retry_policy(route: Obj | None, mesh: Obj) -> RetryPolicy | None:
    """The retry policy of ``route`` (an ``http[]`` entry; None: a default route), or None."""
    spec = (route or {}).get("retries")
    if spec is None:
        spec = mesh.get("defaultHttpRetryPolicy")
    return DEFAULT_POLICY if spec is None else convert(spec)


def convert(spec: Obj) -> RetryPolicy | None:
    """Istio's ConvertPolicy: the default policy overridden by what ``spec`` sets."""
    attempts = int(spec.get("attempts") or 0)
    if attempts <= 0:
        return None
    retry_on, codes = DEFAULT_RETRY_ON, frozenset({503})
    if str(spec.get("retryOn") or "").strip():
        retry_on, codes = parse_retry_on(str(spec["retryOn"]))
    per_try = parse_duration(spec["perTryTimeout"]) if spec.get("perTryTimeout") else None
    base = parse_duration(spec["backoff"]) if spec.get("backoff") else None
    ignore_previous = spec.get("retryIgnorePreviousHosts")
    return RetryPolicy(attempts, retry_on, codes, per_try or None, base or BACKOFF_BASE,
                       True if ignore_previous is None else bool(ignore_previous))


def parse_retry_on(text: str) -> tuple[frozenset[str], frozenset[int]]:
    """``"gateway-error,503"`` -> conditions and status codes (codes add the condition)."""
    conditions, codes = set(), set()
    for part in (p.strip() for p in text.split(",")):
        if part.isdigit() and int(part) in HTTPStatus._value2member_map_:
            codes.add(int(part))
        elif part:
            conditions.add(part)
    if codes:
        conditions.add("retriable-status-codes")
    return frozenset(conditions), frozenset(codes)


# --------------------------------------------------------------------- decisions
def retries_status(policy: RetryPolicy, status: int) -> bool:
    on = policy.retry_on
    return (("5xx" in on and status >= 500) or ("gateway-error" in on and status in (502, 503, 504))
            or ("retriable-4xx" in on and status == 409)
            or ("retriable-status-codes" in on and status in policy.status_codes))


def retries_reset(policy: RetryPolicy) -> bool:
    """A connection failure before any response (Envoy's wouldRetryFromReset)."""
    return bool(policy.retry_on & ON_RESET)


def retries_per_try_timeout(policy: RetryPolicy) -> bool:
    return bool(policy.retry_on & ON_PER_TRY_TIMEOUT)


def backoff(policy: RetryPolicy, retry: int, draw: Callable[[float, float], float]) -> float:
    """Seconds to wait before retry number ``retry`` (1-based).

    ``draw(low_ms, high_ms)`` returns a uniform draw in seconds (``Flow.jitter``).
    """
    ceiling = min(policy.backoff_base * (2 ** retry - 1), policy.backoff_base * 10)
    return draw(0.0, ceiling * 1000.0)


def pick_endpoint(endpoints: Sequence[Endpoint], tried: list[Endpoint], rng: random.Random,
                  previous_hosts: bool = True) -> Endpoint:
    """The endpoint of the next try: one not tried yet when the policy prefers that."""
    used = {(e.ip, e.port) for e in tried} if previous_hosts else set()
    fresh = [e for e in endpoints if (e.ip, e.port) not in used]
    chosen = rng.choice(fresh or list(endpoints))
    tried.append(chosen)
    return chosen


# ------------------------------------------------------------------------ router
def forward(hop: HopContext, route: Obj | None, request: Request, at: float, deadline: float | None,
            attempt: Attempt, counters: MutableMapping[str, int] | None = None) -> Response:
    """Send ``request`` upstream with the route's timeout and retries; the client's answer.

    ``counters`` (the cluster's Envoy counters, if the caller keeps them) get
    ``upstream_rq_retry``, ``upstream_rq_retry_success``, ``upstream_rq_retry_limit_exceeded``,
    ``upstream_rq_per_try_timeout`` and ``upstream_rq_timeout`` as Envoy counts them.
    """
    count = _Count(counters)
    policy = retry_policy(route, hop.flow.snap.mesh.raw)
    timeout = route_timeout(route)
    overall = at + timeout if timeout else None
    start, number = at, 1
    while True:
        per_try = start + policy.per_try_timeout if policy and policy.per_try_timeout else None
        until = _earliest(deadline, overall, per_try)
        answer = attempt(Try(start, until, number, _expected_ms(per_try, overall, start)))
        if until is not None and (_timed_out(answer) or answer.end > until):
            if until == deadline or until == overall:
                return _gave_up(hop, request, at, deadline, overall, count)
            assert policy is not None
            count("upstream_rq_per_try_timeout")
            retry = retries_per_try_timeout(policy)
            if not retry or number > policy.retries:
                count("upstream_rq_retry_limit_exceeded" if retry else "")
                reply = LocalReply(504, TIMEOUT_BODY, "UT,URX" if retry else "UT",
                                   "upstream_per_try_timeout")
                return _local(hop, reply, request, at, until)
            ready = until
        elif policy is None or not _retriable(policy, answer):
            count("upstream_rq_retry_success" if number > 1 else "")
            return _final(hop, answer, at, number)
        elif number > policy.retries:
            count("upstream_rq_retry_limit_exceeded")
            return _final(hop, _exhausted(answer), at, number)
        else:
            ready = answer.end
        count("upstream_rq_retry")
        start = ready + backoff(policy, number, hop.flow.jitter)
        number += 1
        limit = _earliest(deadline, overall)
        if limit is not None and start >= limit:
            return _gave_up(hop, request, at, deadline, overall, count)


class _Count:
    """Increment Envoy cluster counters when the caller keeps them (an empty name: nothing)."""

    def __init__(self, counters: MutableMapping[str, int] | None) -> None:
        self.counters = counters

    def __call__(self, name: str) -> None:
        if self.counters is not None and name:
            self.counters[name] = self.counters.get(name, 0) + 1


def _earliest(*bounds: float | None) -> float | None:
    present = [b for b in bounds if b is not None]
    return min(present) if present else None


def _expected_ms(per_try: float | None, overall: float | None, start: float) -> int | None:
    chosen = _earliest(per_try, overall)
    return max(1, millis(chosen - start)) if chosen is not None else None


def _timed_out(answer: Response) -> bool:
    return answer.failure is not None and answer.failure.kind == "timeout"


def _retriable(policy: RetryPolicy, answer: Response) -> bool:
    if answer.failure is not None:
        return False
    if answer.details == "via_upstream":
        return retries_status(policy, answer.status)
    return flags.has(answer.response_flags, "UF") and retries_reset(policy)


def _gave_up(hop: HopContext, request: Request, at: float, deadline: float | None,
             overall: float | None, count: _Count) -> Response:
    """The client's deadline (it closes the stream: DC) or the route timeout (504 UT)."""
    if deadline is not None and (overall is None or deadline <= overall):
        return failed("timeout", at, deadline - at)
    assert overall is not None
    count("upstream_rq_timeout")
    reply = LocalReply(504, TIMEOUT_BODY, "UT", "upstream_response_timeout")
    return _local(hop, reply, request, at, overall)


def _local(hop: HopContext, reply: LocalReply, request: Request, at: float,
           when: float) -> Response:
    response = hop.local_reply(reply, request, when)
    response.start, response.duration = at, when - at + response.duration
    hop.record.upstream_service_time = None
    return response


def _exhausted(answer: Response) -> Response:
    """The last answer once retries ran out: URX, and "retried" in a reset's body."""
    answer.response_flags = flags.merge(answer.response_flags, "URX")
    text = answer.body.decode("utf-8", "replace")
    if text.startswith(RESET_PREFIX) and "retried and the latest" not in text:
        body = (RESET_PREFIX + "retried and the latest " + text[len(RESET_PREFIX):]).encode()
        answer.body = body
        answer.headers.set("content-length", str(len(body)))
    return answer


def _final(hop: HopContext, answer: Response, at: float, number: int) -> Response:
    end = answer.end
    answer.start, answer.duration = at, end - at
    if number > 1 and answer.details == "via_upstream" and answer.failure is None:
        took = str(millis(end - at))
        answer.headers.set("x-envoy-upstream-service-time", took)
        hop.record.upstream_service_time = took
    return answer
