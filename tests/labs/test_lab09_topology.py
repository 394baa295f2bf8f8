"""Lab 9.3 — Application topology (Kiali) ("查看应用拓扑信息"): L9.3-C01..C06.

The manual opens ``http://node1:31123/`` while the load loop runs and reads the Overview,
Graph, Applications, Services and Workloads pages. The suite asserts the same facts through
the Kiali API behind those pages (reached by a port-forward to the kiali pod, as ``istioctl
dashboard kiali`` does; the NodePort itself is L9.2-C01's), after its own bounded load loop
through the ingress gateway (D-33).

Timing: Kiali computes the graph and request health from Prometheus, which scrapes every 15 s
(a ``rate`` needs two scrapes), and caches Kubernetes objects, so every check polls for up to
``timeouts.scrape`` (90 s on a real cluster) and retries connection errors. The embedded
Kiali queries the embedded Prometheus, which answers from every sample up to the query time.

Browser-only parts, mapped to the API fact behind them:

* C01's namespace cards (labels, "4 Applications" with their health, the inbound-traffic
  chart): ``/api/namespaces`` and ``/api/clusters/health``;
* C02's graph and its side panel ("5 apps (7 versions), 4 services, 11 edges", %Success 100):
  ``/api/namespaces/graph`` with the page's defaults (versioned apps, service nodes); the
  Display menu's security badges are the edges' ``isMTLS`` (``securityPolicy`` appender);
* C03's edge labels: the request percentages are the edges' ``httpPercentReq``; the
  response-time labels (76 ms, 4 ms … in the screenshot) are the edges' ``responseTime``
  (the ``responseTime`` appender, 95th percentile): present, and productpage's at least
  details' (every productpage request waits for a details call; the values themselves are
  the environment's). "Try different layouts" is **not automatable**: a layout only places
  the same nodes and edges in the browser (cytoscape's dagre/cose/… run client-side), no API
  answer depends on it;
* C04–C06 (screenshots of the list pages): ``/api/clusters/apps``, ``services`` and
  ``workloads`` of the Bookinfo namespace.
"""

from __future__ import annotations

import pytest

from pytest_istiolab import traffic
from pytest_istiolab.deploy import BOOKINFO_DEPLOYMENTS
from pytest_istiolab.observability import (
    CONNECTION_ERRORS,
    Kiali,
    KialiError,
)
from pytest_istiolab.waiting import eventually

pytestmark = [pytest.mark.lab(9), pytest.mark.requires("ingress-gateway")]

LOAD_REQUESTS = 120  # mesh_load's burst
ISTIO_NS = "istio-system"
APPS = {"productpage", "details", "reviews", "ratings"}
GATEWAY = f"istio-ingressgateway latest ({ISTIO_NS})"
# C02: the graph page with service nodes (the UI's default), as (source, target) labels
SERVICE_EDGES = {
    (GATEWAY, "productpage"), ("productpage", "productpage v1"),
    ("productpage v1", "details"), ("details", "details v1"),
    ("productpage v1", "reviews"), ("reviews", "reviews v1"), ("reviews", "reviews v2"),
    ("reviews", "reviews v3"), ("reviews v2", "ratings"), ("reviews v3", "ratings"),
    ("ratings", "ratings v1")}
# the manual's prose: gateway -> productpage -> details and reviews v1/v2/v3; v2, v3 -> ratings
APP_EDGES = {
    (GATEWAY, "productpage v1"), ("productpage v1", "details v1"),
    ("productpage v1", "reviews v1"), ("productpage v1", "reviews v2"),
    ("productpage v1", "reviews v3"), ("reviews v2", "ratings v1"),
    ("reviews v3", "ratings v1")}
# C03: the reviews split, an exact two-sided binomial test of each version's share of the
# reviews requests against 1/3 at alpha 1e-4 per version, at most 3e-4 for the three (no
# VirtualService pins reviews: Envoy's default balancing over three endpoints on a real mesh,
# a seeded random choice in the embedded one). The sample is what the graph itself counts:
# n = the productpage -> reviews rate times the graph's window (a real Prometheus counts only
# increases between the scrapes in the window, so the burst before the first scrape may be
# missing and the slow loop supplies the rest), k = a version's httpPercentReq of n. The test
# waits for n >= SPLIT_SAMPLES = 82, where a version taking 2/3 of the traffic is rejected
# with power >= 0.99 (one taking none from n = 24); at n = 120 it accepts 21..60 per version.
SPLIT_SAMPLES = 82
SPLIT_ALPHA = 1e-4


