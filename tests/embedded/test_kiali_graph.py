"""The embedded Kiali's graph arithmetic against hand-computed answers (no cluster)."""

from __future__ import annotations

from pytest_istiolab.embedded.workloads import kiali_appenders as ka
from pytest_istiolab.embedded.workloads import kiali_graph as kg


def _sample(reporter, src, src_ver, dst_wl, dst_app, dst_ver, svc, value, code="200"):
    return {"metric": {
        "reporter": reporter, "source_cluster": "Kubernetes", "source_workload_namespace": "bi",
        "source_workload": f"{src}-{src_ver}", "source_canonical_service": src,
        "source_canonical_revision": src_ver, "destination_cluster": "Kubernetes",
        "destination_service_namespace": "bi", "destination_service": f"{svc}.bi.svc.cluster.local",
        "destination_service_name": svc, "destination_workload_namespace": "bi",
        "destination_workload": dst_wl, "destination_canonical_service": dst_app,
        "destination_canonical_revision": dst_ver, "request_protocol": "http",
        "response_code": code, "grpc_response_status": "", "response_flags": "-"},
        "value": [0, str(value)]}


def _graph(samples, **options):
    traffic = kg.TrafficMap(kg.Options(**options))
    traffic.add_vector(samples)
    return kg.build(traffic)


def _by_label(graph):
    nodes = {n["data"]["id"]: n["data"] for n in graph["elements"]["nodes"]}

    def name(i):
        d = nodes[i]
        return d.get("service") or f"{d.get('app')} {d.get('version', '')}".strip()

    return {(name(e["data"]["source"]), name(e["data"]["target"])): e["data"]["traffic"]
            for e in graph["elements"]["edges"]}


def test_both_reporters_of_one_edge_count_once():
    both = [_sample(r, "productpage", "v1", "details-v1", "details", "v1", "details", 0.2)
            for r in ("destination", "source")]
    edges = _by_label(_graph(both))
    assert list(edges) == [("productpage v1", "details v1")]
    assert edges[("productpage v1", "details v1")]["rates"] == {"http": "0.20",
                                                                "httpPercentReq": "100.0"}


def test_percent_of_requests_and_errors_with_service_nodes():
    samples = [_sample("destination", "productpage", "v1", f"reviews-{v}", "reviews", v,
                       "reviews", rate) for v, rate in (("v1", 0.1), ("v2", 0.3))]
    samples.append(_sample("destination", "productpage", "v1", "reviews-v2", "reviews", "v2",
                           "reviews", 0.1, code="503"))
    edges = _by_label(_graph(samples, inject_service_nodes=True))
    assert set(edges) == {("productpage v1", "reviews"), ("reviews", "reviews v1"),
                          ("reviews", "reviews v2")}
    v2 = edges[("reviews", "reviews v2")]
    # 0.4 of 0.5 leaving the service node; 0.1 of the 0.4 are 5xx
    assert v2["rates"] == {"http": "0.40", "http5xx": "0.10", "httpPercentErr": "25.0",
                           "httpPercentReq": "80.0"}
    assert v2["responses"]["503"] == {"flags": {"-": "25.0"},
                                      "hosts": {"reviews.bi.svc.cluster.local": "25.0"}}


def test_versions_of_an_app_are_boxed_and_ids_are_kiali_hashes():
    samples = [_sample("destination", "productpage", "v1", f"reviews-{v}", "reviews", v,
                       "reviews", 0.1) for v in ("v1", "v2")]
    nodes = [n["data"] for n in _graph(samples)["elements"]["nodes"]]
    box = nodes[0]
    assert (box["isBox"], box["nodeType"], box["app"]) == ("app", "box", "reviews")
    assert box["id"] == kg.sha("box_Kubernetes_bi_reviews")
    reviews = [n for n in nodes if n.get("workload", "").startswith("reviews-")]
    assert {n["parent"] for n in reviews} == {box["id"]}
    assert reviews[0]["id"] == kg.sha("vapp_Kubernetes_bi_reviews-v1")


def test_rate_strings_keep_one_significant_digit():
    assert [kg.rate_string(v) for v in (2.0, 0.5, 0.004, 0.0000123)] == [
        "2.00", "0.50", "0.004", "0.00001"]


def _traffic(samples, **options):
    traffic = kg.TrafficMap(kg.Options(**options))
    traffic.add_vector(samples)
    return traffic


def test_response_time_goes_on_the_service_to_workload_edge():
    sample = _sample("destination", "productpage", "v1", "details-v1", "details", "v1",
                     "details", 0.2)
    traffic = _traffic([sample], inject_service_nodes=True)
    ka.add_response_times(traffic, [{**sample, "value": [0, "4.75"]}])
    times = {(e.source.key, e.dest.key): e.response_time for e in traffic.edges}
    assert times == {("vapp_Kubernetes_bi_productpage-v1", "svc_Kubernetes_bi_details"): None,
                     ("svc_Kubernetes_bi_details", "vapp_Kubernetes_bi_details-v1"): 4.75}
    built = kg.build(traffic)["elements"]["edges"]
    # the JSON carries it as a string rounded to whole milliseconds
    assert sorted(e["data"].get("responseTime", "-") for e in built) == ["-", "5"]


