"""The Performance dashboard's vCPU and memory panels against hand-computed answers, over the
cAdvisor series of the kubelet model (``workloads/cadvisor``), and that model's own figures.

The mesh below, at T (seconds); every proxy idles at 0.003 vCPU from T-600 on:

* the gateway's proxy (``istio-system``) is charged 0.6 s of CPU at T-30 and 0.3 s at T-5;
* the productpage sidecar (``bk``) 0.3 s at T-20, the reviews sidecar 0.6 s at T-10; the
  productpage application container 1.2 s at T-10 (no panel reads it); istiod's
  ``discovery`` nothing;
* gateway requests: ``n`` at T-7 reported by the gateway (source) and ``n`` by productpage
  (destination), ``n`` = 30 (light load) or 90;
* working sets: the gateway's proxy 50 MiB plus a dockershim-era ``POD`` container of 1 MiB
  (the panel's ``container!="POD"`` is written for it); the sidecars 40 and 44 MiB.

``rate`` over 1m is the increase over the minute over 60; ``irate`` the increase over the
last 15 s (a real Prometheus's last two scrapes) over 15.
"""

from __future__ import annotations

import math

import pytest
from test_promql_dashboards import T, _board, _counter, _eval, _one

from pytest_istiolab.embedded.workloads import cadvisor, promql
from pytest_istiolab.embedded.workloads.cadvisor import CpuCounter
from pytest_istiolab.embedded.workloads.promql import Const

PERF = "Istio Performance Dashboard"
MiB = 2**20
GW = {"namespace": "istio-system", "pod": "istio-ingressgateway-7d-abc"}
PP = {"namespace": "bk", "pod": "productpage-v1-5f-x"}
REVIEWS = {"namespace": "bk", "pod": "reviews-v1-6c-y"}


def _cpu(where, container, charges, idle=0.003):
    labels = {"__name__": "container_cpu_usage_seconds_total", **where,
              "container": container, "cpu": "total"}
    return labels, CpuCounter(T - 600, idle, _counter(charges) if charges else None)


def _mem(where, container, mib):
    return ({"__name__": "container_memory_working_set_bytes", **where, "container": container},
            Const(mib * MiB, T - 600))


class Cluster(promql.Source):
    def __init__(self, n=30):
        self.rows = [
            _cpu(GW, "istio-proxy", [(T - 30, 0.6), (T - 5, 0.3)]),
            _cpu(PP, "istio-proxy", [(T - 20, 0.3)]),
            _cpu(REVIEWS, "istio-proxy", [(T - 10, 0.6)]),
            _cpu(PP, "productpage", [(T - 10, 1.2)], idle=0.001),
            _cpu({"namespace": "istio-system", "pod": "istiod-1"}, "discovery", []),
            _mem(GW, "istio-proxy", 50), _mem(GW, "POD", 1),
            _mem(PP, "istio-proxy", 40), _mem(REVIEWS, "istio-proxy", 44),
            _mem(PP, "productpage", 30)]
        for reporter in ("source", "destination"):
            self.rows.append(({"__name__": "istio_requests_total", "reporter": reporter,
                               "source_workload": "istio-ingressgateway"},
                              _counter([(T - 7, n)])))

    def series(self):
        return iter(self.rows)


def test_vcpu_is_the_proxies_cpu_rate_over_a_minute():
    board = _board(PERF)
    # the gateway: idle 0.003 plus 0.9 s of work in the minute
    assert _one(_eval(board, "vCPU", "A", Cluster())) == pytest.approx(0.003 + 0.9 / 60)
    # the sidecars outside istio-system: 2 x idle plus 0.3 + 0.6 s of work
    assert _one(_eval(board, "vCPU", "B", Cluster())) == pytest.approx(0.006 + 0.9 / 60)


def test_vcpu_per_1k_rps_of_the_gateway():
    # irate: the gateway's 15 s of idle plus the 0.3 s at T-5, over 15 s; 30 requests in
    # the last 15 s are 2 rps
    cpu = (0.003 * 15 + 0.3) / 15
    got = _one(_eval(_board(PERF), "vCPU / 1k rps", "A", Cluster()))
    assert got == pytest.approx(cpu / (2 / 1000))


def test_vcpu_per_1k_rps_of_the_sidecars_is_inf_below_10_gateway_rps():
    # productpage's charge at T-20 is older than the last 15 s; reviews' at T-10 is not
    cpu = (0.003 * 15) / 15 + (0.003 * 15 + 0.6) / 15
    light = _one(_eval(_board(PERF), "vCPU / 1k rps", "B", Cluster(n=30)))
    assert light == math.inf  # 4 rps from the gateway: ``>bool 10`` is 0
    loaded = _one(_eval(_board(PERF), "vCPU / 1k rps", "B", Cluster(n=90)))
    assert loaded == pytest.approx(cpu / (12 / 1000))  # 12 rps in all, all from the gateway


def test_memory_per_gateway_pod_and_per_sidecar():
    board = _board(PERF)
    # every container of the gateway pod (POD too) over the containers other than POD
    assert _one(_eval(board, "Memory Usage", "A", Cluster())) == 51 * MiB
    assert _one(_eval(board, "Memory Usage", "B", Cluster())) == 42 * MiB


def test_cpu_counter_grows_at_idle_between_charges_and_is_absent_before_the_start():
    c = CpuCounter(100.0, 0.01, _counter([(150.0, 2.0)]))
    assert c.at(99.0) is None
    assert c.at(140.0) == pytest.approx(0.4)
    assert c.at(160.0) == pytest.approx(2.6)
    assert c.window(90.0, 160.0) == [(100.0, 0.0), (145.0, pytest.approx(0.45)),
                                     (150.0, pytest.approx(2.5)), (160.0, pytest.approx(2.6))]


def test_target_labels_are_the_node_labels_mapped_and_empty_ones_dropped():
    node = {"metadata": {"name": "node1", "labels": {
        "kubernetes.io/hostname": "node1", "beta.kubernetes.io/arch": "amd64",
        "node-role.kubernetes.io/control-plane": ""}}}
    assert cadvisor.target_labels(node) == {
        "kubernetes_io_hostname": "node1", "beta_kubernetes_io_arch": "amd64",
        "instance": "kubernetes.default.svc:443", "job": "kubernetes-nodes-cadvisor"}
    assert cadvisor.scrape_url(node) == ("https://kubernetes.default.svc:443/api/v1/nodes/"
                                         "node1/proxy/metrics/cadvisor")