@pytest.fixture(scope="module")
def kiali(addon_ports, cluster):
    client = Kiali(addon_ports.url("kiali"), timeout=cluster.timeouts.http)

    def ready():
        assert client.ready(), f"{client.base_url}/kiali/healthz is not 200"

    _poll(ready, cluster, "Kiali is ready", cluster.timeouts.ready)
    yield client
    client.close()


@pytest.fixture(scope="module")
def load(mesh_load):
    """The manual's load loop (``mesh_load``: a bounded burst, then a slow loop "in another
    window" while the module runs)."""
    assert mesh_load.burst_codes == {200: LOAD_REQUESTS}, f"the load burst got " \
        f"{mesh_load.burst_codes}"
    return mesh_load


def _poll(check, cluster, description, timeout=None):
    """Poll ``check`` for a scrape's worth of time; Kiali errors and refused connections are
    "not yet" (a pod restarting, Prometheus not reachable yet)."""
    return eventually(check, timeout=timeout or cluster.timeouts.scrape,
                      interval=max(cluster.timeouts.poll_interval, 0.05),
                      retry_on=(AssertionError, KialiError, *CONNECTION_ERRORS),
                      description=description)


def _graph_with(kiali, ns, cluster, edges, **options):
    def complete():
        graph = kiali.graph(ns, **options)
        seen = set(graph.edge_map())
        assert edges <= seen, f"edges missing from the graph: {sorted(edges - seen)}"
        return graph

    return _poll(complete, cluster, f"the Kiali graph of {ns} shows the Bookinfo edges")


# ================================================================== C01 overview
@pytest.mark.check("L9.3-C01")
def test_kiali_is_running_with_prometheus(kiali, cluster):
    """The About box: Kiali's version and state, and the Prometheus it reads (Kiali lists an
    external service once it could read its version)."""
    def running():
        status = kiali.status()
        services = {s["name"]: s.get("version") for s in status["externalServices"]}
        assert str(services.get("Prometheus", "")).startswith("3."), services
        return status, services

    status, services = _poll(running, cluster, "Kiali's status names Prometheus")
    assert status["status"]["Kiali state"] == "running"
    assert status["status"]["Kiali version"].startswith("v2.")
    assert any(name.startswith("Kubernetes") for name in services), services


@pytest.mark.check("L9.3-C01")
def test_overview_lists_the_bookinfo_and_istio_namespaces(kiali, bookinfo, cluster):
    def listed():
        names = {n["name"]: n for n in kiali.namespaces()}
        assert {bookinfo.namespace, ISTIO_NS} <= set(names), sorted(names)
        return names

    names = _poll(listed, cluster, "Kiali lists the namespaces")
    assert names[bookinfo.namespace]["labels"].get("istio-injection") == "enabled"


@pytest.mark.check("L9.3-C01")
def test_overview_shows_four_healthy_applications_with_inbound_traffic(kiali, bookinfo, load,
                                                                       cluster):
    """The namespace card: "4 Applications", all healthy, and an inbound-traffic chart."""
    def healthy():
        health = kiali.health(bookinfo.namespace, "app")
        assert set(health) == APPS, sorted(health)
        for app, h in health.items():
            for w in h["workloadStatuses"]:
                assert w["availableReplicas"] == w["desiredReplicas"] >= 1, (app, w)
                assert w["syncedProxies"] == w["desiredReplicas"], (app, w)
            inbound = h["requests"]["inbound"].get("http") or {}
            assert inbound and set(inbound) == {"200"}, (app, h["requests"])
        return health

    health = _poll(healthy, cluster, "app health of the Bookinfo namespace")
    assert sum(len(h["workloadStatuses"]) for h in health.values()) == len(BOOKINFO_DEPLOYMENTS)


