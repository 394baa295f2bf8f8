"""Requests end to end through the model: sidecars, gateways, Envoy replies, headers, logs.

Access-log facts: Istio 1.26 default TEXT format and JSON keys (traffic/accesslog.py); L3.6-C04/C09
(upstream cluster of direct and egress-gateway routes), L3.4-C04 (REGISTRY_ONLY: 502, empty),
L3.5-C05 (x-envoy-upstream-service-time of /delay/2), L3.5-C07 (XFCC of the ingress gateway).
"""

from __future__ import annotations

import json
import re

import pytest
from mesh_testkit import (
    BOOKINFO_GATEWAY,
    EGRESS_GATEWAY,
    EGRESS_VIRTUAL_SERVICE,
    HTTPBIN_GATEWAY,
    SERVICE_ENTRY,
    Kit,
    any_host,
    edited,
    renamed,
    request,
    vs_prefixes,
)

from pytest_istiolab.embedded.mesh import ingress, request_from_pod
from pytest_istiolab.embedded.mesh.headers import Headers

TEXT_LINE = re.compile(
    r'^\[(?P<start>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)\] "(?P<method>\S+) (?P<path>\S+) '
    r'(?P<protocol>\S+)" (?P<code>\d+) (?P<flags>\S+) (?P<details>\S+) (?P<term>\S+) '
    r'"(?P<tfail>[^"]*)" (?P<rx>\d+) (?P<tx>\d+) (?P<duration>\d+) (?P<ust>\S+) "(?P<xff>[^"]*)" '
    r'"(?P<ua>[^"]*)" "(?P<rid>[^"]*)" "(?P<authority>[^"]*)" "(?P<uhost>[^"]*)" '
    r"(?P<cluster>\S+) (?P<ulocal>\S+) (?P<dlocal>\S+) (?P<dremote>\S+) (?P<sni>\S+) "
    r"(?P<route>\S+)$")


@pytest.fixture
def kit() -> Kit:
    k = Kit()
    k.bookinfo()
    k.httpbin()
    k.sleep()
    return k


def send(kit: Kit, url: str, headers: dict[str, str] | None = None, **kw):  # type: ignore[no-untyped-def]
    return request_from_pod(kit.rt, kit.get_pod("sleep"), "GET", url,
                            Headers({"user-agent": "curl/8.14.1", "accept": "*/*",
                                     **(headers or {})}), **kw)


def parsed_log(kit: Kit, pod_prefix: str, ns: str = "default") -> list[dict[str, str]]:
    lines = kit.logs(kit.get_pod(pod_prefix, ns))
    out = []
    for line in lines:
        match = TEXT_LINE.match(line)
        assert match, f"not Istio's default access-log format: {line}"
        out.append(match.groupdict())
    return out


# ---------------------------------------------------------------- sidecar to sidecar
def test_in_mesh_request_gets_envoy_headers_and_two_log_lines(kit: Kit) -> None:
    response = send(kit, "http://productpage:9080/productpage")
    assert response.status == 200
    assert response.headers.get("server") == "envoy"  # the client's outbound HCM overwrote it
    assert int(response.headers.get("x-envoy-upstream-service-time") or -1) >= 0
    client = parsed_log(kit, "sleep")[-1]
    server = [e for e in parsed_log(kit, "productpage") if e["path"] == "/productpage"][-1]
    svc_ip = kit.store.get(kit.rtype("", "services"), "default", "productpage")["spec"]["clusterIP"]
    assert client["cluster"] == "outbound|9080||productpage.default.svc.cluster.local"
    assert client["dlocal"] == f"{svc_ip}:9080" and client["route"] == "default"
    assert client["sni"] == "-" and client["ua"] == "curl/8.14.1"
    assert server["cluster"] == "inbound|9080||" and server["ulocal"].startswith("127.0.0.6:")
    assert server["sni"] == "outbound_.9080_._.productpage.default.svc.cluster.local"
    assert server["dremote"] == client["ulocal"] and server["rid"] == client["rid"]
    assert int(client["tx"]) == len(response.body) and client["details"] == "via_upstream"


def test_productpage_calls_propagate_the_request_id(kit: Kit) -> None:
    send(kit, "http://productpage:9080/productpage")
    ids = {e["rid"] for e in parsed_log(kit, "productpage")}
    assert len(ids) == 1  # productpage forwards x-request-id to details and reviews


