"""Sidecar injection: the admission plugin's rules, the 1.26 template, and kube-inject.

Supports checks L2-C01/L2-C02 (injection by namespace label, 2/2 pods), L2-C03 (the
istio-proxy container a describe shows; D-05) and L7-C05/L8 (kube-inject).
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import pytest
from controllers_testkit import DETAILS_IMAGE, Cluster, deployment, running_cluster

from pytest_istiolab.embedded.injection import (
    injection_required,
    is_injected,
    kube_inject_documents,
    values_from_configmaps,
)
from pytest_istiolab.embedded.install.sidecar import SidecarValues
from pytest_istiolab.embedded.istioctl import StoreBackend, main

PRODUCTPAGE = "docker.io/istio/examples-bookinfo-productpage-v1:1.20.3"


def install(cluster: Cluster, profile: str = "demo") -> None:
    out, err = io.StringIO(), io.StringIO()
    rc = main(["install", "--set", f"profile={profile}", "-y"], None, out, err,
              StoreBackend(cluster.store))
    assert rc == 0, err.getvalue()
    cluster.settle()


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    with running_cluster() as c:
        c.settle()
        yield c


@pytest.fixture
def istio(cluster: Cluster) -> Cluster:
    install(cluster)
    return cluster


def _pod(cluster: Cluster, ns: str, prefix: str) -> dict:
    (pod,) = cluster.pods(ns, prefix)
    return pod


def test_no_injection_before_istio_is_installed(cluster: Cluster) -> None:
    cluster.store.mutate(cluster.rt("", "namespaces"), None, "default",
                         lambda n: n["metadata"]["labels"].update({"istio-injection": "enabled"}))
    cluster.create("apps", "deployments", deployment("details-v1", "details", DETAILS_IMAGE),
                   "default")
    cluster.settle()
    assert not is_injected(_pod(cluster, "default", "details-v1-"))


def test_labelled_namespace_gets_the_1_26_sidecar(istio: Cluster) -> None:
    istio.store.mutate(istio.rt("", "namespaces"), None, "default",
                       lambda n: n["metadata"]["labels"].update({"istio-injection": "enabled"}))
    istio.create("apps", "deployments", deployment("productpage-v1", "productpage", PRODUCTPAGE),
                 "default")
    istio.settle()
    pod = _pod(istio, "default", "productpage-v1-")
    spec = pod["spec"]
    assert [c["name"] for c in spec["initContainers"]] == ["istio-init"]
    assert [c["name"] for c in spec["containers"]] == ["productpage", "istio-proxy"]
    proxy = spec["containers"][1]
    assert proxy["image"] == "docker.io/istio/proxyv2:1.26.0"
    assert proxy["ports"] == [{"containerPort": 15090, "name": "http-envoy-prom",
                               "protocol": "TCP"}]
    assert proxy["args"][:4] == ["proxy", "sidecar", "--domain",
                                 "$(POD_NAMESPACE).svc.cluster.local"]
    assert "--proxyLogLevel=warning" in proxy["args"]
    assert proxy["readinessProbe"]["httpGet"]["path"] == "/healthz/ready"
    assert proxy["readinessProbe"]["httpGet"]["port"] == 15021
    env = {e["name"]: e.get("value", e.get("valueFrom")) for e in proxy["env"]}
    assert env["PILOT_CERT_PROVIDER"] == "istiod"
    assert env["CA_ADDR"] == "istiod.istio-system.svc:15012"
    assert env["POD_NAME"] == {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}
    assert env["ISTIO_META_POD_PORTS"] == '[\n    {"containerPort":9080,"protocol":"TCP"}\n]'
    assert env["ISTIO_META_APP_CONTAINERS"] == "productpage"
    assert env["ISTIO_META_CLUSTER_ID"] == "Kubernetes"
    assert env["ISTIO_META_INTERCEPTION_MODE"] == "REDIRECT"
    assert env["ISTIO_META_WORKLOAD_NAME"] == "productpage-v1"
    assert env["ISTIO_META_OWNER"] == \
        "kubernetes://apis/apps/v1/namespaces/default/deployments/productpage-v1"
    assert env["ISTIO_META_MESH_ID"] == env["TRUST_DOMAIN"] == "cluster.local"
    assert proxy["resources"] == {"limits": {"cpu": "2", "memory": "1Gi"},
                                  "requests": {"cpu": "10m", "memory": "40Mi"}}
    mounts = {m["mountPath"]: m["name"] for m in proxy["volumeMounts"]}
    assert mounts["/etc/istio/proxy"] == "istio-envoy"
    assert mounts["/var/run/secrets/tokens"] == "istio-token"
    assert "/var/run/secrets/kubernetes.io/serviceaccount" in mounts
    volumes = {v["name"] for v in spec["volumes"]}
    assert {"istio-envoy", "istio-data", "istio-podinfo", "istio-token",
            "istiod-ca-cert"} <= volumes
    meta = pod["metadata"]
    status = json.loads(meta["annotations"]["sidecar.istio.io/status"])
    assert status["containers"] == ["istio-proxy"] and status["revision"] == "default"
    assert meta["annotations"]["kubectl.kubernetes.io/default-container"] == "productpage"
    assert meta["labels"]["security.istio.io/tlsMode"] == "istio"
    assert meta["labels"]["service.istio.io/canonical-name"] == "productpage"
    assert meta["labels"]["service.istio.io/canonical-revision"] == "v1"
    statuses = pod["status"]["containerStatuses"]
    assert [s["ready"] for s in statuses] == [True, True]
    assert pod["status"]["initContainerStatuses"][0]["state"]["terminated"]["reason"] == \
        "Completed"
    reasons = {(e["reason"], e["message"]) for e in istio.items("", "events", "default")
               if e["involvedObject"]["name"] == meta["name"]}
    assert ("Created", "Created container: istio-init") in reasons
    assert ("Started", "Started container istio-proxy") in reasons


def test_default_profile_uses_larger_proxy_requests(cluster: Cluster) -> None:
    install(cluster, "default")
    cluster.namespace("app", {"istio-injection": "enabled"})
    cluster.create("apps", "deployments", deployment("web", "web", DETAILS_IMAGE), "app")
    cluster.settle()
    proxy = _pod(cluster, "app", "web-")["spec"]["containers"][-1]
    assert proxy["resources"]["requests"] == {"cpu": "100m", "memory": "128Mi"}


@pytest.mark.parametrize(("ns_labels", "pod_labels", "expected"), [
    ({"istio-injection": "enabled"}, {}, True),
    ({"istio-injection": "enabled"}, {"sidecar.istio.io/inject": "false"}, False),
    ({"istio.io/rev": "default"}, {}, True),
    ({}, {}, False),
    ({}, {"sidecar.istio.io/inject": "true"}, True),
    ({}, {"istio.io/rev": "default"}, True),
    ({}, {"istio.io/rev": "default", "sidecar.istio.io/inject": "false"}, False),
    ({"istio-injection": "disabled"}, {"sidecar.istio.io/inject": "true"}, False),
])
def test_injection_rules(ns_labels: dict, pod_labels: dict, expected: bool) -> None:
    pod = {"metadata": {"labels": pod_labels}, "spec": {"containers": [{"name": "a"}]}}
    assert injection_required(ns_labels, pod, "app") is expected


def test_never_in_kube_system_or_host_network() -> None:
    pod = {"metadata": {"labels": {"sidecar.istio.io/inject": "true"}},
           "spec": {"containers": [{"name": "a"}]}}
    assert not injection_required({"istio-injection": "enabled"}, pod, "kube-system")
    pod["spec"]["hostNetwork"] = True
    assert not injection_required({"istio-injection": "enabled"}, pod, "app")


def test_istio_system_pods_have_no_sidecar_except_gateways(istio: Cluster) -> None:
    containers = {p["metadata"]["name"].rsplit("-", 2)[0]: [c["name"] for c in
                                                            p["spec"]["containers"]]
                  for p in istio.pods("istio-system")}
    assert containers == {"istiod": ["discovery"], "istio-ingressgateway": ["istio-proxy"],
                          "istio-egressgateway": ["istio-proxy"]}


def test_kube_inject_injects_templates_and_is_not_injected_twice(istio: Cluster) -> None:
    istio.namespace("foo")
    docs = [{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "httpbin"},
             "spec": {"ports": [{"port": 8000}]}},
            deployment("httpbin", "httpbin", "docker.io/mccutchen/go-httpbin:v2.15.0",
                       ports=[{"containerPort": 8080}])]
    backend = StoreBackend(istio.store)
    cm = backend.get("v1", "ConfigMap", "istio-sidecar-injector", "istio-system")
    values = values_from_configmaps(cm, backend.get("v1", "ConfigMap", "istio", "istio-system"))
    svc, dep = kube_inject_documents(docs, values)
    assert svc == docs[0]
    assert is_injected(dep["spec"]["template"]) and not is_injected(docs[1]["spec"]["template"])
    istio.create("apps", "deployments", dep, "foo")
    istio.settle()
    pod = _pod(istio, "foo", "httpbin-")
    assert [c["name"] for c in pod["spec"]["containers"]] == ["httpbin", "istio-proxy"]
    assert [c["name"] for c in pod["spec"]["initContainers"]] == ["istio-init"]


def test_values_default_when_configmaps_are_empty() -> None:
    values = values_from_configmaps(None, None)
    assert values == SidecarValues()


def test_webhook_without_istiod_rejects_pods_like_kube_apiserver(istio: Cluster) -> None:
    istio.store.delete(istio.rt("", "namespaces"), None, "istio-system")
    istio.settle()
    istio.namespace("app", {"istio-injection": "enabled"})
    istio.create("apps", "deployments", deployment("web", "web", DETAILS_IMAGE), "app")
    istio.settle()
    assert istio.pods("app") == []
    failed = [e["message"] for e in istio.items("", "events", "app")
              if e["reason"] == "FailedCreate"]
    assert failed and 'failed calling webhook "namespace.sidecar-injector.istio.io"' in failed[0]
    assert 'service "istiod" not found' in failed[0]