@pytest.mark.check("L9.3-C01")
def test_overview_counts_the_istio_system_applications(kiali, cluster):
    """The istio-system card ("7 Applications" in the manual's older addons): the gateway,
    istiod and the addons are applications there."""
    def listed():
        apps = {a["name"] for a in kiali.listing("apps", ISTIO_NS, health=False)}
        assert {"istio-ingressgateway", "istiod", "kiali", "prometheus"} <= apps, sorted(apps)

    _poll(listed, cluster, "applications of istio-system")


# ================================================================== C02 graph
@pytest.mark.check("L9.3-C02")
def test_versioned_app_graph_has_the_manual_nodes_and_edges(kiali, bookinfo, load, cluster):
    """The graph page's default view: gateway -> productpage -> details and reviews v1/v2/v3,
    reviews v2 and v3 -> ratings; the side panel's "5 apps (7 versions), 4 services, 11
    edges"."""
    graph = _graph_with(kiali, bookinfo.namespace, cluster, SERVICE_EDGES)
    assert set(graph.edge_map()) == SERVICE_EDGES
    assert graph.summary() == {"apps": 5, "versions": 7, "services": 4, "edges": 11}
    gateway = [d for i, d in graph.nodes.items() if graph.label(i) == GATEWAY]
    assert gateway and gateway[0].get("isRoot") and gateway[0].get("isOutside"), gateway


@pytest.mark.check("L9.3-C02")
def test_every_graph_edge_carries_http_traffic_without_errors(kiali, bookinfo, load, cluster):
    """HTTP rates on every edge; %Success 100.00, %Error 0.00 (only 200 responses)."""
    graph = _graph_with(kiali, bookinfo.namespace, cluster, SERVICE_EDGES)
    for edge, t in graph.edge_map().items():
        rates = t.get("rates") or {}
        assert t["protocol"] == "http" and float(rates.get("http", 0)) > 0, (edge, t)
        assert "httpPercentErr" not in rates and set(t["responses"]) == {"200"}, (edge, t)


@pytest.mark.check("L9.3-C02")
def test_graph_edges_are_mutual_tls(kiali, bookinfo, load, cluster):
    """The graph's security badges (Display → Security): the demo profile's auto mTLS makes
    every Bookinfo edge 100 % mTLS, with the SPIFFE ids of Bookinfo's service accounts."""
    seen = {(GATEWAY, "productpage"), ("productpage", "productpage v1"), ("details", "details v1")}
    graph = _graph_with(kiali, bookinfo.namespace, cluster, seen)
    for e in graph.edges:
        edge = (graph.label(e["source"]), graph.label(e["target"]))
        assert e.get("isMTLS") == "100", (edge, e)
        target = edge[1].split()[0]
        assert e["destPrincipal"] == (f"spiffe://cluster.local/ns/{bookinfo.namespace}/sa/"
                                      f"bookinfo-{target}"), (edge, e)


@pytest.mark.check("L9.3-C02")
def test_app_edges_without_service_nodes(kiali, bookinfo, load, cluster):
    """The same graph with "Service nodes" unticked: the manual's prose, edge for edge."""
    graph = _graph_with(kiali, bookinfo.namespace, cluster, APP_EDGES,
                        inject_service_nodes=False)
    assert set(graph.edge_map()) == APP_EDGES


# ================================================================== C03 distribution
@pytest.mark.check("L9.3-C03")
def test_reviews_versions_share_the_traffic_about_equally(kiali, bookinfo, load, cluster):
    def sampled():
        graph = kiali.graph(bookinfo.namespace)
        missing = SERVICE_EDGES - set(graph.edge_map())
        assert not missing, f"edges missing from the graph: {sorted(missing)}"
        n = round(graph.rate("productpage v1", "reviews") * graph.raw["duration"])
        assert n >= SPLIT_SAMPLES, f"only {n} reviews requests in the graph's window yet"
        return graph, n

    graph, n = _poll(sampled, cluster, f"{SPLIT_SAMPLES} reviews requests in the graph",
                     cluster.timeouts.scrape * 2)
    shares = {v: graph.rate("reviews", f"reviews {v}", "httpPercentReq")
              for v in ("v1", "v2", "v3")}
    assert abs(sum(shares.values()) - 100.0) < 0.5, shares
    for version, percent in shares.items():
        traffic.assert_proportion(round(percent * n / 100.0), n, 1 / 3, alpha=SPLIT_ALPHA,
                                  description=f"reviews {version}'s share of the {n} reviews "
                                  f"requests in the Kiali graph ({shares})")


