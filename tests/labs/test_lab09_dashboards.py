"""Lab 9.2 — Metrics and visualisation ("指标和可视化"): the Grafana part, L9.2-C07..C11.

The manual opens Grafana (``http://node1:31121/``) and looks at the Istio dashboards in a
browser. The suite reads what the browser reads: Grafana's search and dashboard API, and each
panel's PromQL, with the template variables substituted the way Grafana's frontend does
(``pytest_istiolab.observability.Board``), sent to Prometheus through Grafana's datasource
proxy (``/api/datasources/proxy/uid/<uid>/api/v1/query_range``) while the load loop of
``test_lab09_metrics`` (the shared ``mesh_load`` fixture: a burst, then a slow loop for the
rest of the module) keeps traffic going. A check passes when the panel's queries return the
data the screenshot shows, not merely when the dashboard exists.

Panel values: a timeseries or stat panel is asked for its last 15 s (``query_range`` with a
15 s step: two points) and its last point is read, as a stat panel shows its last value; a
table target marked ``instant`` is an instant query. "Now" is Prometheus's own clock (its
``time()``), so a clock skew between the test host and the cluster does not matter. Timing:
every panel check polls for up to ``timeouts.scrape`` (a real Prometheus scrapes every 15 s,
and the Mesh dashboard's ``$__rate_interval`` is 20 s), each attempt sending one more load
request first; connection errors are retried.

Browser-only parts, mapped to the API facts behind them (catalogue appendix D):

* the screenshots' layout, colours and units: not automatable (rendering), not asserted;
* C08's "Global Request Volume ≈ 92.7 ops/s" and "Virtual Services 1, Destination Rules 4,
  Gateways 1, …": the 1.26 Mesh dashboard has no config-count panels any more (its panels
  are Traffic Volume, Success Rate, 4xxs, 5xxs, HTTP/gRPC and TCP Workloads, Istio Component
  Versions) — not automatable against 1.26, reported here instead of faked; the volume
  depends on the load, so the suite asserts it is positive;
* C10 is a screenshot only: its API fact is the Workload dashboard's panels for each Bookinfo
  workload picked from the ``$workload`` list;
* C11's vCPU and memory panels read cAdvisor's ``container_*`` metrics (the addon's
  ``kubernetes-nodes-cadvisor`` job, which the embedded cluster models): checked when that
  job has a target up, else skipped saying so (a cluster whose Prometheus does not scrape
  the kubelets); its "control plane view" is the Istio Control Plane Dashboard, whose
  version and connection panels are checked.
"""

from __future__ import annotations

import math

import httpx
import pytest

from pytest_istiolab.deploy import BOOKINFO_DEPLOYMENTS, find_istio
from pytest_istiolab.observability import Board, Grafana
from pytest_istiolab.waiting import eventually

pytestmark = [pytest.mark.lab(9), pytest.mark.requires("ingress-gateway")]

MESH = "Istio Mesh Dashboard"
CONTROL_PLANE = "Istio Control Plane Dashboard"
# the folder ``istio`` of the manual's screenshot (1.26 adds the Ztunnel dashboard)
SCREENSHOT_TITLES = {CONTROL_PLANE, MESH, "Istio Performance Dashboard",
                     "Istio Service Dashboard", "Istio Wasm Extension Dashboard",
                     "Istio Workload Dashboard"}
FIXED_UIDS = {MESH: "1a9a8ea49444aae205c7737573e894f9",
              CONTROL_PLANE: "1813f692a8e4ac77155348d4c7d2fba8",
              "Istio Ztunnel Dashboard": "12c58766acc81a1c835dd5059eaf2741"}
RETRIED = (AssertionError, httpx.TransportError)


def _poll(check, cluster, description, timeout=None):
    """Every attempt sends several queries: a quarter second apart at least, so the load
    loop's requests are not starved of the cluster's CPU by the polling."""
    return eventually(check, timeout=timeout or cluster.timeouts.scrape,
                      interval=max(cluster.timeouts.poll_interval, 0.25),
                      description=description, retry_on=RETRIED)


@pytest.fixture(scope="module")
def grafana(addon_ports, cluster):
    client = Grafana(addon_ports.url("grafana"), timeout=cluster.timeouts.http)

    def healthy():
        assert client.health()["database"] == "ok"

    _poll(healthy, cluster, "Grafana's /api/health says database ok", cluster.timeouts.ready)
    yield client
    client.close()


@pytest.fixture(scope="module")
def datasource(grafana):
    return grafana.default_datasource("prometheus")


