"""The PromQL evaluator against hand-computed answers, for every dashboard panel query that the
Lab 9.2 Grafana checks read (the queries as the addon's dashboards have them, with the
variables substituted by ``observability.Board`` as Grafana's frontend does).

The mesh below, at T (seconds), namespace ``bk``:

* gateway -> productpage, reporter=source: 200s at T-19, T-14, T-9, T-4; one 503 at T-12;
  reporter=destination (mTLS): the four 200s;
* productpage -> details, reporter=source: 404s at T-40 and T-8;
* request durations at the gateway (reporter=source, productpage): 3, 7, 8 and 20 ms at the
  four 200s; at productpage (reporter=destination): the same four;
* response/request bytes at the gateway and productpage; istiod's build and xDS gauges.

A histogram is sampled at every request for every bucket (as the mesh model's telemetry
does). ``irate`` is the increase over the last 15 s (a real Prometheus's last two scrapes),
divided by 15.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from pytest_istiolab.embedded.mesh.telemetry import Series
from pytest_istiolab.embedded.workloads import promql
from pytest_istiolab.embedded.workloads.prometheus import Const
from pytest_istiolab.observability import Board

T = 100_000.0
NS = "bk"
PP = f"productpage.{NS}.svc.cluster.local"
DETAILS = f"details.{NS}.svc.cluster.local"
ADDON = Path(__file__).resolve().parents[2] / "manifests/samples/addons/grafana.yaml"
OK_TIMES = (T - 19, T - 14, T - 9, T - 4)
DURATIONS = (3.0, 7.0, 8.0, 20.0)
BOUNDS = ("1", "5", "10", "25", "+Inf")


def _counter(points):
    s = Series()
    for t, delta in points:
        s.add(t, delta)
    return s


def _edge(reporter, code, csp, src="istio-ingressgateway", src_ns="istio-system",
          dst="productpage-v1", service=PP):
    return {"reporter": reporter, "source_workload": src, "source_workload_namespace": src_ns,
            "destination_workload": dst, "destination_workload_namespace": NS,
            "destination_service": service, "response_code": code,
            "connection_security_policy": csp, "source_cluster": "Kubernetes",
            "destination_cluster": "Kubernetes",
            "destination_principal": f"spiffe://cluster.local/ns/{NS}/sa/x"}


def _histogram(name, labels, samples):
    for le in BOUNDS:
        bound = float("inf") if le == "+Inf" else float(le)
        yield ({"__name__": f"{name}_bucket", **labels, "le": le},
               _counter([(t, 1 if v <= bound else 0) for t, v in samples]))


def _rows():
    ok = [(t, 1) for t in OK_TIMES]
    gw_src = _edge("source", "200", "unknown")
    gw_dst = _edge("destination", "200", "mutual_tls")
    yield {"__name__": "istio_requests_total", **gw_src}, _counter(ok)
    yield {"__name__": "istio_requests_total", **_edge("source", "503", "unknown")}, \
        _counter([(T - 12, 1)])
    yield {"__name__": "istio_requests_total", **gw_dst}, _counter(ok)
    pp_details = _edge("source", "404", "unknown", src="productpage-v1", src_ns=NS,
                       dst="details-v1", service=DETAILS)
    yield {"__name__": "istio_requests_total", **pp_details}, _counter([(T - 40, 1), (T - 8, 1)])
    samples = list(zip(OK_TIMES, DURATIONS, strict=True))
    yield from _histogram("istio_request_duration_milliseconds", gw_src, samples)
    yield from _histogram("istio_request_duration_milliseconds", gw_dst, samples)
    yield {"__name__": "istio_response_bytes_sum", **gw_src}, \
        _counter([(T - 30, 1000), (T - 10, 3000)])
    pp_src = _edge("source", "200", "unknown", src="productpage-v1", src_ns=NS)
    yield {"__name__": "istio_response_bytes_sum", **pp_src}, \
        _counter([(T - 40, 200), (T - 5, 300)])
    yield {"__name__": "istio_request_bytes_sum", **pp_src}, \
        _counter([(T - 40, 100), (T - 5, 100)])
    for pod in ("istiod-a", "istiod-b"):
        yield {"__name__": "istio_build", "component": "pilot", "tag": "1.26.0",
               "pod": pod}, Const(1.0, 0)
        yield {"__name__": "pilot_xds", "pod": pod}, Const(3.0, 0)
    for pod in ("p1", "p2", "p3"):
        yield {"__name__": "envoy_cluster_upstream_cx_active", "cluster_name": "xds-grpc",
               "pod": pod}, Const(1.0, 0)


class Mesh(promql.Source):
    def __init__(self, skip_5xx=False):
        self.rows = [r for r in _rows()
                     if not (skip_5xx and r[0].get("response_code") == "503")]

    def series(self):
        return iter(self.rows)


def _boards():
    out = {}
    for doc in yaml.safe_load_all(ADDON.read_text()):
        if doc and doc["kind"] == "ConfigMap" and "dashboards" in doc["metadata"]["name"]:
            for text in doc["data"].values():
                model = json.loads(text)
                out[model["title"]] = model
    return out


BOARDS = _boards()


def _board(title, **values):
    board = Board(BOARDS[title], scrape_interval=15.0)
    for name, value in values.items():
        board.select(name, *value) if isinstance(value, tuple) else board.select(name, value)
    return board


def _eval(board, title, ref=None, source=None):
    """{labels: value} of the panel's target ``ref`` (its only target when None)."""
    targets = board.targets(title)
    target, expr = targets[0] if ref is None else next(
        (t, e) for t, e in targets if t.get("refId") == ref)
    kind, value = promql.evaluate(expr, source or Mesh(), T)
    assert kind == "vector", (expr, kind)
    return {tuple(sorted(s.labels.items())): s.value for s in value}