def test_json_access_log_encoding(kit: Kit) -> None:
    kit.set_mesh({"accessLogFile": "/dev/stdout", "accessLogEncoding": "JSON"})
    send(kit, "http://details:9080/details/0")
    entry = json.loads(kit.logs(kit.get_pod("sleep"))[-1])
    assert entry["response_code"] == 200 and entry["bytes_received"] == 0
    assert isinstance(entry["duration"], int) and entry["x_forwarded_for"] is None
    assert entry["upstream_cluster"] == "outbound|9080||details.default.svc.cluster.local"
    assert entry["route_name"] == "default" and entry["response_flags"] == "-"
    assert set(entry) >= {"start_time", "method", "path", "protocol", "response_code_details",
                          "connection_termination_details", "upstream_service_time",
                          "user_agent", "request_id", "authority", "upstream_host",
                          "upstream_local_address", "downstream_local_address",
                          "downstream_remote_address", "requested_server_name",
                          "upstream_transport_failure_reason"}


def test_no_access_log_without_access_log_file(kit: Kit) -> None:
    kit.set_mesh({"accessLogFile": ""})
    assert send(kit, "http://details:9080/health").status == 200
    assert kit.logs(kit.get_pod("sleep")) == []


# -------------------------------------------------------------------- Envoy replies
def test_undefined_subset_is_503_nc_with_empty_body(kit: Kit) -> None:
    kit.apply("""
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http: [{route: [{destination: {host: reviews, subset: v2}}]}]
""")
    response = send(kit, "http://reviews:9080/reviews/0")
    assert (response.status, response.body, response.response_flags) == (503, b"", "NC")
    entry = parsed_log(kit, "sleep")[-1]
    assert (entry["code"], entry["flags"], entry["details"]) == ("503", "NC", "cluster_not_found")
    assert (entry["cluster"], entry["uhost"], entry["route"]) == ("-", "-", "-")


def test_subset_without_pods_is_503_no_healthy_upstream(kit: Kit) -> None:
    kit.apply("""
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  subsets: [{name: v9, labels: {version: v9}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http: [{route: [{destination: {host: reviews, subset: v9}}]}]
""")
    response = send(kit, "http://reviews:9080/reviews/0")
    assert (response.status, response.text) == (503, "no healthy upstream")
    entry = parsed_log(kit, "sleep")[-1]
    assert (entry["flags"], entry["cluster"]) == ("UH", "outbound|9080|v9|reviews.default.svc"
                                                        ".cluster.local")


def test_registry_only_blocks_then_service_entry_allows(kit: Kit) -> None:
    """L3.4-C02/C04/C06."""
    assert send(kit, "http://httpbin.org/headers").status == 200
    kit.set_mesh({"accessLogFile": "/dev/stdout",
                  "outboundTrafficPolicy": {"mode": "REGISTRY_ONLY"}})
    blocked = send(kit, "http://httpbin.org/headers")
    assert (blocked.status, blocked.body) == (502, b"")
    entry = parsed_log(kit, "sleep")[-1]
    assert (entry["details"], entry["route"], entry["cluster"]) == \
        ("direct_response", "block_all", "-")
    kit.apply(edited(SERVICE_ENTRY, renamed("httpbin-ext")))
    allowed = send(kit, "http://httpbin.org/ip")
    assert allowed.status == 200 and list(json.loads(allowed.body)) == ["origin"]


def test_direct_egress_logs_the_service_entry_cluster(kit: Kit) -> None:
    """L3.6-C03/C04: one origin address, cluster outbound|80||httpbin.org."""
    kit.apply(SERVICE_ENTRY)
    response = send(kit, "http://httpbin.org/ip")
    assert len(json.loads(response.body)["origin"].split(",")) == 1
    entry = parsed_log(kit, "sleep")[-1]
    assert (entry["method"], entry["path"], entry["code"]) == ("GET", "/ip", "200")
    assert entry["authority"] == "httpbin.org" and entry["cluster"] == "outbound|80||httpbin.org"
    assert entry["uhost"].endswith(":80") and entry["route"] == "default"


def test_egress_through_the_egress_gateway(kit: Kit) -> None:
    """L3.6-C08/C09: origin shows the sleep pod IP first; the sidecar logs the gateway cluster."""
    kit.apply(SERVICE_ENTRY)
    kit.apply(EGRESS_GATEWAY)
    kit.apply(EGRESS_VIRTUAL_SERVICE)
    response = send(kit, "http://httpbin.org/ip")
    sleep_ip = kit.get_pod("sleep")["status"]["podIP"]
    origin = [part.strip() for part in json.loads(response.body)["origin"].split(",")]
    assert origin[0] == sleep_ip and len(origin) == 2
    entry = parsed_log(kit, "sleep")[-1]
    egress_ip = kit.egress_pod()["status"]["podIP"]
    assert entry["cluster"] == \
        "outbound|80|httpbin|istio-egressgateway.istio-system.svc.cluster.local"
    assert entry["uhost"] == f"{egress_ip}:8080"
    gateway_entry = parsed_log(kit, "istio-egressgateway", "istio-system")[-1]
    assert gateway_entry["cluster"] == "outbound|80||httpbin.org"
    assert gateway_entry["xff"] == sleep_ip