@pytest.fixture(scope="module")
def dashboards(grafana, cluster):
    """Title -> search hit of every dashboard in folder ``istio`` (provisioning may lag)."""
    def listed():
        hits = {h["title"]: h for h in grafana.search(query="Istio", type="dash-db")}
        assert SCREENSHOT_TITLES <= set(hits), sorted(SCREENSHOT_TITLES - set(hits))
        return hits

    return _poll(listed, cluster, "the Istio dashboards are provisioned",
                 cluster.timeouts.ready)


def _board(grafana, datasource, dashboards, title):
    return grafana.board(dashboards[title]["uid"], datasource)


def _panel(grafana, datasource, board: Board, title):
    """{refId or legend: [(labels, last value)]} of every query of the panel, now."""
    out = {}
    now = float(grafana.query(datasource["uid"], "time()")["result"][0])  # Prometheus's clock
    for target, expr in board.targets(title):
        key = target.get("refId") or target.get("legendFormat") or expr
        if target.get("instant"):
            rows = grafana.query(datasource["uid"], expr, now)["result"]
            out[key] = [(r["metric"], float(r["value"][1])) for r in rows]
        else:
            rows = grafana.query_range(datasource["uid"], expr, now - 15, now, 15)["result"]
            out[key] = [(r["metric"], float(r["values"][-1][1])) for r in rows if r["values"]]
    return out


def _only(values, what):
    assert len(values) == 1, f"{what}: expected one series, got {values}"
    return values[0][1]


def _watch(grafana, datasource, board, title, check, cluster, load):
    """Poll the panel until ``check`` passes; each attempt first sends one more request of the
    load loop, so a panel whose window is short (``irate``: the last two scrapes) sees traffic
    however slowly the loop's thread gets the CPU."""
    def once():
        load.send()
        return check(_panel(grafana, datasource, board, title))

    return _poll(once, cluster, f"{board.title} / {title}")


# ================================================================== C07 the list
@pytest.mark.check("L9.2-C07")
def test_grafana_is_healthy(grafana):
    """"Open Grafana": ``/api/health`` (the addon's readiness probe) says the database is ok."""
    health = grafana.health()
    assert health["database"] == "ok"
    assert health["version"].startswith("11.")


@pytest.mark.check("L9.2-C07")
def test_search_lists_the_istio_dashboards_in_the_istio_folder(dashboards):
    for title in SCREENSHOT_TITLES:
        hit = dashboards[title]
        assert (hit["type"], hit["folderTitle"]) == ("dash-db", "istio"), hit
        assert hit["url"].startswith(f"/d/{hit['uid']}/")


@pytest.mark.check("L9.2-C07")
def test_the_istio_folder_is_found_by_type(grafana, dashboards):
    folders = {f["title"]: f for f in grafana.search(type="dash-folder", query="istio")}
    assert "istio" in folders, sorted(folders)  # a shared Grafana may have other folders
    inside = grafana.search(folderUIDs=folders["istio"]["uid"], type="dash-db")
    assert SCREENSHOT_TITLES <= {h["title"] for h in inside}


@pytest.mark.check("L9.2-C07")
@pytest.mark.parametrize("title", sorted(FIXED_UIDS))
def test_dashboards_with_fixed_uids_are_served_by_uid(grafana, dashboards, title):
    uid = FIXED_UIDS[title]
    assert dashboards[title]["uid"] == uid
    found = grafana.dashboard(uid)
    assert found["dashboard"]["title"] == title
    assert (found["meta"]["folderTitle"], found["meta"]["provisioned"]) == ("istio", True)


# ================================================================== C08 Mesh
@pytest.fixture(scope="module")
def mesh(grafana, datasource, dashboards, mesh_load):
    return _board(grafana, datasource, dashboards, MESH)


@pytest.mark.check("L9.2-C08")
def test_mesh_traffic_volume_is_positive(mesh_load, grafana, datasource, mesh, cluster):
    def positive(values):
        volume = _only(values["A"] if "A" in values else next(iter(values.values())),
                       "Traffic Volume")
        assert volume > 0
    _watch(grafana, datasource, mesh, "Traffic Volume", positive, cluster, mesh_load)


@pytest.mark.check("L9.2-C08")
@pytest.mark.parametrize("title", ["Success Rate", "4xxs", "5xxs"])
def test_mesh_stat_panels_have_a_value(mesh_load, grafana, datasource, mesh, cluster, title):
    """Mesh-wide numbers include every lab's traffic in the window, so the 100 % success of
    the screenshot is asserted per Bookinfo workload (the table below); here: a number."""
    def number(values):
        value = _only(next(iter(values.values())), title)
        assert not math.isnan(value) and value >= 0
        if title == "Success Rate":
            assert 0 < value <= 1
    _watch(grafana, datasource, mesh, title, number, cluster, mesh_load)