def _one(got):
    assert len(got) == 1, got
    return next(iter(got.values()))


# ------------------------------------------------------------------ Mesh ($__rate_interval 20s)
MESH = "Istio Mesh Dashboard"


def test_mesh_rate_interval_is_20s():
    board = _board(MESH)
    assert "[20s]" in board.targets("Traffic Volume")[0][1]


def test_mesh_traffic_volume():
    # source|waypoint: 4 + 1 requests (gateway) + 1 (productpage -> details) in 20 s
    assert _one(_eval(_board(MESH), "Traffic Volume")) == pytest.approx(0.3)


def test_mesh_success_rate():
    # non-5xx (4 + 1) / all (6)
    assert _one(_eval(_board(MESH), "Success Rate")) == pytest.approx(5 / 6)


def test_mesh_4xx_and_5xx():
    assert _one(_eval(_board(MESH), "4xxs")) == pytest.approx(0.05)
    assert _one(_eval(_board(MESH), "5xxs")) == pytest.approx(0.05)
    # no 5xx series at all: "or vector(0)" answers 0
    assert _eval(_board(MESH), "5xxs", source=Mesh(skip_5xx=True)) == {(): 0.0}


def test_mesh_workloads_table():
    board = _board(MESH)
    by = "destination_workload_var"

    def rows(ref):
        return {dict(k)[by]: v for k, v in _eval(board, "HTTP/gRPC Workloads", ref).items()}

    assert rows("requests") == pytest.approx({"productpage-v1.bk": 5 / 20,
                                              "details-v1.bk": 1 / 20})
    assert rows("success") == pytest.approx({"productpage-v1.bk": 0.8, "details-v1.bk": 1.0})
    # buckets in 20 s (per second): le5 1/20, le10 3/20, le25 4/20, +Inf 4/20; total 0.2
    assert rows("p50") == pytest.approx({"productpage-v1.bk": 5 + 5 * (0.10 - 0.05) / 0.10})
    assert rows("p90") == pytest.approx({"productpage-v1.bk": 10 + 15 * (0.18 - 0.15) / 0.05})
    assert rows("p99") == pytest.approx({"productpage-v1.bk": 10 + 15 * (0.198 - 0.15) / 0.05})


def test_mesh_component_versions():
    got = _eval(_board(MESH), "Istio Component Versions")
    assert got == {(("component", "pilot"), ("tag", "1.26.0")): 2.0}


# ------------------------------------------------------------------ Service
SERVICE = "Istio Service Dashboard"


def _service():
    board = _board(SERVICE, service=PP)
    board.options.update(srcwl=["istio-ingressgateway"], srcns=["istio-system"])
    return board


def test_service_request_volume_and_success():
    # irate: 3 requests (T-14, T-9, T-4) in the last 15 s -> 3/15 (reporter=destination)
    board = _service()
    assert _one(_eval(board, "Client Request Volume")) == pytest.approx(0.2)
    assert _one(_eval(board, "Server Request Volume")) == pytest.approx(0.2)
    assert _one(_eval(board, "Client Success Rate (non-5xx responses)")) == 1.0
    assert _one(_eval(board, "Server Success Rate (non-5xx responses)")) == 1.0


def test_service_success_rate_without_traffic_is_absent_not_nan():
    # "... / (sum(irate(...)) or on () vector(1))": no series for another service -> no row
    board = _board(SERVICE, service="nothing.bk.svc.cluster.local")
    assert _eval(board, "Client Success Rate (non-5xx responses)") == {}


