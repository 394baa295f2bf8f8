"""Lab 9.2 — Metrics and visualisation ("指标和可视化"): the Prometheus part, L9.2-C01..C06.

The addons (``kubectl apply -f samples/addons``, the ``addons`` fixture) with the manual's
NodePorts (31120–31123, recorded and restored: ``mesh_wide`` holds the mesh lock exclusively
for the module, since Lab 1 asserts the addon Services are ClusterIP; skipped with
``--istio-read-only``, where the API checks reach Prometheus through a port-forward), a
bounded load loop through the ingress gateway, then what the manual looks at in the
Prometheus UI, asserted through the HTTP API behind it.

Timing: a real Prometheus scrapes every 15 s and a ``rate`` needs two scrapes in its window,
so every metric check polls for up to ``timeouts.scrape`` (90 s on a real cluster). The
embedded Prometheus answers from every sample up to the query time (a request counts at
once; its ``rate`` is the exact increase over the window) — see
``embedded/workloads/prometheus.py``.

Deviations (catalogue appendix D):

* D-33: the load loop goes to ``http://$GATEWAY_URL/productpage`` for a bounded count, not
  ``while true`` to ``node3:30193``;
* D-21: the 1.26 addon has the ``kubernetes-pods`` scrape job (not ``istio-mesh``/
  ``envoy-stats``), and its default Envoy stats matcher does not keep
  ``envoy_cluster_default_total_match_count``: C05 asserts an ``envoy_cluster_*`` series of
  the xds-grpc cluster for every Bookinfo pod instead;
* C04's screenshot is a Graph tab: the suite asserts the series and their labels, and
  ``sum(rate(...))`` > 0 during the load.
"""

from __future__ import annotations

import httpx
import pytest

from pytest_istiolab.deploy import BOOKINFO_DEPLOYMENTS
from pytest_istiolab.observability import (
    MANUAL_NODE_PORTS,
    Kiali,
    KialiError,
    Prometheus,
    PrometheusError,
)
from pytest_istiolab.waiting import eventually

pytestmark = [pytest.mark.lab(9), pytest.mark.requires("ingress-gateway")]
LOAD_REQUESTS = 120
ISTIO_NS = "istio-system"
# (source app, destination service) of every Bookinfo edge the load drives
EDGES = [("istio-ingressgateway", "productpage"), ("productpage", "details"),
         ("productpage", "reviews"), ("reviews", "ratings")]
ISTIO_LABELS = {  # E.2: the 25 labels of Istio's HTTP metrics
    "reporter", "source_workload", "source_canonical_service", "source_canonical_revision",
    "source_workload_namespace", "source_principal", "source_app", "source_version",
    "source_cluster", "destination_workload", "destination_workload_namespace",
    "destination_principal", "destination_app", "destination_version", "destination_service",
    "destination_canonical_service", "destination_canonical_revision",
    "destination_service_name", "destination_service_namespace", "destination_cluster",
    "request_protocol", "response_code", "grpc_response_status", "response_flags",
    "connection_security_policy"}


@pytest.fixture(scope="module")
def prom(addon_ports, cluster):
    client = Prometheus(addon_ports.url("prometheus"), timeout=cluster.timeouts.http)

    def ready():
        assert client.ready(), f"{client.base_url}/-/ready is not 200"

    _poll(ready, cluster, "Prometheus is ready", cluster.timeouts.ready)
    yield client
    client.close()


def _poll(check, cluster, description, timeout=None):
    return eventually(check, timeout=timeout or cluster.timeouts.scrape,
                      interval=max(cluster.timeouts.poll_interval, 0.05),
                      description=description)


# ================================================================== exposure
@pytest.mark.check("L9.2-C01")
@pytest.mark.parametrize("service", list(MANUAL_NODE_PORTS))
def test_addon_service_is_node_port_on_the_manual_port(addon_node_ports, kube, service):
    svc = kube.get("v1", "Service", service, ISTIO_NS)
    port = svc["spec"]["ports"][0]
    assert (svc["spec"]["type"], port["nodePort"]) == ("NodePort", MANUAL_NODE_PORTS[service][0])


@pytest.mark.check("L9.2-C01")
def test_prometheus_answers_on_its_node_port(addon_node_ports, prom, addon_ports, cluster):
    """``http://node1:31120/`` serves this cluster's Prometheus (Grafana, Jaeger, Kiali: their
    slices). The same start time as through the port-forward proves it is the same server."""
    url = _poll(lambda: addon_ports.node_url("prometheus") or pytest.fail("no answer"), cluster,
                "the Prometheus NodePort accepts connections", cluster.timeouts.eventually)
    node = Prometheus(url, timeout=cluster.timeouts.http)
    try:
        try:
            same = node.runtimeinfo()["startTime"] == prom.runtimeinfo()["startTime"]
        except (PrometheusError, httpx.HTTPError, KeyError):
            same = False
        if not same:
            pytest.skip(f"{url} is not this cluster's Prometheus: another process on this host "
                        "holds the nodePort (parallel embedded clusters share 127.0.0.1)")
        assert node.get("/").status_code == 200
    finally:
        node.close()