@pytest.mark.check("L9.2-C08")
def test_mesh_workloads_table_lists_bookinfo_at_full_success(mesh_load, grafana, datasource, mesh,
                                                             bookinfo,
                                                             cluster):
    """The HTTP/gRPC Workloads table: a row per Bookinfo workload (``<workload>.<ns>``) with
    requests, P50/P90/P99 and a success rate of 100 % (the screenshot's 100.00 %)."""
    ns = bookinfo.namespace
    wanted = {f"{d}.{ns}" for d in BOOKINFO_DEPLOYMENTS}

    def rows(values):
        by_target = {ref: {m.get("destination_workload_var"): v for m, v in series
                           if m.get("destination_workload_namespace") == ns}
                     for ref, series in values.items()}
        for ref in ("requests", "p50", "p90", "p99", "success"):
            assert wanted <= set(by_target[ref]), (ref, sorted(by_target[ref]))
        assert all(by_target["requests"][w] > 0 for w in wanted), by_target["requests"]
        assert {w: by_target["success"][w] for w in wanted} == dict.fromkeys(wanted, 1.0)
        assert all(0 < by_target["p50"][w] <= by_target["p99"][w] for w in wanted)
    _watch(grafana, datasource, mesh, "HTTP/gRPC Workloads", rows, cluster, mesh_load)


@pytest.mark.check("L9.2-C08")
def _istiod_minor(cluster) -> str:  # type: ignore[no-untyped-def]
    """``1.26.`` for the manual's mesh: the minor of the istiod the cluster runs (its image
    tag), so the version panels are checked against the installed mesh (1.27 in the nightly)."""
    version = find_istio(cluster.kube).version or "unknown"
    return version.rsplit(".", 1)[0] + "."


def test_mesh_component_versions_show_pilot_1_26(mesh_load, grafana, datasource, mesh, cluster):
    minor = _istiod_minor(cluster)

    def pilot(values):
        series = next(iter(values.values()))
        tags = {m.get("tag") for m, _ in series if m.get("component") == "pilot"}
        assert tags and all(str(t).startswith(minor) for t in tags), series
    _watch(grafana, datasource, mesh, "Istio Component Versions", pilot, cluster, mesh_load)


# ================================================================== C09 Service
@pytest.fixture(scope="module")
def service_board(grafana, datasource, dashboards, mesh_load, bookinfo, cluster):
    """The Service dashboard with productpage picked from its ``$service`` list, the manual's
    choice (reporter ``destination``, the dashboard's default; sources: All)."""
    board = _board(grafana, datasource, dashboards, "Istio Service Dashboard")
    service = f"productpage.{bookinfo.namespace}.svc.cluster.local"

    def listed():
        options = grafana.resolve(board, datasource["uid"], "service")
        assert service in options, options

    _poll(listed, cluster, f"{service} in the Service dashboard's service list")
    board.select("service", service)
    for name in ("qrep", "srccluster", "srcns", "srcwl", "dstcluster", "dstns", "dstwl"):
        grafana.resolve(board, datasource["uid"], name)
    return board


@pytest.mark.check("L9.2-C09")
@pytest.mark.parametrize("title", ["Client Request Volume", "Server Request Volume"])
def test_service_request_volume_is_positive(mesh_load, grafana, datasource, service_board, cluster,
                                            title):
    def positive(values):
        assert _only(values["A"], title) > 0
    _watch(grafana, datasource, service_board, title, positive, cluster, mesh_load)


@pytest.mark.check("L9.2-C09")
@pytest.mark.parametrize("title", ["Client Success Rate (non-5xx responses)",
                                   "Server Success Rate (non-5xx responses)"])
def test_service_success_rate_is_100_percent(mesh_load, grafana, datasource, service_board, cluster,
                                             title):
    def full(values):
        assert _only(values["A"], title) == 1.0
    _watch(grafana, datasource, service_board, title, full, cluster, mesh_load)


@pytest.mark.check("L9.2-C09")
@pytest.mark.parametrize("title", ["Client Request Duration", "Server Request Duration"])
def test_service_request_duration_quantiles(mesh_load, grafana, datasource, service_board, cluster,
                                            title):
    """P50 <= P90 <= P99, in seconds (the panel divides the milliseconds histogram by 1000)."""
    def ordered(values):
        p50, p90, p99 = (_only(values[ref], f"{title} {ref}") for ref in "ABC")
        assert 0 < p50 <= p90 <= p99 < 60, (p50, p90, p99)
    _watch(grafana, datasource, service_board, title, ordered, cluster, mesh_load)


