"""``/api/v1/nodes/{node}/proxy/metrics/cadvisor``: the kubelet's cAdvisor through the API
server's node proxy (the path the addon's ``kubernetes-nodes-cadvisor`` job scrapes), read with
the pinned kubectl's ``get --raw``; the kubelet's other paths are said to be not modelled."""

from __future__ import annotations

import httpx
import pytest
from api_testkit import Api, Kubectl, api_fixture, kubectl_fixture  # noqa: F401

NODE = "embedded-control-plane"


@pytest.fixture(name="node")
def node_fixture(api: Api) -> Api:
    api.store.create(api.rt("", "nodes"), {"metadata": {"name": NODE, "labels": {
        "kubernetes.io/hostname": NODE}}})
    api.add_pod("web", containers=("app", "istio-proxy"))
    api.add_pod("idle", phase="Pending")
    return api


def test_cadvisor_answers_the_prometheus_text_format(node: Api, kubectl: Kubectl) -> None:
    text = kubectl.run("get", "--raw", f"/api/v1/nodes/{NODE}/proxy/metrics/cadvisor").stdout
    lines = text.splitlines()
    assert "# TYPE container_cpu_usage_seconds_total counter" in lines
    assert "# TYPE container_memory_working_set_bytes gauge" in lines
    cpu = [ln for ln in lines if ln.startswith("container_cpu_usage_seconds_total{")]
    memory = [ln for ln in lines if ln.startswith("container_memory_working_set_bytes{")]
    assert len(cpu) == len(memory) == 2  # the running pod's two containers, not the pending one
    uid = node.store.get(node.rt("", "pods"), "default", "web")["metadata"]["uid"]
    proxy = next(ln for ln in cpu if 'container="istio-proxy"' in ln)
    assert proxy.startswith('container_cpu_usage_seconds_total{container="istio-proxy",'
                            'cpu="total",id="/kubepods/besteffort/pod' + uid)
    assert 'image="example/istio-proxy:1",' in proxy and 'namespace="default",pod="web"}' in proxy
    value, stamp = proxy.rsplit(" ", 2)[1:]
    assert float(value) > 0 and int(stamp) > 1_700_000_000_000  # a counter, ms timestamp
    with httpx.Client(base_url=node.url) as http:
        answer = http.get(f"/api/v1/nodes/{NODE}/proxy/metrics/cadvisor")
    assert answer.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"


def test_other_kubelet_paths_are_not_modelled_and_unknown_nodes_not_found(
        node: Api, kubectl: Kubectl) -> None:
    other = kubectl.run("get", "--raw", f"/api/v1/nodes/{NODE}/proxy/stats/summary",
                        check=False)
    assert other.returncode != 0
    assert "nodes/proxy/stats/summary" in other.stderr and "not modelled" in other.stderr
    missing = kubectl.run("get", "--raw", "/api/v1/nodes/nope/proxy/metrics/cadvisor",
                          check=False)
    assert missing.returncode != 0 and 'nodes "nope" not found' in missing.stderr