# ------------------------------------------------------------------------ ingress
def test_ingress_delay_reports_upstream_service_time_and_moves_the_clock(kit: Kit) -> None:
    """L3.5-C05: x-envoy-upstream-service-time >= 2000 for /delay/2, without sleeping."""
    kit.apply(HTTPBIN_GATEWAY)
    before = kit.rt.clock.now()
    response = ingress(kit.rt, kit.ingress_pod(), 8080,
                       request("/delay/2", "httpbin.example.com"), ("127.0.0.1", 50000))
    assert response.status == 200 and response.headers.get("server") == "istio-envoy"
    assert 2000 <= int(response.headers.get("x-envoy-upstream-service-time") or 0) < 2100
    assert kit.rt.clock.now() >= before + 2.0


def test_ingress_request_carries_gateway_identity_to_the_app(kit: Kit) -> None:
    """L3.5-C07: XFCC URI is the ingress gateway's service account; Host echoes the authority."""
    kit.apply(edited(HTTPBIN_GATEWAY, any_host, vs_prefixes("/headers")))
    response = ingress(kit.rt, kit.ingress_pod(), 8080, request("/headers", "127.0.0.1:30193"),
                       ("127.0.0.1", 50001))
    echoed = json.loads(response.body)["headers"]
    assert echoed["Host"] == ["127.0.0.1:30193"]
    assert echoed["X-Envoy-Internal"] == ["true"] and echoed["X-Forwarded-For"] == ["127.0.0.1"]
    assert echoed["X-Forwarded-Client-Cert"][0].endswith(
        "URI=spiffe://cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account")


def test_ingress_without_matching_route_is_404_nr(kit: Kit) -> None:
    """L3.5-C06."""
    kit.apply(HTTPBIN_GATEWAY)
    response = ingress(kit.rt, kit.ingress_pod(), 8080,
                       request("/headers", "httpbin.example.com", "HEAD"))
    assert (response.status, response.body) == (404, b"")
    assert response.headers.get("server") == "istio-envoy"
    entry = parsed_log(kit, "istio-ingressgateway", "istio-system")[-1]
    assert (entry["flags"], entry["details"]) == ("NR", "route_not_found")


def test_nothing_listens_without_a_gateway(kit: Kit) -> None:
    response = ingress(kit.rt, kit.ingress_pod(), 8080, request("/productpage"))
    assert response.failure is not None and response.failure.kind == "connect"
    kit.apply(BOOKINFO_GATEWAY)
    assert ingress(kit.rt, kit.ingress_pod(), 8080, request("/productpage")).status == 200


# ------------------------------------------------------------------- time, DNS, B3
def test_client_deadline_makes_every_busy_hop_log_dc(kit: Kit) -> None:
    response = send(kit, "http://httpbin:8000/delay/3", timeout=1.0)
    assert response.failure is not None and response.failure.kind == "timeout"
    assert response.duration == pytest.approx(1.0)
    client = parsed_log(kit, "sleep")[-1]
    server = parsed_log(kit, "httpbin")[-1]
    for entry in (client, server):
        assert (entry["code"], entry["flags"], entry["details"]) == \
            ("0", "DC", "downstream_remote_disconnect")
        assert entry["ust"] == "-"


def test_unknown_name_does_not_resolve(kit: Kit) -> None:
    response = send(kit, "http://no-such-service:9080/")
    assert response.failure is not None and response.failure.kind == "resolve"


def test_client_without_sidecar_reaches_the_app_through_its_sidecar(kit: Kit) -> None:
    legacy = kit.workload("legacy", "default", "curlimages/curl:8.14.1", 80, None,
                          sidecar=False)
    response = request_from_pod(kit.rt, legacy, "GET", "http://httpbin:8000/headers")
    echoed = json.loads(response.body)["headers"]
    assert "X-Forwarded-Client-Cert" not in echoed  # plaintext: no client identity
    assert response.headers.get("server") == "istio-envoy"  # the server's sidecar answered
    assert kit.logs(legacy) == []