@pytest.mark.check("L9.2-C09")
def test_service_incoming_requests_come_from_the_gateway_over_mtls(mesh_load, grafana, datasource,
                                                                   service_board, cluster):
    """The screenshot's legend ``istio-ingressgateway.istio-system : 200 (🔐mTLS)``: target A
    (mutual TLS) has that series and target B (plain text) has none."""
    title = "Incoming Requests By Source And Response Code"

    def from_gateway(values):
        legends = {(m.get("source_workload"), m.get("source_workload_namespace"),
                    m.get("response_code")) for m, v in values["A"] if v > 0}
        assert ("istio-ingressgateway", "istio-system", "200") in legends, values["A"]
        assert values.get("B", []) == [], values["B"]
    _watch(grafana, datasource, service_board, title, from_gateway, cluster, mesh_load)


# ================================================================== C10 Workload
@pytest.fixture(scope="module")
def workload_board(grafana, datasource, dashboards, mesh_load, bookinfo, cluster):
    board = _board(grafana, datasource, dashboards, "Istio Workload Dashboard")

    def listed():
        options = grafana.resolve(board, datasource["uid"], "namespace")
        assert bookinfo.namespace in options, options

    _poll(listed, cluster, f"{bookinfo.namespace} in the Workload dashboard's namespace list")
    board.select("namespace", bookinfo.namespace)
    return board


def _pick_workload(grafana, datasource, board, workload, cluster):
    def listed():
        options = grafana.resolve(board, datasource["uid"], "workload")
        assert workload in options, options

    _poll(listed, cluster, f"{workload} in the Workload dashboard's workload list")
    board.select("workload", workload)
    for name in ("qrep", "srcns", "srcwl", "dstsvc"):
        grafana.resolve(board, datasource["uid"], name)


@pytest.mark.check("L9.2-C10")
@pytest.mark.parametrize("workload", BOOKINFO_DEPLOYMENTS)
def test_workload_incoming_volume_and_success(mesh_load, grafana, datasource, workload_board,
                                              cluster,
                                              workload):
    """Each Bookinfo workload picked from the list: incoming volume > 0 at 100 % success."""
    _pick_workload(grafana, datasource, workload_board, workload, cluster)

    def serving(values):
        assert _only(values["A"], "Incoming Request Volume") > 0
    _watch(grafana, datasource, workload_board, "Incoming Request Volume", serving, cluster,
           mesh_load)

    def full(values):
        assert _only(values["A"], "Incoming Success Rate") == 1.0
    _watch(grafana, datasource, workload_board, "Incoming Success Rate (non-5xx responses)",
           full, cluster, mesh_load)


@pytest.mark.check("L9.2-C10")
def test_workload_productpage_calls_details_and_reviews(mesh_load, grafana, datasource,
                                                        workload_board, bookinfo, cluster):
    """productpage-v1's outbound services: details and reviews, 200, at 100 % success. The
    success panel's mTLS target (A) filters ``connection_security_policy="mutual_tls"``, which
    the source reporter never sets (it reports ``unknown``), so on 1.26 its rows are under the
    plain-text target (B); the requests panel tells mTLS by ``destination_principal``."""
    _pick_workload(grafana, datasource, workload_board, "productpage-v1", cluster)
    ns = bookinfo.namespace
    wanted = {f"details.{ns}.svc.cluster.local", f"reviews.{ns}.svc.cluster.local"}

    def calls(values):
        seen = {(m.get("destination_service"), m.get("response_code"))
                for m, v in values["A"] if v > 0}
        assert {(s, "200") for s in wanted} <= seen, values["A"]
    _watch(grafana, datasource, workload_board,
           "Outgoing Requests By Destination And Response Code", calls, cluster, mesh_load)

    def full(values):
        rates = {m.get("destination_service"): v for series in values.values()
                 for m, v in series}
        assert {s: rates.get(s) for s in wanted} == dict.fromkeys(wanted, 1.0), values
    _watch(grafana, datasource, workload_board,
           "Outgoing Success Rate (non-5xx responses) By Destination", full, cluster,
           mesh_load)


# ================================================================== C11 Performance
@pytest.fixture(scope="module")
def performance(grafana, datasource, dashboards, mesh_load):
    return _board(grafana, datasource, dashboards, "Istio Performance Dashboard")


