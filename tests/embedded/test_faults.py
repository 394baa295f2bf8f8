"""Fault injection (mesh/faults.py): Istio 1.26's translation and Envoy's fault filter.

Pure functions first (which fraction of requests a fault hits), then requests through the
mesh model. The header-match and percentage tests are the model's guard for Lab 5.1 and
Lab 4.1: they fail when a fault hits users its route does not match, or when the
percentage (or the deprecated integer ``percent``) is not honoured. Supports L4.1-C02,
L4.1-C05, L5.1-C02..C05.
"""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from mesh_testkit import DR_ALL, TEST_V2, Kit

from pytest_istiolab.embedded.mesh import faults, ingress, request_from_pod
from pytest_istiolab.embedded.mesh.headers import Headers
from pytest_istiolab.embedded.mesh.model import Request
from pytest_istiolab.embedded.tools import run_in_container
from pytest_istiolab.embedded.workloads.productpage import sign_session
from pytest_istiolab.traffic import assert_proportion

Obj = dict[str, Any]
RATINGS_DR = """
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: ratings}
spec:
  host: ratings
  subsets: [{name: v1, labels: {version: v1}}]
"""


# ------------------------------------------------------------------ translation
@pytest.mark.parametrize(("spec", "fraction"), [
    ({"percentage": {"value": 100.0}}, faults.Fraction(1_000_000, 1_000_000)),
    ({"percentage": {"value": 0.1}}, faults.Fraction(1000, 1_000_000)),
    ({"percent": 100}, faults.Fraction(100, 100)),
    ({"percent": 30, "percentage": {"value": 50}}, faults.Fraction(500_000, 1_000_000)),
    ({}, faults.Fraction(0, 100))])
def test_delay_fraction_from_percentage_or_deprecated_percent(
        spec: Obj, fraction: faults.Fraction) -> None:
    fault = faults.parse_fault({"delay": {"fixedDelay": "7s", **spec}})
    assert fault is not None and (fault.delay, fault.delay_fraction) == (7.0, fraction)


def test_abort_without_percentage_never_fires() -> None:
    """istio#36303: Istio writes no percentage, Envoy reads 0 %."""
    fault = faults.parse_fault({"abort": {"httpStatus": 500}})
    assert fault is not None and fault.abort_fraction == faults.NEVER
    full = faults.parse_fault({"abort": {"httpStatus": 500, "percentage": {"value": 100}}})
    assert full is not None and (full.abort_status, full.abort_fraction.numerator) == (
        500, 1_000_000)


@pytest.mark.parametrize("spec", [None, {}, {"delay": {"exponentialDelay": "1s"}},
                                  {"abort": {"grpcStatus": "UNAVAILABLE"}}])
def test_nothing_to_inject(spec: Obj | None) -> None:
    assert faults.parse_fault(spec) is None


def test_fraction_sampling_hits_its_share() -> None:
    rng = random.Random(11)
    assert all(faults.Fraction(100, 100).sample(rng) for _ in range(500))
    assert not any(faults.NEVER.sample(rng) for _ in range(500))
    half = faults.Fraction(500_000, 1_000_000)
    hits = sum(half.sample(rng) for _ in range(2000))
    assert_proportion(hits, 2000, 0.5, description="50 % fraction")


# ------------------------------------------------------------------ through the mesh
@pytest.fixture
def kit() -> Kit:
    k = Kit(mesh={"accessLogEncoding": "JSON"})
    k.bookinfo()
    k.sleep()
    k.apply(DR_ALL)
    k.apply(RATINGS_DR)
    return k


def ratings_vs(kit: Kit, fault: str, match: str = "") -> None:
    kit.apply(f"""
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: ratings}}
spec:
  hosts: [ratings]
  http:
  - {match}fault: {fault}
    route: [{{destination: {{host: ratings, subset: v1}}}}]
  - route: [{{destination: {{host: ratings, subset: v1}}}}]
""")


def call_ratings(kit: Kit, user: str | None = None, **kw: Any):  # type: ignore[no-untyped-def]
    headers = Headers({"user-agent": "curl/8.14.1"})
    if user:
        headers.set("end-user", user)
    return request_from_pod(kit.rt, kit.get_pod("sleep"), "GET", "http://ratings:9080/ratings/0",
                            headers, **kw)


def log(kit: Kit, prefix: str) -> list[Obj]:
    return [json.loads(line) for line in kit.logs(kit.get_pod(prefix))]


JASON = "match: [{headers: {end-user: {exact: jason}}}]\n    "


def test_delay_hits_only_requests_its_route_matches(kit: Kit) -> None:
    ratings_vs(kit, "{delay: {percentage: {value: 100.0}, fixedDelay: 7s}}", JASON)
    jason, anonymous, other = call_ratings(kit, "jason"), call_ratings(kit), \
        call_ratings(kit, "tom")
    assert jason.status == 200 and jason.duration >= 7.0
    assert anonymous.duration < 0.5 and other.duration < 0.5, "the fault leaked to others"
    entries = log(kit, "sleep")
    assert [e["response_flags"] for e in entries] == ["DI", "-", "-"]
    delayed = entries[0]
    assert delayed["duration"] >= 7000 and int(delayed["upstream_service_time"]) < 100


def test_delay_percentage_is_honoured(kit: Kit) -> None:
    ratings_vs(kit, "{delay: {percentage: {value: 50}, fixedDelay: 1s}}")
    delayed = sum(call_ratings(kit).duration >= 1.0 for _ in range(200))
    assert_proportion(delayed, 200, 0.5, description="requests delayed at 50 %")
    ratings_vs(kit, "{delay: {percentage: {value: 0}, fixedDelay: 1s}}")
    assert all(call_ratings(kit).duration < 1.0 for _ in range(50))


