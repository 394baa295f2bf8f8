"""Tracing in the mesh model and the Jaeger addon model (behind Lab 9.4, L9.4-C01..C05).

Bookinfo behind the ingress gateway, the 1.26 Jaeger addon, the demo profile's ``jaeger``
extension provider; tracing is switched on the 1.26 way, with a Telemetry (D-22).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from mesh_testkit import Kit, manifest_text

from pytest_istiolab.embedded.install.profiles import DEMO_PROVIDERS
from pytest_istiolab.embedded.mesh import ingress, request_from_pod
from pytest_istiolab.embedded.mesh.headers import Headers
from pytest_istiolab.embedded.mesh.model import Request
from pytest_istiolab.embedded.resources import ResourceType
from pytest_istiolab.embedded.workloads import productpage

TELEMETRY = {"apiVersion": "telemetry.istio.io/v1", "kind": "Telemetry",
             "metadata": {"name": "mesh-default", "namespace": "istio-system"},
             "spec": {"tracing": [{"providers": [{"name": "jaeger"}]}]}}
SAMPLING_ENV = {"PILOT_TRACE_SAMPLING": "100"}  # the demo profile's pilot.traceSampling


def _kit(sampling: str = "100") -> Kit:
    kit = Kit(mesh={"extensionProviders": DEMO_PROVIDERS})
    kit.store.register_type(ResourceType("telemetry.istio.io", ("v1", "v1alpha1"),
                                         "telemetries", "telemetry", "Telemetry", True,
                                         ("telemetry",)))
    kit.pod("istiod-7d4b9c8f6-q2w3e", "istio-system", "docker.io/istio/pilot:1.26.0",
            {"app": "istiod"}, sidecar=False, env={"PILOT_TRACE_SAMPLING": sampling})
    kit.deploy("samples/addons/jaeger.yaml", "istio-system", sidecar=False)
    kit.bookinfo()
    kit.apply(manifest_text("samples/bookinfo/networking/bookinfo-gateway.yaml"))
    kit.workload("tester", "default", "curlimages/curl:8.14.1", 80, None, sidecar=False)
    return kit


@pytest.fixture
def kit() -> Kit:
    return _kit()


def page(kit: Kit, n: int = 1, agent: str = "lab09") -> None:
    for _ in range(n):
        request = Request("GET", "/productpage", "127.0.0.1:30100",
                          Headers({"user-agent": agent, "accept": "*/*"}))
        assert ingress(kit.rt, kit.ingress_pod(), 8080, request).status == 200


def jaeger(kit: Kit, path: str) -> Any:
    response = request_from_pod(kit.rt, kit.get_pod("tester"), "GET",
                                f"http://tracing.istio-system:80/jaeger{path}")
    return response.status, json.loads(response.body)


def traces(kit: Kit, service: str = "istio-ingressgateway.istio-system") -> list[dict]:
    status, body = jaeger(kit, f"/api/traces?service={service}&limit=50")
    assert status == 200, body
    return body["data"]


def test_no_spans_without_a_telemetry_since_1_22(kit: Kit) -> None:
    """D-22: the demo profile defines the provider, nothing selects it."""
    page(kit, 3)
    assert jaeger(kit, "/api/services")[1]["data"] == []


def test_no_spans_at_zero_percent_sampling(kit: Kit) -> None:
    kit.apply({**TELEMETRY, "spec": {"tracing": [{"providers": [{"name": "jaeger"}],
                                                  "randomSamplingPercentage": 0.0}]}})
    page(kit, 5)
    assert jaeger(kit, "/api/services")[1]["data"] == []


def test_services_and_operations_after_the_telemetry(kit: Kit) -> None:
    kit.apply(TELEMETRY)
    page(kit, 6)
    body = jaeger(kit, "/api/services")[1]
    assert set(body["data"]) == {"istio-ingressgateway.istio-system", "productpage.default",
                                 "details.default", "reviews.default", "ratings.default"}
    assert body["total"] == 5 and body["errors"] is None
    ops = jaeger(kit, "/api/services/istio-ingressgateway.istio-system/operations")[1]["data"]
    assert ops == ["productpage.default.svc.cluster.local:9080/productpage"]
    ops = jaeger(kit, "/api/services/details.default/operations")[1]["data"]
    assert ops == ["details.default.svc.cluster.local:9080/*"]


def _full(kit: Kit) -> dict:
    for _ in range(10):
        page(kit, 3)
        for trace in traces(kit):
            if any(s["operationName"].startswith("ratings") for s in trace["spans"]):
                return trace
    raise AssertionError("no trace with a ratings span")


def test_a_full_trace_links_the_call_chain(kit: Kit) -> None:
    kit.apply(TELEMETRY)
    trace = _full(kit)
    spans = {s["spanID"]: s for s in trace["spans"]}
    service = {pid: p["serviceName"] for pid, p in trace["processes"].items()}

    def who(span: dict) -> tuple[str, str]:
        kind = next(t["value"] for t in span["tags"] if t["key"] == "span.kind")
        return service[span["processID"]], kind

    edges = set()
    roots = []
    for span in spans.values():
        refs = span["references"]
        if not refs:
            roots.append(who(span))
            continue
        assert refs[0]["refType"] == "CHILD_OF" and refs[0]["spanID"] in spans
        edges.add((who(spans[refs[0]["spanID"]]), who(span)))
    gw, pp = "istio-ingressgateway.istio-system", "productpage.default"
    assert roots == [(gw, "client")]
    assert edges == {((gw, "client"), (pp, "server")),
                     ((pp, "server"), (pp, "client")),
                     ((pp, "client"), ("details.default", "server")),
                     ((pp, "client"), ("reviews.default", "server")),
                     (("reviews.default", "server"), ("reviews.default", "client")),
                     (("reviews.default", "client"), ("ratings.default", "server"))}
    assert len(spans) == 8 and all(s["warnings"] is None for s in spans.values())


def test_span_tags_are_envoys_and_istios(kit: Kit) -> None:
    kit.apply(TELEMETRY)
    trace = _full(kit)
    details = next(s for s in trace["spans"]
                   if s["operationName"] == "details.default.svc.cluster.local:9080/*"
                   and {"key": "span.kind", "type": "string", "value": "server"} in s["tags"])
    tags = {t["key"]: t["value"] for t in details["tags"]}
    assert tags["component"] == "proxy" and tags["http.status_code"] == "200"
    assert tags["http.url"] == "http://details:9080/details/0"
    assert tags["response_flags"] == "-" and tags["upstream_cluster"] == "inbound|9080||"
    assert tags["istio.canonical_service"] == "details" and tags["istio.namespace"] == "default"
    assert tags["node_id"].startswith("sidecar~10.244.0.") and tags["guid:x-request-id"][14] == "9"


def test_a_workload_that_drops_the_context_breaks_the_trace(kit: Kit, monkeypatch) -> None:
    kit.apply(TELEMETRY)
    monkeypatch.setattr(productpage, "FORWARDED",
                        tuple(h for h in productpage.FORWARDED if h != "traceparent"))
    page(kit, 3)
    for trace in traces(kit):
        # productpage's server span takes the gateway's x-envoy-decorator-operation (Envoy's
        # Ingress HCM overrides its own route's "...:9080/*" with the caller's operation)
        assert {s["operationName"] for s in trace["spans"]} == {
            "productpage.default.svc.cluster.local:9080/productpage"}
        assert len(trace["spans"]) == 2
    assert traces(kit, "details.default")  # its own trace now, rooted at productpage's client


def test_trace_by_id_and_errors(kit: Kit) -> None:
    kit.apply(TELEMETRY)
    page(kit)
    trace_id = traces(kit)[0]["traceID"]
    status, body = jaeger(kit, f"/api/traces/{trace_id}")
    assert status == 200 and body["data"][0]["traceID"] == trace_id
    assert jaeger(kit, "/api/traces/00000000000000000000000000000001")[0] == 404
    status, body = jaeger(kit, "/api/traces?limit=2")
    assert status == 400 and body["errors"][0]["msg"] == "parameter 'service' is required"
    status, body = jaeger(kit, "/api/traces?service=productpage.default&minDuration=1parsec")
    assert (status, body["errors"][0]["msg"]) == (
        400, "unable to parse param 'minDuration': time: invalid duration \"1parsec\"")
    status, body = jaeger(kit, f"/api/traces?traceID={trace_id}")
    assert status == 200 and [t["traceID"] for t in body["data"]] == [trace_id]
    assert body["total"] == 0  # Jaeger sets total for services and operations only
    assert jaeger(kit, "/api/traces/not-hex")[0] == 400
    spans = body["data"][0]["spans"]
    assert all({"key": "internal.span.format", "type": "string", "value": "otlp"} in s["tags"]
               for s in spans)


def test_tag_and_duration_search(kit: Kit) -> None:
    kit.apply(TELEMETRY)
    page(kit, 2, agent="first")
    page(kit, 2, agent="second")
    tags = json.dumps({"user_agent": "second"})
    found = traces(kit, f"istio-ingressgateway.istio-system&tags={tags}")
    assert len(found) == 2
    assert traces(kit, "productpage.default&minDuration=1h") == []
    status, body = jaeger(kit, "/api/operations?service=reviews.default&spanKind=client")
    assert body["data"] == [{"name": "ratings.default.svc.cluster.local:9080/*",
                             "spanKind": "client"}] and body["total"] == 1
    future = int((kit.rt.clock.now() + 60) * 1e6)
    assert traces(kit, f"productpage.default&start={future}") == []


def test_a_zipkin_provider_propagates_b3_through_bookinfo() -> None:
    """B3 multi-header propagation (productpage's OpenTelemetry B3 propagator, reviews' copy),
    spans sent to the addon's ``zipkin`` Service (9411 on the Jaeger pod)."""
    zipkin = {"name": "zipkin", "zipkin": {"service": "zipkin.istio-system.svc.cluster.local",
                                           "port": 9411}}
    kit = Kit(mesh={"extensionProviders": [*DEMO_PROVIDERS, zipkin]})
    kit.store.register_type(ResourceType("telemetry.istio.io", ("v1", "v1alpha1"),
                                         "telemetries", "telemetry", "Telemetry", True,
                                         ("telemetry",)))
    kit.deploy("samples/addons/jaeger.yaml", "istio-system", sidecar=False)
    kit.bookinfo()
    kit.apply(manifest_text("samples/bookinfo/networking/bookinfo-gateway.yaml"))
    kit.workload("tester", "default", "curlimages/curl:8.14.1", 80, None, sidecar=False)
    kit.apply({**TELEMETRY, "spec": {"tracing": [{"providers": [{"name": "zipkin"}],
                                                  "randomSamplingPercentage": 100.0}]}})
    trace = _full(kit)
    assert len(trace["spans"]) == 8
    assert all(s["references"] or s["operationName"].endswith("/productpage")
               for s in trace["spans"])
    assert {"key": "internal.span.format", "type": "string", "value": "zipkin"} in \
        trace["spans"][0]["tags"]


def test_productpage_reinjects_b3_as_opentelemetry_does() -> None:
    incoming = Headers({"x-b3-traceid": "7599f42a01151eab", "x-b3-spanid": "9d5d287f47ecd220",
                        "x-b3-parentspanid": "0000000000000001", "x-b3-sampled": "1"})
    assert productpage.b3_reinjected(incoming).items() == [
        ("x-b3-traceid", "00000000000000007599f42a01151eab"),
        ("x-b3-spanid", "9d5d287f47ecd220"), ("x-b3-sampled", "1")]
    assert productpage.b3_reinjected(Headers()).items() == []  # no context: nothing injected
