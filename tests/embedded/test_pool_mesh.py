"""Circuit breaking and outlier detection through the mesh model (no API server).

Envoy's overflow reply (503 ``UO``, ``x-envoy-overloaded``, the overflow body and details in
the client sidecar's access log), fortio runs through the sidecar for several seeds with the
counters ``pilot-agent request GET stats`` prints, Istio's stats matcher, and outlier
detection turning a 500 into ``no healthy upstream``. Facts: reference/envoy-istio-signatures.md.
"""

from __future__ import annotations

import re

import pytest
from mesh_testkit import Kit

from pytest_istiolab import traffic
from pytest_istiolab.embedded.mesh import clusters, pool, request_from_pod
from pytest_istiolab.embedded.mesh.config import snapshot
from pytest_istiolab.embedded.mesh.headers import Headers
from pytest_istiolab.embedded.mesh.model import Destination
from pytest_istiolab.embedded.tools import run_in_container

CIRCUIT_BREAKER = """
apiVersion: networking.istio.io/v1alpha3
kind: DestinationRule
metadata: {name: httpbin}
spec:
  host: httpbin
  trafficPolicy:
    connectionPool:
      tcp: {maxConnections: 1}
      http: {http1MaxPendingRequests: 1, maxRequestsPerConnection: 1}
    outlierDetection: {consecutive5xxErrors: 1, interval: 1s, baseEjectionTime: 3m,
                       maxEjectionPercent: 100}
"""
CLUSTER = "outbound|8000||httpbin.default.svc.cluster.local"
STATS_ANNOTATION = {"proxy.istio.io/config":
                    "proxyStatsMatcher:\n  inclusionPrefixes:\n  - cluster.outbound\n"}
OVERFLOW_BODY = b"upstream connect error or disconnect/reset before headers. reset reason: overflow"
LOG = re.compile(r'"GET /get HTTP/1.1" (?P<code>\d+) (?P<flags>\S+) (?P<details>\S+) .* '
                 r'"(?P<uhost>[^"]*)" (?P<cluster>\S+) ')


def annotate(kit: Kit, name: str, annotations: dict[str, str]) -> None:
    def fill(obj: dict) -> dict:
        obj["metadata"].setdefault("annotations", {}).update(annotations)
        return obj
    kit.store.mutate(kit.rtype("", "pods"), "default", name, fill)


def mesh(seed: int = 7, annotations: dict[str, str] | None = None, rule: bool = True) -> Kit:
    kit = Kit(seed=seed)
    kit.httpbin()
    kit.sleep()
    kit.pod("fortio-deploy-6d5c7b8f9-k2x4q", "default", "fortio/fortio:latest_release",
            {"app": "fortio"}, ports=[8080])
    annotate(kit, "fortio-deploy-6d5c7b8f9-k2x4q", STATS_ANNOTATION if annotations is None
             else annotations)
    if rule:
        kit.apply(CIRCUIT_BREAKER)
    return kit


def fortio(kit: Kit, *args: str):  # type: ignore[no-untyped-def]
    return run_in_container(kit.rt, kit.get_pod("fortio-deploy"), "fortio",
                            ["/usr/bin/fortio", *args])


def stats(kit: Kit, path: str = "stats") -> dict[str, int]:
    result = run_in_container(kit.rt, kit.get_pod("fortio-deploy"), "istio-proxy",
                              ["pilot-agent", "request", "GET", path])
    assert result.exit_code == 0, result.stderr
    return traffic.envoy_stats(result.stdout.decode())


def test_an_overflowing_request_gets_envoys_overflow_reply() -> None:
    kit = mesh()
    sleep = kit.get_pod("sleep")
    cluster = clusters.resolve(snapshot(kit.rt), "default",
                               Destination("httpbin.default.svc.cluster.local"), 8000)
    now = kit.rt.clock.now()
    waiting = pool.lane(kit.rt, sleep, cluster).admit(now, 5.0)  # pending for 5 s: queue full
    assert waiting is not None
    response = request_from_pod(kit.rt, sleep, "GET", "http://httpbin:8000/get",
                                Headers({"user-agent": "curl/8.14.1"}), start=now + 1.0)
    assert (response.status, response.body, response.response_flags) == (503, OVERFLOW_BODY,
                                                                          "UO")
    assert response.headers.get("x-envoy-overloaded") == "true"
    assert response.headers.get("content-length") == str(len(OVERFLOW_BODY))
    line = LOG.search(kit.logs(sleep)[-1])
    assert line is not None
    assert (line["code"], line["flags"], line["details"], line["uhost"], line["cluster"]) == (
        "503", "UO", "upstream_reset_before_response_started{overflow}", "-", CLUSTER)


