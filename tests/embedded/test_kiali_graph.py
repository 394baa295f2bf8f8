"""The embedded Kiali's graph arithmetic against hand-computed answers (no cluster)."""

from __future__ import annotations

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