@pytest.mark.check("L9.2-C01")
def test_kiali_answers_on_its_node_port(addon_node_ports, addon_ports, bookinfo, cluster):
    """``http://node1:31123/`` redirects to ``/kiali`` and serves this cluster's Kiali: the
    namespaces it lists hold this run's Bookinfo namespace."""
    url = _poll(lambda: addon_ports.node_url("kiali") or pytest.fail("no answer"), cluster,
                "the Kiali NodePort accepts connections", cluster.timeouts.eventually)
    node = Kiali(url, timeout=cluster.timeouts.http)
    try:
        try:
            same = bookinfo.namespace in {n["name"] for n in node.namespaces()}
        except (KialiError, httpx.HTTPError, KeyError, TypeError):
            same = False
        if not same:
            pytest.skip(f"{url} is not this cluster's Kiali: another process on this host "
                        "holds the nodePort (parallel embedded clusters share 127.0.0.1)")
        root = node.client.get("/")
        assert root.status_code == 302 and root.headers["location"].startswith("/kiali"), root
        assert node.get("/").status_code == 200
    finally:
        node.close()


@pytest.mark.check("L9.2-C02")
def test_ingress_gateway_has_the_http2_node_port(bookinfo, kube):
    svc = kube.get("v1", "Service", "istio-ingressgateway", ISTIO_NS)
    ports = {p["name"]: p for p in svc["spec"]["ports"]}
    assert svc["spec"]["type"] in ("LoadBalancer", "NodePort")
    assert ports["http2"]["port"] == 80 and ports["http2"].get("nodePort")


@pytest.mark.check("L9.2-C03")
def test_load_loop_gets_the_page(mesh_load):
    assert mesh_load.burst_codes == {200: LOAD_REQUESTS}


# ================================================================== Prometheus
def _edge_series(prom, ns, source_app, service, reporter):
    return prom.query(f'istio_requests_total{{reporter="{reporter}",source_app="{source_app}",'
                      f'destination_service="{service}.{ns}.svc.cluster.local"}}')


@pytest.mark.check("L9.2-C04")
@pytest.mark.parametrize("reporter", ["source", "destination"])
@pytest.mark.parametrize("source_app,service", EDGES)
def test_requests_total_for_every_bookinfo_edge(mesh_load, prom, bookinfo, cluster, reporter,
                                                source_app, service):
    ns = bookinfo.namespace

    def found():
        series = _edge_series(prom, ns, source_app, service, reporter)
        assert series, f"no istio_requests_total {reporter} series {source_app} -> {service}"
        return series

    series = _poll(found, cluster, f"istio_requests_total {source_app} -> {service}")
    for s in series:
        metric = s["metric"]
        assert ISTIO_LABELS <= set(metric), sorted(ISTIO_LABELS - set(metric))
        assert metric["__name__"] == "istio_requests_total"
        assert metric["response_code"] == "200"
        assert metric["destination_service_name"] == service
        assert metric["destination_service_namespace"] == ns
        assert metric["destination_app"] == service
        assert metric["request_protocol"] == "http"
        assert metric["response_flags"] == "-"
        expected_policy = "mutual_tls" if reporter == "destination" else "unknown"
        assert metric["connection_security_policy"] == expected_policy
        assert metric["job"] == "kubernetes-pods"
    versions = {s["metric"]["destination_version"] for s in series}
    if service == "reviews":
        assert versions == {"v1", "v2", "v3"}
    elif service == "ratings":
        assert {s["metric"]["source_version"] for s in series} == {"v2", "v3"}
    else:
        assert versions == {"v1"}


@pytest.mark.check("L9.2-C04")
def test_destination_reporter_names_the_peers(mesh_load, prom, bookinfo, cluster):
    ns = bookinfo.namespace

    def found():
        series = _edge_series(prom, ns, "productpage", "details", "destination")
        assert series
        return series[0]["metric"]

    metric = _poll(found, cluster, "productpage -> details at the destination")
    assert metric["source_workload"] == "productpage-v1"
    assert metric["destination_workload"] == "details-v1"
    assert metric["source_principal"] == f"spiffe://cluster.local/ns/{ns}/sa/bookinfo-productpage"
    assert metric["destination_principal"] == f"spiffe://cluster.local/ns/{ns}/sa/bookinfo-details"
    assert metric["destination_canonical_service"] == "details"
    assert metric["destination_canonical_revision"] == "v1"