@pytest.mark.parametrize("seed", range(10))
def test_fortio_through_the_sidecar_trips_the_breaker_and_envoy_counts_it(seed: int) -> None:
    kit = mesh(seed)
    result = fortio(kit, "load", "-c", "3", "-qps", "0", "-n", "30", "-loglevel", "Warning",
                    "http://httpbin:8000/get")
    text = result.stderr.decode()
    codes = traffic.fortio_codes(text)
    assert result.exit_code == 0 and "All done 30 calls (plus 0 warmup)" in text
    assert sum(codes.values()) == 30 and set(codes) == {200, 503}
    overflow_lines = [m for m in map(LOG.search, kit.logs(kit.get_pod("fortio-deploy")))
                      if m and m["flags"] == "UO"]
    counters = {k.split(";.", 1)[1]: v for k, v in stats(kit).items()
                if k.startswith(f"cluster.{CLUSTER};.")}
    assert counters["upstream_rq_pending_overflow"] == codes[503] == len(overflow_lines)
    assert counters["upstream_rq_total"] == codes[200] == counters["upstream_cx_total"]
    assert (counters["circuit_breakers.default.remaining_pending"],
            counters["circuit_breakers.default.rq_pending_open"],
            counters["circuit_breakers.high.rq_pending_open"],
            counters["upstream_rq_pending_active"],
            counters["upstream_rq_pending_failure_eject"]) == (1, 0, 0, 0, 0)


def test_without_the_rule_nothing_overflows() -> None:
    kit = mesh(rule=False)
    text = fortio(kit, "load", "-c", "3", "-qps", "0", "-n", "30", "http://httpbin:8000/get"
                  ).stderr.decode()
    assert traffic.fortio_codes(text) == {200: 30}
    assert stats(kit)[f"cluster.{CLUSTER};.circuit_breakers.default.remaining_pending"] == \
        pool.UNLIMITED


def test_counters_are_cumulative_per_pod() -> None:
    kit = mesh()
    for _ in range(2):
        fortio(kit, "load", "-c", "2", "-qps", "0", "-n", "20", "http://httpbin:8000/get")
    total = stats(kit)[f"cluster.{CLUSTER};.upstream_rq_total"]
    overflow = stats(kit)[f"cluster.{CLUSTER};.upstream_rq_pending_overflow"]
    assert total + overflow == 40


def test_the_default_stats_matcher_leaves_cluster_outbound_out() -> None:
    kit = mesh(annotations={})
    names = stats(kit)
    assert names and not any(n.startswith("cluster.outbound") for n in names)
    assert "server.live" in names and "cluster_manager.active_clusters" in names
    annotate(kit, "fortio-deploy-6d5c7b8f9-k2x4q",
             {"sidecar.istio.io/statsInclusionPrefixes": "cluster.outbound"})
    assert f"cluster.{CLUSTER};.upstream_rq_total" in stats(kit)


def test_admin_filter_and_the_lines_envoy_prints() -> None:
    kit = mesh()
    result = run_in_container(kit.rt, kit.get_pod("fortio-deploy"), "istio-proxy",
                              ["pilot-agent", "request", "GET", "stats?filter=httpbin.*pending"])
    lines = result.stdout.decode().splitlines()
    assert lines == sorted(lines) and all(re.fullmatch(r"\S+: -?\d+", ln) for ln in lines)
    assert {ln.split(": ")[0].rsplit(";.", 1)[1] for ln in lines if CLUSTER in ln} >= {
        "circuit_breakers.default.remaining_pending", "circuit_breakers.default.rq_pending_open",
        "circuit_breakers.high.rq_pending_open", "upstream_rq_pending_active",
        "upstream_rq_pending_failure_eject", "upstream_rq_pending_overflow",
        "upstream_rq_pending_total"}


@pytest.mark.parametrize("argv", [["pilot-agent", "request", "GET", "config_dump"],
                                  ["pilot-agent", "proxy", "sidecar"],
                                  ["pilot-agent", "request", "GET"]])
def test_pilot_agent_says_what_it_does_not_model(argv: list[str]) -> None:
    kit = mesh()
    result = run_in_container(kit.rt, kit.get_pod("fortio-deploy"), "istio-proxy", argv)
    assert result.exit_code == 255 and result.stderr.startswith(b"Error: ")


def test_pilot_agent_is_only_in_the_proxy_image() -> None:
    kit = mesh()
    result = run_in_container(kit.rt, kit.get_pod("fortio-deploy"), "fortio",
                              ["pilot-agent", "request", "GET", "stats"])
    assert result.exit_code == 126 and b"executable file not found" in result.stderr


def test_outlier_detection_ejects_the_only_host_after_one_500() -> None:
    kit = mesh()
    sleep = kit.get_pod("sleep")
    first = request_from_pod(kit.rt, sleep, "GET", "http://httpbin:8000/status/500")
    assert first.status == 500
    second = request_from_pod(kit.rt, sleep, "GET", "http://httpbin:8000/get")
    assert (second.status, second.body, second.response_flags) == (503, b"no healthy upstream",
                                                                   "UH")
    lane = pool.lanes_of(kit.rt, sleep)[CLUSTER]
    assert lane.counters["outlier_detection.ejections_enforced_consecutive_5xx"] == 1