@pytest.mark.check("L9.2-C11")
def test_performance_bytes_transferred(mesh_load, grafana, datasource, performance, cluster):
    """"Bytes transferred / sec" for istio-ingressgateway (A) and the sidecars (B)."""
    def flowing(values):
        assert _only(values["A"], "istio-ingressgateway") > 0
        assert _only(values["B"], "istio-proxy") > 0
    _watch(grafana, datasource, performance, "Bytes transferred / sec", flowing, cluster,
           mesh_load)


@pytest.mark.check("L9.2-C11")
def test_performance_components_by_version(mesh_load, grafana, datasource, performance, cluster):
    minor = _istiod_minor(cluster)

    def pilot(values):
        assert any(m.get("component") == "pilot" and str(m.get("tag")).startswith(minor)
                   for m, _ in values["A"]), values["A"]
    _watch(grafana, datasource, performance, "Istio Components by Version", pilot, cluster,
           mesh_load)


def _cadvisor_up(grafana, datasource):
    targets = grafana.proxy(datasource["uid"], "/api/v1/targets", {"state": "active"})
    return [t for t in targets["activeTargets"]
            if t.get("scrapePool") == "kubernetes-nodes-cadvisor" and t.get("health") == "up"]


def _resources_or_skip(grafana, datasource):
    if not _cadvisor_up(grafana, datasource):
        pytest.skip("Prometheus has no kubernetes-nodes-cadvisor target up: the panel reads "
                    "cAdvisor's container_* metrics, which this cluster does not expose to it")


@pytest.mark.check("L9.2-C11")
def test_performance_vcpu(mesh_load, grafana, datasource, performance, cluster):
    """"vCPU": the CPU the gateway's proxy (A) and the sidecars outside istio-system (B) use,
    from cAdvisor's ``container_cpu_usage_seconds_total`` (the addon's
    ``kubernetes-nodes-cadvisor`` job, through the API server's node proxy). A proxy under
    load uses some CPU, and less than a core for this load."""
    _resources_or_skip(grafana, datasource)

    def busy(values):
        for ref, what in (("A", "istio-ingressgateway"), ("B", "istio-proxy")):
            assert 0 < _only(values[ref], f"vCPU {what}") < 1, values
    _watch(grafana, datasource, performance, "vCPU", busy, cluster, mesh_load)


@pytest.mark.check("L9.2-C11")
def test_performance_vcpu_per_1k_rps(mesh_load, grafana, datasource, performance, cluster):
    """"vCPU / 1k rps": the gateway proxy's CPU over its request rate (A) has a positive,
    finite value under load. The sidecars' figure (B) is divided by ``gateway rps >bool 10``,
    the dashboard's own guard: below 10 rps at the gateway it is +Inf (what the panel shows
    for a light load), above it positive and finite; either way a series is there."""
    _resources_or_skip(grafana, datasource)

    def per_1k(values):
        a = _only(values["A"], "vCPU / 1k rps istio-ingressgateway")
        assert 0 < a < math.inf, values
        assert _only(values["B"], "vCPU / 1k rps istio-proxy") > 0, values
    _watch(grafana, datasource, performance, "vCPU / 1k rps", per_1k, cluster, mesh_load)


@pytest.mark.check("L9.2-C11")
def test_performance_memory(mesh_load, grafana, datasource, performance, cluster):
    """"Memory Usage": the working set per gateway pod (A: every container of the pod over
    its containers) and per sidecar (B) from cAdvisor's ``container_memory_working_set_bytes``:
    a proxy's working set is megabytes, not bytes and not gigabytes."""
    _resources_or_skip(grafana, datasource)

    def sized(values):
        for ref, what in (("A", "istio-ingressgateway"), ("B", "istio proxy")):
            assert 2**20 < _only(values[ref], f"Memory {what}") < 2**31, values
    _watch(grafana, datasource, performance, "Memory Usage", sized, cluster, mesh_load)


@pytest.mark.check("L9.2-C11")
def test_control_plane_view_versions_and_connections(grafana, datasource, dashboards,
                                                     mesh_load, cluster):
    """The manual's "control plane view": the Control Plane Dashboard's Pilot Versions and
    Connections (client-reported xds-grpc connections and istiod's own count) have data."""
    board = _board(grafana, datasource, dashboards, CONTROL_PLANE)
    minor = _istiod_minor(cluster)

    def versions(values):
        series = next(iter(values.values()))
        assert any(str(m.get("tag")).startswith(minor) for m, _ in series), series
    _watch(grafana, datasource, board, "Pilot Versions", versions, cluster, mesh_load)

    def connected(values):
        counts = [_only(series, "Connections") for series in values.values()]
        assert len(counts) == 2 and all(c >= 1 for c in counts), counts
    _watch(grafana, datasource, board, "Connections", connected, cluster, mesh_load)
