"""Lab 9.4 — Distributed tracing (Jaeger) ("分布式追踪"): L9.4-C01..C05.

The manual opens the Jaeger UI (``http://node1:31122/``), searches a service, picks a full
trace, compares it with the Bookinfo request flow and expands a span. The suite asserts the
same facts through the query API behind that UI (``/jaeger/api/...``), reached through a
port-forward to the Jaeger pod (``istioctl dashboard jaeger``'s way; the NodePort itself is
Lab 9.2's concern).

Tracing has to be switched on first (catalogue D-22): since Istio 1.22 proxies have no
tracer by default, and the demo profile only *defines* the ``jaeger`` extension provider
(OpenTelemetry to ``jaeger-collector.istio-system:4317``). The suite applies the
``mesh-default`` Telemetry in istio-system selecting it, the 1.26 way (istio.io's Jaeger
task) — a mesh-wide change, recorded and restored (``mesh_wide``: the mesh lock is held
exclusively for the module; skipped with ``--istio-read-only``). Sampling is then the
demo profile's 100 % (``pilot.traceSampling``).

Timing: a sidecar takes the Telemetry after istiod's push, and Envoy batches spans before it
exports them, so every check polls, with ``timeouts.scrape``, sending a few more requests
through the ingress gateway on each attempt (tagged with a user agent of this module, which
Envoy records in the ``user_agent`` tag and Bookinfo forwards on every hop).

The manual's screenshots (a trace of 8 spans: the gateway's, productpage 3, reviews 2,
details 1, ratings 1) are asserted as exact span counts per service for a trace that
reached ratings (reviews v2 or v3).
"""

from __future__ import annotations

import re
from collections import Counter

import httpx
import pytest

from pytest_istiolab.observability import Jaeger, JaegerError, Trace
from pytest_istiolab.waiting import eventually

pytestmark = [pytest.mark.lab(9), pytest.mark.requires("ingress-gateway")]

ISTIO_NS = "istio-system"
GATEWAY = "istio-ingressgateway.istio-system"
PROVIDER = "jaeger"
COLLECTOR = ("jaeger-collector.istio-system.svc.cluster.local", 4317)
TELEMETRY = {"apiVersion": "telemetry.istio.io/v1", "kind": "Telemetry",
             "metadata": {"name": "mesh-default", "namespace": ISTIO_NS},
             "spec": {"tracing": [{"providers": [{"name": PROVIDER}]}]}}
BATCH = 3  # requests sent on each poll attempt
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
RETRIED = (AssertionError, httpx.HTTPError, JaegerError)


def _provider(mesh_config: dict) -> dict | None:
    return next((p for p in mesh_config.get("extensionProviders") or []
                 if isinstance(p, dict) and p.get("name") == PROVIDER), None)


def _selecting_jaeger(kube) -> dict | None:
    """A namespace-wide Telemetry of the root namespace whose tracing selects ``jaeger``."""
    for tel in kube.list("telemetry.istio.io/v1", "Telemetry", ISTIO_NS):
        spec = tel.get("spec") or {}
        if spec.get("selector") or spec.get("targetRefs"):
            continue
        for entry in spec.get("tracing") or []:
            names = [p.get("name") for p in entry.get("providers") or []]
            if names[:1] == [PROVIDER] and not entry.get("disableSpanReporting"):
                return tel
    return None


@pytest.fixture(scope="module")
def tracing_on(request, istio, kube, istio_settings):
    """``kubectl apply -n istio-system`` of a Telemetry selecting the demo's ``jaeger`` (with
    ``--istio-read-only``: one that is there already, else a skip naming D-22)."""
    if _provider(istio.mesh_config()) is None:
        pytest.skip("the mesh config defines no 'jaeger' extension provider (the demo profile "
                    "does): install Istio with --istio-profile=demo")
    if istio_settings.read_only:
        found = _selecting_jaeger(kube)
        if found is None:
            pytest.skip("--istio-read-only is set and no Telemetry in istio-system selects the "
                        "'jaeger' provider: tracing is off (D-22), and applying one changes "
                        "mesh-wide state")
        return found
    request.getfixturevalue("mesh_wide").apply_policy(TELEMETRY)
    return TELEMETRY


@pytest.fixture(scope="module")
def jaeger(addon_ports, cluster):
    client = Jaeger(addon_ports.url("tracing"), timeout=cluster.timeouts.http)

    def ready():
        assert client.ready(), f"{client.base_url}/api/services does not answer 200"

    try:
        _poll(ready, cluster, "the Jaeger query API answers", cluster.timeouts.ready)
        yield client
    finally:
        client.close()


@pytest.fixture(scope="module")
def agent(lab_namespace):
    return f"istiolab-lab09-tracing-{lab_namespace}"