@pytest.mark.check("L9.3-C03")
def test_productpage_calls_details_and_reviews_equally(kiali, bookinfo, load, cluster):
    """Edge labels productpage -> details 49.2 %, -> reviews 50.8 % in the manual: each page
    calls each once, so 50 % each (within rate rounding)."""
    calls = {("productpage v1", "details"), ("productpage v1", "reviews")}
    graph = _graph_with(kiali, bookinfo.namespace, cluster, calls)
    for service in ("details", "reviews"):
        assert abs(graph.rate("productpage v1", service, "httpPercentReq") - 50.0) <= 5.0


@pytest.mark.check("L9.3-C03")
def test_service_edges_carry_response_times(kiali, bookinfo, load, cluster):
    """The graph's response-time labels: on each service -> workload edge (Kiali puts them
    there when service nodes are shown), productpage's no less than details'."""
    pages = {("productpage", "productpage v1"), ("details", "details v1")}
    graph = _graph_with(kiali, bookinfo.namespace, cluster, pages)
    times = {edge: graph.response_time(*edge) for edge in sorted(graph.edge_map())
             if edge[0] in APPS}
    assert all(t is not None and t > 0 for t in times.values()), times
    assert times[("productpage", "productpage v1")] >= times[("details", "details v1")], times


# ================================================================== C04-C06 list pages
@pytest.mark.check("L9.3-C04")
def test_applications_view_lists_bookinfo_with_traffic(kiali, bookinfo, load, cluster):
    def listed():
        apps = {a["name"]: a for a in kiali.listing("apps", bookinfo.namespace)}
        assert set(apps) == APPS, sorted(apps)
        for name, a in apps.items():
            assert a["istioSidecar"] and a["labels"]["app"] == name, a
            assert (a["health"]["requests"]["inbound"].get("http") or {}).get("200", 0) > 0, a
        return apps

    apps = _poll(listed, cluster, "the Applications view of Bookinfo")
    assert apps["reviews"]["labels"]["version"] == "v1,v2,v3"
    assert (apps["productpage"]["health"]["requests"]["outbound"].get("http") or {}).get("200")


@pytest.mark.check("L9.3-C05")
def test_services_view_lists_the_bookinfo_services(kiali, bookinfo, cluster):
    def listed():
        services = {s["name"]: s for s in kiali.listing("services", bookinfo.namespace)}
        assert APPS <= set(services), sorted(services)
        return services

    services = _poll(listed, cluster, "the Services view of Bookinfo")
    for name in APPS:
        s = services[name]
        assert s["selector"] == {"app": name} and s["ports"] == {"http": 9080}, s
        assert s["istioSidecar"], s


@pytest.mark.check("L9.3-C06")
def test_workloads_view_lists_the_bookinfo_deployments(kiali, bookinfo, cluster):
    def listed():
        workloads = {w["name"]: w for w in kiali.listing("workloads", bookinfo.namespace)}
        assert set(BOOKINFO_DEPLOYMENTS) <= set(workloads), sorted(workloads)
        return workloads

    workloads = _poll(listed, cluster, "the Workloads view of Bookinfo")
    for name in BOOKINFO_DEPLOYMENTS:
        w = workloads[name]
        app, version = name.rsplit("-", 1)
        assert w["gvk"]["Kind"] == "Deployment" and w["podCount"] >= 1, w
        assert (w["labels"]["app"], w["labels"]["version"]) == (app, version), w
        assert w["istioSidecar"] and w["appLabel"] and w["versionLabel"], w


@pytest.mark.check("L9-X03")
def test_an_unmodelled_graph_request_gets_kiali_error_shape(kiali, bookinfo, cluster):
    """Companion: an invalid graph type is refused with Kiali's ``{"error": ...}`` (400)."""
    response = _poll(lambda: kiali.get("/api/namespaces/graph", {
        "namespaces": bookinfo.namespace, "graphType": "nonsense"}), cluster, "Kiali answers")
    assert response.status_code == 400 and "graphType" in response.json()["error"]
