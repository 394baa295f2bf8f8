"""The embedded Prometheus's ``kubernetes-nodes-cadvisor`` job over the running addons: one
target per node, one series per running container with cAdvisor's labels, counters that grow,
and no target at all when the mounted ``prometheus.yml`` has no such job."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from controllers_testkit import Cluster, running_cluster
from test_install_addons import _docs

from pytest_istiolab.embedded.mesh.headers import Headers
from pytest_istiolab.embedded.workloads import cadvisor
from pytest_istiolab.embedded.workloads.base import AppContext, AppRequest
from pytest_istiolab.embedded.workloads.prometheus import Prometheus


@pytest.fixture
def addons() -> Iterator[Cluster]:
    with running_cluster() as c:
        c.namespace("istio-system")
        for doc in _docs():
            c.store.create(c.store.type_for(doc["apiVersion"], doc["kind"]), doc,
                           doc["metadata"].get("namespace"))
        c.settle()
        yield c


def _prometheus(c: Cluster) -> AppContext:
    pod = next(p for p in c.pods("istio-system")
               if p["metadata"]["name"].startswith("prometheus-"))
    return AppContext(c.runtime, pod, "prometheus-server", 0.0, caller=None,  # type: ignore
                      jitter=lambda lo, hi: lo / 1000)


def _get(ctx: AppContext, path: str, now: float) -> dict:
    ctx.now = now
    req = AppRequest("GET", path, "prometheus:9090", Headers())
    answer = Prometheus(ctx.pod, {}).handle(ctx, req)
    return json.loads(answer.body)


def _now(c: Cluster) -> float:
    return max(cadvisor._time(p["status"].get("startTime")) for p in c.pods("istio-system"))


def test_one_target_per_node_with_the_node_labels(addons: Cluster) -> None:
    ctx = _prometheus(addons)
    targets = _get(ctx, "/api/v1/targets", _now(addons) + 5)["data"]["activeTargets"]
    kubelets = [t for t in targets if t["scrapePool"] == "kubernetes-nodes-cadvisor"]
    node = addons.runtime.node_name
    assert len(kubelets) == 1 and kubelets[0]["health"] == "up"
    assert kubelets[0]["labels"]["kubernetes_io_hostname"] == node
    assert kubelets[0]["labels"]["instance"] == "kubernetes.default.svc:443"
    assert kubelets[0]["scrapeUrl"].endswith(f"/api/v1/nodes/{node}/proxy/metrics/cadvisor")


def test_a_series_per_running_container_with_cadvisors_labels(addons: Cluster) -> None:
    ctx = _prometheus(addons)
    got = _get(ctx, "/api/v1/query?query=container_memory_working_set_bytes",
               _now(addons) + 5)
    assert "warnings" not in got
    series = {(r["metric"]["pod"], r["metric"]["container"]): r["metric"]
              for r in got["data"]["result"]}
    running = {(p["metadata"]["name"], s["name"]): (p, s) for p in addons.pods("istio-system")
               for s in p["status"]["containerStatuses"] if "running" in s["state"]}
    assert set(series) == set(running)
    for key, (pod, status) in running.items():
        cid = status["containerID"].removeprefix("containerd://")
        labels = series[key]
        assert labels["name"] == cid and labels["image"] == status["image"]
        assert labels["namespace"] == "istio-system" and labels["job"] == cadvisor.JOB
        assert labels["id"].startswith("/kubepods/")
        assert labels["id"].endswith(f"/pod{pod['metadata']['uid']}/{cid}")


def test_cpu_grows_at_the_idle_rate_and_by_the_work_charged(addons: Cluster) -> None:
    ctx = _prometheus(addons)
    start = _now(addons) + 5
    query = ('/api/v1/query?query=increase(container_cpu_usage_seconds_total'
             '{container="grafana",cpu="total"}[1m])')
    (idle,) = _get(ctx, query, start + 60)["data"]["result"]
    assert float(idle["value"][1]) == pytest.approx(cadvisor.IDLE_CPU * 60)
    grafana = next(p for p in addons.pods("istio-system")
                   if p["metadata"]["name"].startswith("grafana-"))
    work = AppContext(addons.runtime, grafana, "grafana", start + 100, caller=None,  # type: ignore
                      jitter=lambda lo, hi: 0.25)
    work.spend(250)
    (busy,) = _get(ctx, query, start + 160)["data"]["result"]
    assert float(busy["value"][1]) == pytest.approx(cadvisor.IDLE_CPU * 60 + 0.25)


def test_proxy_memory_grows_with_the_services(addons: Cluster) -> None:
    before = cadvisor.Memory(addons.runtime).of("istio-proxy")
    addons.create("", "services", {"metadata": {"name": "extra"}, "spec": {
        "ports": [{"port": 80}]}}, "istio-system")
    after = cadvisor.Memory(addons.runtime).of("istio-proxy")
    assert after - before == cadvisor.PROXY_MEMORY_PER_SERVICE


def test_no_job_in_the_config_no_target_and_no_series(addons: Cluster) -> None:
    cm = addons.get("", "configmaps", "istio-system", "prometheus")
    text = cm["data"]["prometheus.yml"]
    cut = text.index("- bearer_token_file"), text.index("- job_name: kubernetes-pods")
    cm["data"]["prometheus.yml"] = text[:cut[0]] + text[cut[1]:]
    addons.store.update(addons.rt("", "configmaps"), cm, "istio-system", "prometheus")
    ctx = _prometheus(addons)
    now = _now(addons) + 5
    pools = {t["scrapePool"] for t in _get(ctx, "/api/v1/targets", now)["data"]["activeTargets"]}
    assert pools == {"kubernetes-pods", "prometheus"}
    assert _get(ctx, "/api/v1/query?query=container_memory_working_set_bytes",
                now)["data"]["result"] == []