@pytest.fixture(scope="module")
def traffic(tracing_on, bookinfo, ingress, agent):
    """``curl http://$GATEWAY_URL/productpage`` a few times, with the module's user agent."""
    def send(n: int = BATCH) -> list[int]:
        return [ingress.get("/productpage", headers={"user-agent": agent}).status_code
                for _ in range(n)]
    return send


def _poll(check, cluster, description, timeout=None):
    return eventually(check, timeout=timeout or cluster.timeouts.scrape,
                      interval=max(cluster.timeouts.poll_interval, 0.05),
                      description=description, retry_on=RETRIED)


def _services(ns: str) -> dict[str, str]:
    return {"gateway": GATEWAY, **{app: f"{app}.{ns}" for app in
                                   ("productpage", "details", "reviews", "ratings")}}


def _ours(jaeger: Jaeger, service: str, agent: str) -> list[Trace]:
    return jaeger.traces(service, tags={"user_agent": agent}, limit=20)


@pytest.fixture(scope="module")
def full_trace(traffic, jaeger, bookinfo, cluster, agent):
    """A trace through every Bookinfo service (the manual's "preferably a full one"), or, when
    none comes within the timeout, the richest one seen (the tests then say what is missing)."""
    wanted = set(_services(bookinfo.namespace).values())
    best: list[Trace] = []

    def find() -> Trace:
        traffic()
        found = _ours(jaeger, GATEWAY, agent)
        best[:] = sorted(found, key=lambda t: len(t.services & wanted))[-1:] or best
        full = [t for t in found if wanted <= t.services]
        assert full, f"no trace of {len(found)} through all of {sorted(wanted)}"
        return full[0]

    try:
        return _poll(find, cluster, "a trace through every Bookinfo service")
    except AssertionError:
        return best[0] if best else None


def _require(trace: Trace | None) -> Trace:
    __tracebackhide__ = True
    if trace is None:
        pytest.fail("Jaeger has no trace of this module's requests at all (tracing on? spans "
                    "exported to jaeger-collector?)")
    return trace


# ================================================================== C01: search
@pytest.mark.check("L9.4-C01")
def test_tracing_is_enabled_by_a_telemetry_selecting_the_demo_provider(tracing_on, istio, kube):
    """D-22: the demo profile's provider (OpenTelemetry to the addon's collector), selected
    by a namespace-wide Telemetry in the root namespace (``mesh-default``, unless
    ``--istio-read-only`` found another)."""
    provider = _provider(istio.mesh_config())
    otel = provider.get("opentelemetry") or {}
    assert (otel.get("service"), int(otel.get("port") or 0)) == COLLECTOR
    name = tracing_on["metadata"]["name"]
    found = _selecting_jaeger(kube)
    assert found is not None and found["metadata"]["name"] == name, \
        f"no Telemetry {name} in istio-system selecting {PROVIDER!r}"


@pytest.mark.check("L9.4-C01")
def test_search_lists_the_bookinfo_services(traffic, jaeger, bookinfo, cluster):
    """The Service drop-down: the gateway and the four Bookinfo services (``<app>.<ns>``)."""
    wanted = set(_services(bookinfo.namespace).values())

    def listed():
        traffic()
        missing = wanted - set(jaeger.services())
        assert not missing, f"Jaeger lists no {sorted(missing)}"

    _poll(listed, cluster, "Jaeger lists the Bookinfo services")


@pytest.mark.check("L9.4-C01")
def test_search_by_service_and_operation(traffic, jaeger, bookinfo, cluster, agent):
    """Operation drop-down and Find Traces: the gateway's route ``…:9080/productpage``."""
    operation = f"productpage.{bookinfo.namespace}.svc.cluster.local:9080/productpage"

    def found():
        traffic()
        assert operation in jaeger.operations(GATEWAY)
        traces = jaeger.traces(GATEWAY, operation=operation, tags={"user_agent": agent},
                               limit=20)
        assert traces, f"Find Traces returned nothing for {GATEWAY} / {operation}"
        return traces

    traces = _poll(found, cluster, f"Find Traces for {GATEWAY} / {operation}")
    assert len(traces) <= 20  # Limit Results: 20
    for trace in traces:  # each found trace has a span of that service and operation
        assert any(s.service == GATEWAY and s.operation == operation for s in trace.spans)


# ================================================================== C02: a full trace
@pytest.mark.check("L9.4-C02")
def test_a_full_trace_has_the_spans_of_the_manual(full_trace, bookinfo):
    """The 8-span trace: the gateway 1, productpage 3 (inbound, to details, to reviews),
    details 1, reviews 2 (inbound, to ratings), ratings 1."""
    trace = _require(full_trace)
    names = _services(bookinfo.namespace)
    counts = Counter(s.service for s in trace.spans)
    assert counts == Counter({names["gateway"]: 1, names["productpage"]: 3,
                              names["details"]: 1, names["reviews"]: 2,
                              names["ratings"]: 1}), f"spans per service: {dict(counts)}"