def test_deprecated_integer_percent_is_honoured(kit: Kit) -> None:
    ratings_vs(kit, "{delay: {percent: 100, fixedDelay: 2s}}")
    assert all(call_ratings(kit).duration >= 2.0 for _ in range(20))
    ratings_vs(kit, "{delay: {percent: 25, fixedDelay: 2s}}")
    delayed = sum(call_ratings(kit).duration >= 2.0 for _ in range(200))
    assert_proportion(delayed, 200, 0.25, description="requests delayed at percent 25")


def test_abort_is_a_local_reply_of_the_callers_sidecar(kit: Kit) -> None:
    ratings_vs(kit, "{abort: {percentage: {value: 100.0}, httpStatus: 500}}", JASON)
    before = len(log(kit, "ratings"))
    response = call_ratings(kit, "jason")
    assert (response.status, response.text) == (500, "fault filter abort")
    assert response.headers.get("content-type") == "text/plain"
    assert len(log(kit, "ratings")) == before, "an aborted request never leaves the client"
    entry = log(kit, "sleep")[-1]
    assert (entry["response_code"], entry["response_flags"], entry["response_code_details"],
            entry["bytes_sent"], entry["upstream_host"]) == (500, "FI", "fault_filter_abort",
                                                             18, None)
    assert entry["upstream_cluster"] == "outbound|9080|v1|ratings.default.svc.cluster.local"
    assert call_ratings(kit, "tom").status == 200


def test_abort_percentage_is_honoured(kit: Kit) -> None:
    ratings_vs(kit, "{abort: {percentage: {value: 50}, httpStatus: 503}}")
    aborted = sum(call_ratings(kit).status == 503 for _ in range(200))
    assert_proportion(aborted, 200, 0.5, description="requests aborted at 50 %")


def test_delay_then_abort(kit: Kit) -> None:
    ratings_vs(kit, "{delay: {percentage: {value: 100}, fixedDelay: 1s}, "
                    "abort: {percentage: {value: 100}, httpStatus: 418}}")
    response = call_ratings(kit)
    assert (response.status, response.response_flags) == (418, "DI,FI")
    assert response.duration >= 1.0


def test_route_timeout_and_retries_start_after_the_delay(kit: Kit) -> None:
    """D-12: the delay happens before the router, so neither the 1 s timeout nor the 1 s
    per-try timeout fires on a 2 s delay, and ratings is called once."""
    kit.apply("""
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ratings}
spec:
  hosts: [ratings]
  http:
  - fault: {delay: {percent: 100, fixedDelay: 2s}}
    route: [{destination: {host: ratings, subset: v1}}]
    timeout: 1s
    retries: {attempts: 2, perTryTimeout: 1s}
""")
    before = len(log(kit, "ratings"))
    response = call_ratings(kit)
    assert (response.status, response.response_flags) == (200, "DI")
    assert response.duration >= 2.0
    assert len(log(kit, "ratings")) == before + 1


def test_client_leaving_during_the_delay_logs_di_dc(kit: Kit) -> None:
    ratings_vs(kit, "{delay: {percentage: {value: 100}, fixedDelay: 7s}}")
    result = run_in_container(kit.rt, kit.get_pod("sleep"), "sleep",
                              ["curl", "-sS", "-m", "1", "http://ratings:9080/ratings/0"])
    assert result.exit_code == 28
    entry = log(kit, "sleep")[-1]
    assert (entry["response_code"], entry["response_flags"]) == (0, "DI,DC")


def test_gateway_routes_inject_faults_too(kit: Kit) -> None:
    kit.apply("""
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  selector: {istio: ingressgateway}
  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ["*"]}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: via-gateway}
spec:
  hosts: ["*"]
  gateways: [gw]
  http:
  - fault: {abort: {percentage: {value: 100}, httpStatus: 503}}
    route: [{destination: {host: ratings, port: {number: 9080}}}]
""")
    response = ingress(kit.rt, kit.ingress_pod(), 8080,
                       Request("GET", "/ratings/0", "example", Headers()))
    assert (response.status, response.text) == (503, "fault filter abort")


# ------------------------------------------------------------------ Bookinfo, Lab 5.1
def page(kit: Kit, user: str | None):  # type: ignore[no-untyped-def]
    headers = Headers({"user-agent": "curl/8.14.1"})
    if user:
        headers.set("cookie", "session=" + sign_session({"user": user}))
    return request_from_pod(kit.rt, kit.get_pod("sleep"), "GET",
                            "http://productpage:9080/productpage", headers)


def test_jason_waits_six_seconds_for_unavailable_reviews_others_do_not(kit: Kit) -> None:
    """productpage tries reviews twice with 3 s each; reviews v2 waits up to 10 s for a
    ratings call delayed 7 s (catalogue D-31)."""
    kit.apply(TEST_V2)
    ratings_vs(kit, "{delay: {percentage: {value: 100.0}, fixedDelay: 7s}}", JASON)
    jason, anonymous = page(kit, "jason"), page(kit, None)
    assert jason.status == 200 and 6.0 <= jason.duration < 6.5
    assert "Sorry, product reviews are currently unavailable for this book." in jason.text
    assert anonymous.duration < 1.0 and "Sorry" not in anonymous.text


def test_jason_sees_ratings_unavailable_under_abort(kit: Kit) -> None:
    kit.apply(TEST_V2)
    ratings_vs(kit, "{abort: {percentage: {value: 100.0}, httpStatus: 500}}", JASON)
    jason, anonymous = page(kit, "jason"), page(kit, None)
    assert jason.text.count("Ratings service is currently unavailable") == 2
    assert jason.duration < 1.0
    assert "Ratings service is currently unavailable" not in anonymous.text
