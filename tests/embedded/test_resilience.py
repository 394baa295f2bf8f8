"""Route timeouts and retries (mesh/resilience.py): Istio 1.26's translation, Envoy's router.

Pure functions first (durations, Istio's ConvertPolicy and default policy, Envoy's retry
decisions and back-off), then requests through the mesh model on virtual time: a 3 s upstream
behind a 1 s route timeout answers in 1 s without anything sleeping. Supports L4.1-C03..C05.
"""

from __future__ import annotations

import json
import random
import time
from typing import Any

import pytest
from mesh_testkit import Kit

from pytest_istiolab.embedded import workloads
from pytest_istiolab.embedded.mesh import request_from_pod, resilience
from pytest_istiolab.embedded.mesh.headers import Headers
from pytest_istiolab.embedded.mesh.model import Endpoint
from pytest_istiolab.embedded.tools import run_in_container
from pytest_istiolab.embedded.workloads.base import AppContext, AppRequest, AppResponse

Obj = dict[str, Any]
HELLO_IMAGE = "docker.io/istio/examples-helloworld-v1"


# ------------------------------------------------------------------ configuration
@pytest.mark.parametrize(("text", "seconds"), [
    ("1s", 1.0), ("0.5s", 0.5), ("100ms", 0.1), ("1m30s", 90.0), ("2h", 7200.0), ("1.5s", 1.5),
    ("0", 0.0), ("250us", 0.00025)])
def test_durations_in_istio_syntax(text: str, seconds: float) -> None:
    assert resilience.parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "1", "s", "1 s", "abc", "1sx", "-1s"])
def test_not_durations(text: str) -> None:
    assert resilience.parse_duration(text) is None


@pytest.mark.parametrize(("route", "expected"), [
    (None, None), ({}, None), ({"timeout": "0s"}, None), ({"timeout": "1s"}, 1.0),
    ({"timeout": "bogus"}, None)])
def test_route_timeout_absent_or_zero_is_no_timeout(route: Obj | None,
                                                    expected: float | None) -> None:
    assert resilience.route_timeout(route) == expected


def test_istio_default_policy_without_retries_anywhere() -> None:
    policy = resilience.retry_policy(None, {})
    assert policy == resilience.RetryPolicy(
        2, frozenset({"connect-failure", "refused-stream", "unavailable", "cancelled",
                      "retriable-status-codes"}), frozenset({503}))
    assert resilience.retry_policy({"route": []}, {}) == policy


def test_mesh_default_http_retry_policy_replaces_the_default() -> None:
    policy = resilience.retry_policy(None, {"defaultHttpRetryPolicy": {"attempts": 5}})
    assert policy is not None and policy.retries == 5 and policy.status_codes == {503}
    assert resilience.retry_policy(None, {"defaultHttpRetryPolicy": {"attempts": 0}}) is None


def test_route_retries_override_the_default_field_by_field() -> None:
    policy = resilience.retry_policy({"retries": {"attempts": 2, "perTryTimeout": "1s"}}, {})
    assert policy is not None
    assert (policy.retries, policy.per_try_timeout, policy.status_codes) == (2, 1.0, {503})
    assert policy.retry_on == resilience.DEFAULT_RETRY_ON
    assert resilience.retry_policy({"retries": {"attempts": 0}}, {}) is None
    assert resilience.retry_policy({"retries": {"perTryTimeout": "1s"}}, {}) is None


@pytest.mark.parametrize(("retry_on", "conditions", "codes"), [
    ("5xx", {"5xx"}, set()),
    ("gateway-error,503", {"gateway-error", "retriable-status-codes"}, {503}),
    ("connect-failure, 502 ,504", {"connect-failure", "retriable-status-codes"}, {502, 504}),
    ("retriable-status-codes", {"retriable-status-codes"}, set()),
    ("999,reset", {"999", "reset"}, set())])
def test_retry_on_conditions_and_status_codes(retry_on: str, conditions: set[str],
                                              codes: set[int]) -> None:
    policy = resilience.convert({"attempts": 1, "retryOn": retry_on})
    assert policy is not None and (policy.retry_on, policy.status_codes) == (conditions, codes)


@pytest.mark.parametrize(("retry_on", "status", "retried"), [
    ("retriable-status-codes,503", 503, True), ("retriable-status-codes,503", 500, False),
    ("5xx", 500, True), ("5xx", 404, False), ("gateway-error", 504, True),
    ("gateway-error", 500, False), ("retriable-4xx", 409, True), ("retriable-4xx", 404, False),
    ("connect-failure", 503, False)])
def test_status_decisions(retry_on: str, status: int, retried: bool) -> None:
    policy = resilience.convert({"attempts": 1, "retryOn": retry_on})
    assert policy is not None and resilience.retries_status(policy, status) is retried


