"""manifests/samples/addons: the objects ``kubectl apply -f samples/addons`` creates (L1-C04,
1.26 variant), and that they run on the embedded cluster (L1-C09/L1-C10)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from controllers_testkit import Cluster, running_cluster

ADDONS = Path(__file__).resolve().parents[2] / "manifests" / "samples" / "addons"
GROUPS = {"Deployment": "deployment.apps", "StatefulSet": "statefulset.apps",
          "ClusterRole": "clusterrole.rbac.authorization.k8s.io",
          "ClusterRoleBinding": "clusterrolebinding.rbac.authorization.k8s.io"}
CREATED_1_26 = """serviceaccount/grafana created
configmap/grafana created
service/grafana created
deployment.apps/grafana created
configmap/istio-grafana-dashboards created
configmap/istio-services-grafana-dashboards created
deployment.apps/jaeger created
service/tracing created
service/zipkin created
service/jaeger-collector created
serviceaccount/kiali created
configmap/kiali created
clusterrole.rbac.authorization.k8s.io/kiali created
clusterrolebinding.rbac.authorization.k8s.io/kiali created
service/kiali created
deployment.apps/kiali created
serviceaccount/loki created
configmap/loki created
configmap/loki-runtime created
clusterrole.rbac.authorization.k8s.io/loki-clusterrole created
clusterrolebinding.rbac.authorization.k8s.io/loki-clusterrolebinding created
service/loki-memberlist created
service/loki-headless created
service/loki created
statefulset.apps/loki created
serviceaccount/prometheus created
configmap/prometheus created
clusterrole.rbac.authorization.k8s.io/prometheus created
clusterrolebinding.rbac.authorization.k8s.io/prometheus created
service/prometheus created
deployment.apps/prometheus created""".splitlines()


def _docs() -> list[dict]:
    docs = []
    for path in sorted(ADDONS.glob("*.yaml")):  # kubectl apply -f DIR: files in name order
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def test_apply_order_matches_the_1_26_addons() -> None:
    lines = [f"{GROUPS.get(d['kind'], d['kind'].lower())}/{d['metadata']['name']} created"
             for d in _docs()]
    assert lines == CREATED_1_26


@pytest.fixture
def addons() -> Iterator[Cluster]:
    with running_cluster() as c:
        c.namespace("istio-system")
        for doc in _docs():
            rt = c.store.type_for(doc["apiVersion"], doc["kind"])
            assert rt is not None, doc["kind"]
            c.store.create(rt, doc, doc["metadata"].get("namespace"))
        c.settle()
        yield c


def test_addon_pods_run_ready(addons: Cluster) -> None:
    pods = {p["metadata"]["name"]: p for p in addons.pods("istio-system")}
    assert "loki-0" in pods
    by_app = {name.rsplit("-", 2)[0] if name != "loki-0" else "loki": p
              for name, p in pods.items()}
    assert set(by_app) == {"grafana", "jaeger", "kiali", "prometheus", "loki"}
    for name, pod in by_app.items():
        statuses = pod["status"]["containerStatuses"]
        assert pod["status"]["phase"] == "Running", name
        assert all(s["ready"] for s in statuses), name
    assert [c["name"] for c in by_app["prometheus"]["spec"]["containers"]] == [
        "prometheus-server-configmap-reload", "prometheus-server"]
    assert len(by_app["loki"]["spec"]["containers"]) == 2


@pytest.mark.parametrize(("service", "ports"), [
    ("grafana", [(3000, 3000)]),
    ("prometheus", [(9090, 9090)]),
    ("kiali", [(20001, 20001), (9090, 9090)]),
    ("tracing", [(80, 16686), (16685, 16685)]),
    ("zipkin", [(9411, 9411)]),
    ("jaeger-collector", [(14268, 14268), (14250, 14250), (9411, 9411), (4317, 4317),
                          (4318, 4318)]),
    ("loki", [(3100, "http-metrics"), (9095, "grpc")]),
])
def test_addon_services(addons: Cluster, service: str, ports: list[tuple]) -> None:
    svc = addons.get("", "services", "istio-system", service)
    assert svc["spec"]["type"] == "ClusterIP"
    assert [(p["port"], p["targetPort"]) for p in svc["spec"]["ports"]] == ports
    subsets = addons.get("", "endpoints", "istio-system", service)["subsets"]
    assert subsets and subsets[0]["addresses"], f"{service} has no ready endpoints"