@pytest.mark.check("L9.2-C04")
def test_request_rate_is_positive_under_load(mesh_load, prom, bookinfo, cluster):
    ns = bookinfo.namespace
    query = (f'sum(rate(istio_requests_total{{destination_service=~"productpage.{ns}.*", '
             f'response_code="200"}}[5m]))')

    def positive():
        value = prom.value(query)
        assert value is not None and value > 0, f"{query} = {value}"
        return value

    _poll(positive, cluster, "the productpage request rate is positive")


@pytest.mark.check("L9-X02")
def test_request_count_matches_the_load(mesh_load, prom, bookinfo, cluster):
    """Every load request is counted once at the gateway (reporter=source) — a companion
    to the rate: the counter counts requests, not a sample of them."""
    query = (f'sum(istio_requests_total{{reporter="source",source_app="istio-ingressgateway",'
             f'destination_service_name="productpage",destination_service_namespace='
             f'"{bookinfo.namespace}"}})')

    def counted():
        value = prom.value(query)
        assert value is not None and value >= LOAD_REQUESTS, f"{query} = {value}"
        return value

    _poll(counted, cluster, "the gateway counted the load")


@pytest.mark.check("L9.2-C04")
def test_duration_histogram_has_the_envoy_buckets(mesh_load, prom, bookinfo, cluster):
    query = (f'istio_request_duration_milliseconds_bucket{{reporter="destination",'
             f'destination_service_name="details",destination_service_namespace='
             f'"{bookinfo.namespace}"}}')
    series = _poll(lambda: prom.query(query) or pytest.fail("no buckets yet"), cluster,
                   "duration buckets of details")
    bounds = {s["metric"]["le"] for s in series}
    assert {"0.5", "1", "5", "10", "25", "50", "100", "250", "500", "1000", "2500", "5000",
            "10000", "30000", "60000", "300000", "600000", "1800000", "3600000",
            "+Inf"} == bounds


@pytest.mark.check("L9.2-C05")
@pytest.mark.parametrize("deployment", BOOKINFO_DEPLOYMENTS)
def test_envoy_metric_for_each_bookinfo_pod(mesh_load, prom, bookinfo, cluster, deployment):
    app, version = deployment.rsplit("-", 1)
    query = (f'envoy_cluster_upstream_cx_active{{cluster_name="xds-grpc",'
             f'namespace="{bookinfo.namespace}",app="{app}",version="{version}"}}')

    def found():
        series = prom.query(query)
        assert len(series) == 1, f"{query}: {series}"
        return series[0]

    sample = _poll(found, cluster, f"Envoy stats of {deployment}")
    assert float(sample["value"][1]) >= 1


@pytest.mark.check("L9.2-C06")
def test_build_and_runtime_info(prom):
    assert prom.buildinfo()["version"].startswith("3.")
    assert prom.runtimeinfo()["storageRetention"]


@pytest.mark.check("L9.2-C06")
def test_configuration_has_the_kubernetes_pods_job(prom):
    assert "job_name: kubernetes-pods" in prom.config()


@pytest.mark.check("L9.2-C06")
def test_targets_up_for_the_bookinfo_sidecars(mesh_load, prom, bookinfo, cluster):
    def up():
        pods = {t["labels"].get("pod"): t["health"] for t in prom.targets()["activeTargets"]
                if t["scrapePool"] == "kubernetes-pods"
                and t["labels"].get("namespace") == bookinfo.namespace}
        assert len(pods) == len(BOOKINFO_DEPLOYMENTS) and set(pods.values()) == {"up"}, pods

    _poll(up, cluster, "kubernetes-pods targets up for Bookinfo")


@pytest.mark.check("L9.2-C06")
def test_istiod_metrics_exist(prom, cluster):
    def pushes():
        series = prom.query("pilot_xds_pushes")
        assert {s["metric"]["type"] for s in series} >= {"cds", "eds", "lds", "rds"}

    _poll(pushes, cluster, "istiod's pilot_xds_pushes")


@pytest.mark.check("L9-X01")
def test_an_unparsable_query_is_bad_data(prom):
    """Companion: Prometheus's error envelope for a parse error (``bad_data``, 400)."""
    response = prom.get("/api/v1/query", {"query": "istio_requests_total{"})
    body = response.json()
    assert (response.status_code, body["status"], body["errorType"]) == (400, "error",
                                                                         "bad_data")
    assert body["error"].startswith('invalid parameter "query":')