def test_per_try_timeouts_are_retried_only_on_5xx_gateway_error_or_reset() -> None:
    """istio#17613: Istio's default retryOn leaves a per-try timeout unretried."""
    assert not resilience.retries_per_try_timeout(resilience.DEFAULT_POLICY)
    for condition in ("5xx", "gateway-error", "reset"):
        policy = resilience.convert({"attempts": 1, "retryOn": condition})
        assert policy is not None and resilience.retries_per_try_timeout(policy)
    assert resilience.retries_reset(resilience.DEFAULT_POLICY)


def test_backoff_is_fully_jittered_exponential_capped_at_ten_times_base() -> None:
    ceilings = [resilience.backoff(resilience.DEFAULT_POLICY, n, lambda low, high: high / 1000)
                for n in (1, 2, 3, 4, 5)]
    assert ceilings == pytest.approx([0.025, 0.075, 0.175, 0.25, 0.25])
    assert resilience.backoff(resilience.DEFAULT_POLICY, 1, lambda low, high: low) == 0.0


def test_a_retry_prefers_an_endpoint_not_tried_yet() -> None:
    endpoints = [Endpoint("10.0.0.1", 80), Endpoint("10.0.0.2", 80)]
    rng, tried = random.Random(3), []
    first = resilience.pick_endpoint(endpoints, tried, rng)
    second = resilience.pick_endpoint(endpoints, tried, rng)
    assert {first, second} == set(endpoints)
    assert resilience.pick_endpoint(endpoints[:1], tried, rng) == endpoints[0]


# ------------------------------------------------------------------ through the mesh
@pytest.fixture
def kit() -> Kit:
    k = Kit(mesh={"accessLogEncoding": "JSON"})
    k.httpbin()
    k.sleep()
    return k


def vs(kit: Kit, route_extra: str) -> None:
    kit.apply(f"""
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: httpbin}}
spec:
  hosts: [httpbin]
  http:
  - route: [{{destination: {{host: httpbin}}}}]
{route_extra}
""")


def send(kit: Kit, path: str, **kw: Any):  # type: ignore[no-untyped-def]
    return request_from_pod(kit.rt, kit.get_pod("sleep"), "GET", f"http://httpbin:8000{path}",
                            Headers({"user-agent": "curl/8.14.1"}), **kw)


def log(kit: Kit, prefix: str) -> list[Obj]:
    return [json.loads(line) for line in kit.logs(kit.get_pod(prefix))]


def test_route_timeout_answers_504_ut_on_virtual_time(kit: Kit) -> None:
    vs(kit, "    timeout: 1s")
    started = time.monotonic()
    response = send(kit, "/delay/3")
    assert time.monotonic() - started < 1.0, "virtual time: nothing may sleep"
    assert (response.status, response.text) == (504, "upstream request timeout")
    assert response.duration == pytest.approx(1.0, abs=0.01)
    client, server = log(kit, "sleep")[-1], log(kit, "httpbin")[-1]
    assert (client["response_code"], client["response_flags"],
            client["response_code_details"]) == (504, "UT", "upstream_response_timeout")
    assert client["upstream_service_time"] is None and client["bytes_sent"] == 24
    assert (server["response_code"], server["response_flags"]) == (0, "DC")
    assert server["duration"] == pytest.approx(1000, abs=5)


def test_curl_sees_the_timeout_in_time_total(kit: Kit) -> None:
    vs(kit, "    timeout: 1s")
    result = run_in_container(kit.rt, kit.get_pod("sleep"), "sleep",
                              ["curl", "-s", "-w", "\\n%{http_code} %{time_total}",
                               "http://httpbin:8000/delay/3"])
    body, status_time = result.stdout.decode().rsplit("\n", 1)
    status, total = status_time.split()
    assert (body, status, result.exit_code) == ("upstream request timeout", "504", 0)
    assert 1.0 <= float(total) < 1.1


def test_istio_default_retries_an_upstream_503_twice(kit: Kit) -> None:
    response = send(kit, "/status/503")
    assert (response.status, response.response_flags) == (503, "URX")
    tries = [e for e in log(kit, "httpbin") if e["path"] == "/status/503"]
    assert len(tries) == 3 and len({e["request_id"] for e in tries}) == 1
    client = log(kit, "sleep")[-1]
    assert (client["response_flags"], client["response_code_details"]) == ("URX", "via_upstream")


def test_attempts_zero_sends_one_try_and_500_is_not_retried_by_default(kit: Kit) -> None:
    vs(kit, "    retries: {attempts: 0}")
    assert send(kit, "/status/503").response_flags == "-"
    vs(kit, "")
    assert send(kit, "/status/500").response_flags == "-"
    paths = [e["path"] for e in log(kit, "httpbin")]
    assert (paths.count("/status/503"), paths.count("/status/500")) == (1, 1)


def test_per_try_timeout_is_not_retried_with_the_default_retry_on(kit: Kit) -> None:
    vs(kit, "    retries: {attempts: 2, perTryTimeout: 0.5s}")
    response = send(kit, "/delay/2")
    assert (response.status, response.response_flags, response.details) == (
        504, "UT", "upstream_per_try_timeout")
    assert len([e for e in log(kit, "httpbin") if e["path"] == "/delay/2"]) == 1