def test_b3_headers_only_when_tracing_is_configured(kit: Kit) -> None:
    untraced = json.loads(send(kit, "http://httpbin:8000/headers").body)["headers"]
    assert "X-B3-Traceid" not in untraced
    assert untraced["X-Request-Id"][0][14] == "4"  # no tracer: Envoy leaves the UUID alone
    kit.set_mesh({"accessLogFile": "/dev/stdout", "defaultConfig": {"tracing": {
        "sampling": 100, "zipkin": {"address": "zipkin:9411"}}}})
    traced = json.loads(send(kit, "http://httpbin:8000/headers").body)["headers"]
    assert len(traced["X-B3-Traceid"][0]) == 32 and traced["X-B3-Sampled"] == ["1"]
    assert traced["X-B3-Parentspanid"][0] != traced["X-B3-Spanid"][0]
    assert traced["X-Request-Id"][0][14] == "9"  # Envoy's "sampled" mark in the UUID


def test_legacy_tracing_samples_one_percent_by_default(kit: Kit) -> None:
    """No istiod env and no ``sampling``: PILOT_TRACE_SAMPLING's default, 1 %."""
    kit.set_mesh({"defaultConfig": {"tracing": {"zipkin": {"address": "zipkin:9411"}}}})
    sampled = [json.loads(send(kit, "http://httpbin:8000/headers").body)["headers"]
               ["X-B3-Sampled"][0] for _ in range(60)]
    assert sampled.count("1") <= 5  # binomial(60, 0.01): P(more than 5) < 1e-5


# ------------------------------------------------------- route actions (rewrite …)
def test_rewrite_redirect_direct_response_and_header_operations(kit: Kit) -> None:
    kit.apply("""
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: httpbin}
spec:
  hosts: [httpbin]
  http:
  - match: [{uri: {prefix: /old}}]
    rewrite: {uri: /anything/new}
    headers:
      request: {set: {x-set: "1"}, remove: [x-drop]}
      response: {add: {x-resp: "yes"}}
    route: [{destination: {host: httpbin}}]
  - match: [{uri: {exact: /moved}}]
    redirect: {uri: /get, authority: httpbin.default:8000}
  - match: [{uri: {exact: /fixed}}]
    directResponse: {status: 418, body: {string: "short and stout"}}
""")
    rewritten = send(kit, "http://httpbin:8000/old/path?q=1", {"x-drop": "gone"})
    echoed = json.loads(rewritten.body)
    assert echoed["url"] == "http://httpbin:8000/anything/new/path?q=1"
    assert echoed["headers"]["X-Set"] == ["1"] and "X-Drop" not in echoed["headers"]
    assert echoed["headers"]["X-Envoy-Original-Path"] == ["/old/path?q=1"]
    assert rewritten.headers.get("x-resp") == "yes"
    assert parsed_log(kit, "sleep")[-1]["path"] == "/old/path?q=1"
    moved = send(kit, "http://httpbin:8000/moved")
    assert (moved.status, moved.headers.get("location")) == (301, "http://httpbin.default:8000/get")
    fixed = send(kit, "http://httpbin:8000/fixed")
    assert (fixed.status, fixed.text) == (418, "short and stout")
    assert fixed.headers.get("content-type") == "text/plain"


def test_port_without_http_listener_is_tcp_blackhole_under_registry_only(kit: Kit) -> None:
    """No Service or ServiceEntry declares 8081: plain TCP, reset by BlackHoleCluster (curl 56)."""
    kit.set_mesh({"accessLogFile": "/dev/stdout",
                  "outboundTrafficPolicy": {"mode": "REGISTRY_ONLY"}})
    response = send(kit, "http://httpbin.org:8081/get")
    assert response.failure is not None and response.failure.kind == "reset"
    line = kit.logs(kit.get_pod("sleep"))[-1]
    assert '"- - -" 0 UH - - "-" 0 0 0 - "-" "-" "-" "-" "-" BlackHoleCluster - ' in line
    assert line.endswith(" - -")


def test_httpbin_org_delay_takes_its_time_and_a_route_timeout_fires(kit: Kit) -> None:
    """httpbin.org ``/delay/N`` answers after N s (at most 10), so a VirtualService timeout on
    the ServiceEntry host fires as on a real mesh (issue 11: it used to be a 404)."""
    kit.apply(SERVICE_ENTRY)
    slow = send(kit, "http://httpbin.org/delay/2")
    assert slow.status == 200 and slow.duration >= 2.0
    assert json.loads(slow.body)["url"] == "http://httpbin.org/delay/2"
    assert send(kit, "http://httpbin.org/delay/60").duration < 12.0  # httpbin caps N at 10
    kit.apply("""\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: httpbin-org-timeout}
spec:
  hosts: [httpbin.org]
  http:
  - timeout: 3s
    route: [{destination: {host: httpbin.org}}]
""")
    cut = send(kit, "http://httpbin.org/delay/5")
    assert (cut.status, cut.text) == (504, "upstream request timeout")
    assert send(kit, "http://httpbin.org/delay/1").status == 200