def test_service_request_duration_in_seconds():
    # irate of each bucket over the last 15 s (7, 8, 20 ms): le5 0, le10 2/15, le25 and +Inf
    # 3/15 = 0.2. P50: rank 0.1 in (5, 10]: 5 + 5 * 0.1 / (2/15) = 8.75 ms
    board = _service()
    p50, p90, p99 = (_one(_eval(board, "Server Request Duration", ref)) for ref in "ABC")
    assert p50 == pytest.approx(0.00875)
    assert p90 == pytest.approx((10 + 15 * (0.18 - 2 / 15) / (1 / 15)) / 1000)
    assert p99 == pytest.approx((10 + 15 * (0.198 - 2 / 15) / (1 / 15)) / 1000)


def test_service_incoming_requests_by_source():
    board = _service()
    got = _eval(board, "Incoming Requests By Source And Response Code", "A")
    assert got == {(("response_code", "200"), ("source_workload", "istio-ingressgateway"),
                    ("source_workload_namespace", "istio-system")): pytest.approx(0.2)}
    assert _eval(board, "Incoming Requests By Source And Response Code", "B") == {}


def test_service_variable_query_lists_the_services():
    board = _board(SERVICE)
    inner = board.variable("service")["query"][len("query_result("):-1]
    kind, value = promql.evaluate(board.render(inner), Mesh(), T)
    assert {s.labels["destination_service"]: s.value for s in value} == {PP: 9.0, DETAILS: 2.0}


# ------------------------------------------------------------------ Workload
WORKLOAD = "Istio Workload Dashboard"


def test_workload_incoming_volume_and_success():
    board = _board(WORKLOAD, namespace=NS, workload="productpage-v1")
    assert _one(_eval(board, "Incoming Request Volume")) == pytest.approx(0.2)
    assert _one(_eval(board, "Incoming Success Rate (non-5xx responses)")) == 1.0


def test_workload_outgoing_requests_and_success():
    board = _board(WORKLOAD, namespace=NS, workload="productpage-v1")
    board.options.update(dstsvc=[DETAILS])
    # 404s at T-40 and T-8: one in the last 15 s -> 1/15, rounded to 0.001
    got = _eval(board, "Outgoing Requests By Destination And Response Code", "A")
    assert got == {(("destination_service", DETAILS), ("response_code", "404")):
                   pytest.approx(0.067)}
    rate = "Outgoing Success Rate (non-5xx responses) By Destination"
    assert _eval(board, rate, "A") == {}  # the source reporter never says mutual_tls
    assert _eval(board, rate, "B") == {(("destination_service", DETAILS),): 1.0}


# ------------------------------------------------------------------ Performance, Control Plane
def test_performance_bytes_transferred():
    board = _board("Istio Performance Dashboard")
    assert "[1m]" in board.targets("Bytes transferred / sec")[0][1]
    # irate over 1m: the increase in the last 15 s over 15
    assert _one(_eval(board, "Bytes transferred / sec", "A")) == pytest.approx(3000 / 15)
    assert _one(_eval(board, "Bytes transferred / sec", "B")) == pytest.approx(300 / 15 +
                                                                               100 / 15)


def test_performance_components_by_version():
    got = _eval(_board("Istio Performance Dashboard"), "Istio Components by Version")
    assert got == {(("component", "pilot"), ("tag", "1.26.0")): 2.0}


def test_control_plane_versions_and_connections():
    board = _board("Istio Control Plane Dashboard")
    assert _eval(board, "Pilot Versions") == {(("tag", "1.26.0"),): 2.0}
    targets = board.targets("Connections")
    got = [_one({tuple(sorted(s.labels.items())): s.value
                 for s in promql.evaluate(expr, Mesh(), T)[1]}) for _, expr in targets]
    assert got == [3.0, 6.0]


def test_every_panel_query_of_the_addon_evaluates_or_names_what_is_not_modelled():
    for model in BOARDS.values():
        board = Board(model)
        for panel in board.panels():
            for target in panel.get("targets") or []:
                if target.get("expr"):
                    promql.evaluate(board.render(target["expr"], panel), Mesh(), T)


def test_families_the_model_does_not_emit_are_named_in_warnings():
    from pytest_istiolab.embedded.workloads.prometheus import not_modelled_warnings

    board = _board("Istio Performance Dashboard")
    (_, vcpu), _ = board.targets("vCPU / 1k rps")
    assert not_modelled_warnings(vcpu) == []  # the cAdvisor model's two families
    assert not_modelled_warnings("sum(rate(container_network_receive_bytes_total[1m]))") == [
        "container_network_receive_bytes_total: cAdvisor's container metrics other than "
        "container_cpu_usage_seconds_total and container_memory_working_set_bytes are not "
        "modelled by the embedded Prometheus"]
    assert not_modelled_warnings("sum(pilot_xds) + sum(rate(istio_requests_total[1m]))") == []
    assert [w.split(":")[0] for w in not_modelled_warnings(
        'go_goroutines{app="istiod"} or pilot_k8s_reg_events')] == [
        "go_goroutines", "pilot_k8s_reg_events"]