def test_the_gateway_is_root_and_outside_the_graphed_namespace():
    gw = _sample("destination", "istio-ingressgateway", "latest", "productpage-v1",
                 "productpage", "v1", "productpage", 0.2)
    gw["metric"].update(source_workload="istio-ingressgateway",
                        source_workload_namespace="istio-system")
    traffic = _traffic([gw])
    ka.mark(traffic, ["bi"])
    flags = {n.key: n.flags for n in traffic.nodes.values()}
    assert flags == {"vapp_Kubernetes_istio-system_istio-ingressgateway":
                     {"isRoot": True, "isOutside": True},
                     "vapp_Kubernetes_bi_productpage-v1": {}}


def test_appender_names_are_checked_as_kiali_does():
    assert ka.check(["deadNode", "responseTime"], "95") is None
    assert ka.check(["bogus"], "") == "Invalid appender [bogus]"
    assert "must be one of" in (ka.check([], "90") or "")


def test_security_policy_gives_the_mtls_share_on_both_halves_of_a_service_hop():
    mtls = _sample("destination", "productpage", "v1", "details-v1", "details", "v1",
                   "details", 0.3)
    mtls["metric"].update(connection_security_policy="mutual_tls", source_principal="spiffe://a",
                          destination_principal="spiffe://b")
    plain = {"metric": {**mtls["metric"], "connection_security_policy": "none"},
             "value": [0, "0.1"]}
    traffic = _traffic([mtls], inject_service_nodes=True)
    ka.add_security(traffic, [mtls, plain])
    assert [(round(e.mtls or 0, 6), e.principals) for e in traffic.edges] == [
        (75.0, ("spiffe://a", "spiffe://b"))] * 2
    assert {e["data"]["isMTLS"] for e in kg.build(traffic)["elements"]["edges"]} == {"75"}


# ---------------------------------------------------------------- the server's answers
class _Store:
    def __init__(self, objects):
        self.objects = objects

    def by_kind(self, group, plural, namespace=None):
        return [o for o in self.objects.get(plural, [])
                if namespace is None or o["metadata"].get("namespace") == namespace]


def _ask(path, objects=None):
    from types import SimpleNamespace

    from pytest_istiolab.embedded.mesh.headers import Headers
    from pytest_istiolab.embedded.workloads.base import AppContext, AppRequest
    from pytest_istiolab.embedded.workloads.kiali import Kiali

    runtime = SimpleNamespace(store=_Store(objects or {"namespaces": [
        {"metadata": {"name": "bi"}}]}))
    ctx = AppContext(runtime, {"metadata": {"name": "kiali-0", "namespace": "istio-system"}},
                     "kiali", 0.0, caller=None, jitter=lambda low, high: low)  # type: ignore
    pod = {"metadata": {"name": "kiali-0", "namespace": "istio-system"}}
    answer = Kiali(pod, {"image": "quay.io/kiali/kiali:v2.8"}).handle(
        ctx, AppRequest("GET", path, "kiali:20001", Headers()))
    return answer.status, answer.headers.get("location"), answer.body


def test_the_root_redirects_to_the_web_root():
    assert _ask("/")[:2] == (302, "/kiali/")


def test_unmodelled_routes_and_options_get_kiali_error_shape():
    status, _, body = _ask("/kiali/api/istio/config")
    assert status == 501 and b'"error": "GET /api/istio/config is not modelled' in body
    assert _ask("/kiali/api/namespaces/graph?namespaces=bi&graphType=service")[0] == 501
    status, _, body = _ask("/kiali/api/namespaces/graph?namespaces=bi&appenders=bogus")
    assert (status, body) == (400, b'{"error": "Invalid appender [bogus]"}')
    assert _ask("/kiali/api/namespaces/graph?namespaces=bi&appenders=istio")[0] == 501
    assert _ask("/kiali/api/namespaces/graph?namespaces=bi&queryTime=soon")[0] == 400
    assert _ask("/kiali/api/namespaces/graph?namespaces=bi&duration=long")[0] == 400
    assert _ask("/kiali/apifoo")[0] == 404
    status, _, body = _ask("/kiali/api/namespaces/graph?namespaces=nope&graphType=app")
    assert status == 403 and b"nope" in body


def test_app_and_workload_graphs_name_nodes_as_kiali_does():
    samples = [_sample("destination", "productpage", "v1", f"reviews-{v}", "reviews", v,
                       "reviews", 0.1) for v in ("v1", "v2")]
    app = {n["data"]["id"]: n["data"] for n in
           _graph(samples, graph_type="app")["elements"]["nodes"]}
    assert app == {kg.sha("app_Kubernetes_bi_productpage"): {
        "id": kg.sha("app_Kubernetes_bi_productpage"), "nodeType": "app",
        "cluster": "Kubernetes", "namespace": "bi", "app": "productpage",
        "traffic": [{"protocol": "http", "rates": {"httpOut": "0.20"}}], "healthData": None},
        kg.sha("app_Kubernetes_bi_reviews"): {
        "id": kg.sha("app_Kubernetes_bi_reviews"), "nodeType": "app", "cluster": "Kubernetes",
        "namespace": "bi", "app": "reviews",
        "destServices": [{"cluster": "Kubernetes", "namespace": "bi", "name": "reviews"}],
        "traffic": [{"protocol": "http", "rates": {"httpIn": "0.20"}}], "healthData": None}}
    workload = [n["data"] for n in _graph(samples, graph_type="workload")["elements"]["nodes"]]
    assert [(d["nodeType"], d["workload"], d.get("parent")) for d in workload] == [
        ("workload", "productpage-v1", None), ("workload", "reviews-v1", None),
        ("workload", "reviews-v2", None)]