def test_per_try_timeout_retried_on_gateway_error_until_the_limit(kit: Kit) -> None:
    vs(kit, "    retries: {attempts: 2, perTryTimeout: 0.5s, retryOn: gateway-error}")
    response = send(kit, "/delay/2")
    assert (response.status, response.text, response.response_flags, response.details) == (
        504, "upstream request timeout", "UT,URX", "upstream_per_try_timeout")
    assert 1.5 <= response.duration < 1.5 + 0.1 + 0.025 * 4  # three tries and two back-offs
    tries = [e for e in log(kit, "httpbin") if e["path"] == "/delay/2"]
    assert [e["response_flags"] for e in tries] == ["DC", "DC", "DC"]


def test_route_timeout_bounds_all_tries(kit: Kit) -> None:
    vs(kit, "    timeout: 1.2s\n"
            "    retries: {attempts: 5, perTryTimeout: 0.5s, retryOn: 5xx}")
    response = send(kit, "/delay/2")
    assert (response.status, response.response_flags, response.details) == (
        504, "UT", "upstream_response_timeout")
    assert response.duration == pytest.approx(1.2, abs=0.01)
    assert len([e for e in log(kit, "httpbin") if e["path"] == "/delay/2"]) == 3


def test_client_deadline_before_the_route_timeout_is_dc(kit: Kit) -> None:
    vs(kit, "    timeout: 2s")
    response = send(kit, "/delay/3", timeout=0.5)
    assert response.failure is not None and response.failure.kind == "timeout"
    assert log(kit, "sleep")[-1]["response_flags"] == "DC"


def test_expected_timeout_header_reaches_the_application(kit: Kit) -> None:
    vs(kit, "    timeout: 2s")
    echoed = json.loads(send(kit, "/headers").body)["headers"]
    assert echoed["X-Envoy-Expected-Rq-Timeout-Ms"] == ["2000"]
    assert echoed["X-Envoy-Attempt-Count"] == ["1"]


def test_connection_failures_are_retried_then_uf_urx_retried_body(kit: Kit) -> None:
    """A pod without sidecar where nothing listens: connect-failure, 3 tries in all."""
    kit.workload("quiet", "default", "curlimages/curl:8.14.1", 80, [("http", 80, 80)],
                 sidecar=False)
    response = request_from_pod(kit.rt, kit.get_pod("sleep"), "GET", "http://quiet/",
                                Headers({"user-agent": "curl"}))
    assert (response.status, response.response_flags) == (503, "UF,URX")
    assert response.text.startswith("upstream connect error or disconnect/reset before headers. "
                                    "retried and the latest reset reason: remote connection "
                                    "failure")
    assert response.headers.get("content-length") == str(len(response.body))


# ------------------------------------------------------------------ a flaky upstream
class Flaky:
    """Answers 503 to its first ``fail`` requests, then 200; remembers the attempt counts."""

    seen: list[str] = []
    fail = 2

    def __init__(self, pod: Obj, container: Obj) -> None:
        pass

    def handle(self, ctx: AppContext, req: AppRequest) -> AppResponse:
        ctx.spend(10.0)
        Flaky.seen.append(req.headers.get("x-envoy-attempt-count") or "")
        status = 503 if len(Flaky.seen) <= Flaky.fail else 200
        return AppResponse(status, Headers([("content-length", "2")]), b"ok")


@pytest.fixture
def flaky(kit: Kit, monkeypatch: pytest.MonkeyPatch) -> Kit:
    monkeypatch.setattr(Flaky, "seen", [])
    monkeypatch.setitem(workloads._REGISTRY, "helloworld", Flaky)
    kit.workload("helloworld", "default", HELLO_IMAGE, 5000, [("http", 5000, 5000)])
    return kit


def test_a_retried_request_succeeds_and_counts_every_try(flaky: Kit) -> None:
    response = request_from_pod(flaky.rt, flaky.get_pod("sleep"), "GET",
                                "http://helloworld:5000/", Headers({"user-agent": "curl"}))
    assert (response.status, response.response_flags) == (200, "-")
    assert Flaky.seen == ["1", "2", "3"]
    service_time = int(response.headers.get("x-envoy-upstream-service-time") or 0)
    assert service_time >= 30, "the service time covers every try"


def test_retry_counters_as_envoy_counts_them(flaky: Kit, monkeypatch: pytest.MonkeyPatch) -> None:
    counters: dict[str, int] = {}
    original = resilience.forward

    def counting(*args: Any, **kwargs: Any):  # type: ignore[no-untyped-def]
        return original(*args, **{**kwargs, "counters": counters})

    monkeypatch.setattr(resilience, "forward", counting)
    request_from_pod(flaky.rt, flaky.get_pod("sleep"), "GET", "http://helloworld:5000/",
                     Headers({"user-agent": "curl"}))
    assert counters == {"upstream_rq_retry": 2, "upstream_rq_retry_success": 1}