# ================================================================== C03: the call chain
@pytest.mark.check("L9.4-C03")
def test_parent_child_links_follow_the_bookinfo_flow(full_trace, bookinfo):
    """ingressgateway → productpage → details / reviews → ratings, each sidecar a server span
    (inbound) whose children are its client spans (outbound)."""
    trace = _require(full_trace)
    n = _services(bookinfo.namespace)
    gw, pp, rv = (n["gateway"], "client"), (n["productpage"], "server"), \
        (n["reviews"], "server")
    assert [(r.service, r.kind) for r in trace.roots()] == [gw]
    assert trace.edges() == {
        (gw, pp), (pp, (n["productpage"], "client")),
        ((n["productpage"], "client"), (n["details"], "server")),
        ((n["productpage"], "client"), rv), (rv, (n["reviews"], "client")),
        ((n["reviews"], "client"), (n["ratings"], "server"))}


# ================================================================== C04: span details
@pytest.mark.check("L9.4-C04")
def test_span_tags_carry_envoys_request_details(traffic, jaeger, bookinfo, cluster, agent):
    """The expanded ``details…:9080/*`` span: Envoy's tags (response flags, request id,
    upstream cluster, status code, URL, peer address, node id) and Istio's."""
    ns = bookinfo.namespace

    def details_span():
        traffic()
        for trace in _ours(jaeger, f"details.{ns}", agent):
            for span in trace.spans:
                if span.service == f"details.{ns}" and span.kind == "server":
                    return span
        raise AssertionError(f"no server span of details.{ns} yet")

    span = _poll(details_span, cluster, "a details span of this module's requests")
    tags = {k: str(v) for k, v in span.tags.items()}
    assert span.operation == f"details.{ns}.svc.cluster.local:9080/*"
    expected = {"component": "proxy", "http.method": "GET", "http.protocol": "HTTP/1.1",
                "http.status_code": "200", "response_flags": "-",
                "http.url": "http://details:9080/details/0", "upstream_cluster": "inbound|9080||",
                "istio.canonical_service": "details", "istio.canonical_revision": "v1",
                "istio.namespace": ns, "istio.mesh_id": "cluster.local",
                "user_agent": agent, "request_size": "0", "downstream_cluster": "-"}
    assert {k: tags.get(k) for k in expected} == expected
    assert UUID.fullmatch(tags.get("guid:x-request-id", "")), tags.get("guid:x-request-id")
    assert re.fullmatch(rf"sidecar~[0-9a-f.:]+~details-v1-[a-z0-9-]+\.{ns}~{ns}\.svc\."
                        r"cluster\.local", tags.get("node_id", "")), tags.get("node_id")
    assert tags.get("peer.address"), "no peer.address (the downstream of the 5-tuple)"


@pytest.mark.check("L9.4-C04")
def test_client_span_names_the_outbound_cluster(traffic, jaeger, bookinfo, cluster, agent):
    """productpage's span for its call to details: ``upstream_cluster`` is the outbound
    cluster, and the request id is the one every span of the request carries."""
    ns = bookinfo.namespace

    def client_span():
        traffic()
        for trace in _ours(jaeger, f"productpage.{ns}", agent):
            ids = {str(s.tags.get("guid:x-request-id")) for s in trace.spans}
            for span in trace.spans:
                if span.kind == "client" and span.operation.startswith(f"details.{ns}."):
                    return span, ids
        raise AssertionError("no productpage client span to details yet")

    span, ids = _poll(client_span, cluster, "productpage's client span to details")
    assert span.tags.get("upstream_cluster") == f"outbound|9080||details.{ns}.svc.cluster.local"
    assert str(span.tags.get("http.status_code")) == "200"
    assert len(ids) == 1, f"one request id per request, saw {ids}"


# ================================================================== C05: Trace Graph
@pytest.mark.check("L9.4-C05")
def test_trace_graph_is_one_tree_through_the_call_chain(full_trace, bookinfo):
    """The Trace Graph view (a screenshot) draws a trace's spans as nodes (service and
    operation) and their CHILD_OF references as edges. The picture is not automatable (the
    UI lays it out in the browser); what it shows is: one tree hanging off the gateway's span,
    through a node of every service of the Bookinfo flow, with no span referring to a parent
    the trace lacks (Jaeger's "invalid parent span IDs" warning)."""
    trace = _require(full_trace)
    spans = trace.by_id()
    roots = trace.roots()
    assert [r.service for r in roots] == [GATEWAY]
    for span in trace.spans:
        seen = span
        while seen.parent_id is not None:
            seen = spans[seen.parent_id]
        assert seen is roots[0], f"span {span.operation} is not under the gateway's"
    nodes = {(s.service, s.operation) for s in trace.spans}
    missing = set(_services(bookinfo.namespace).values()) - {service for service, _ in nodes}
    assert not missing, f"the graph has no node of {sorted(missing)}: {sorted(nodes)}"
    assert not [w for w in trace.warnings() if "parent" in w], trace.warnings()
