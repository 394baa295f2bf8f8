"""Controllers against a Store/Runtime directly: bootstrap, Deployments, pods, events.

Supports checks L1-C09 and L2-C02 (pods Running/Ready, READY counts), L2-C03 (the kubelet
events a describe shows) and L1-C08 (namespaces).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

import pytest
from controllers_testkit import DETAILS_IMAGE, Cluster, deployment, running_cluster

from pytest_istiolab.embedded import images


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    with running_cluster() as c:
        c.settle()
        yield c


def test_bootstrap_has_system_namespaces_node_and_kubernetes_service(cluster: Cluster) -> None:
    names = {n["metadata"]["name"]: n for n in cluster.items("", "namespaces")}
    assert set(names) >= {"default", "kube-system", "kube-public", "kube-node-lease"}
    assert all(n["status"]["phase"] == "Active" for n in names.values())
    node = cluster.get("", "nodes", None, cluster.runtime.node_name)
    assert {"type": "InternalIP", "address": "127.0.0.1"} in node["status"]["addresses"]
    assert {"type": "Hostname", "address": cluster.runtime.node_name} in node["status"]["addresses"]
    assert node["status"]["nodeInfo"]["kubeletVersion"].startswith("v1.33.")
    ready = [c for c in node["status"]["conditions"] if c["type"] == "Ready"]
    assert ready and ready[0]["status"] == "True"
    svc = cluster.get("", "services", "default", "kubernetes")
    assert svc["spec"]["clusterIP"] == "10.96.0.1"
    assert svc["spec"]["ports"][0]["port"] == 443 and svc["spec"]["ports"][0]["name"] == "https"
    assert cluster.get("", "endpoints", "default", "kubernetes")["subsets"]
    for ns in ("default", "kube-system", "kube-public", "kube-node-lease"):
        cluster.get("", "serviceaccounts", ns, "default")
        assert "BEGIN CERTIFICATE" in cluster.get("", "configmaps", ns,
                                                  "kube-root-ca.crt")["data"]["ca.crt"]


def test_new_namespace_gets_default_serviceaccount_and_root_ca(cluster: Cluster) -> None:
    cluster.namespace("foo")
    cluster.get("", "serviceaccounts", "foo", "default")
    cluster.get("", "configmaps", "foo", "kube-root-ca.crt")


def test_deployment_creates_replicaset_and_running_ready_pods(cluster: Cluster) -> None:
    dep = cluster.create("apps", "deployments", deployment("details-v1", "details",
                                                           DETAILS_IMAGE, 2), "default")
    cluster.settle()
    rss = cluster.items("apps", "replicasets", "default")
    assert len(rss) == 1
    rs = rss[0]
    phash = rs["metadata"]["labels"]["pod-template-hash"]
    assert rs["metadata"]["name"] == f"details-v1-{phash}" and 8 <= len(phash) <= 10
    assert rs["metadata"]["ownerReferences"][0]["uid"] == dep["metadata"]["uid"]
    pods = cluster.pods("default", "details-v1-")
    assert len(pods) == 2
    ips = set()
    for pod in pods:
        assert pod["metadata"]["name"].startswith(rs["metadata"]["name"] + "-")
        assert len(pod["metadata"]["name"]) == len(rs["metadata"]["name"]) + 6
        assert pod["metadata"]["ownerReferences"][0]["kind"] == "ReplicaSet"
        assert pod["metadata"]["labels"]["pod-template-hash"] == phash
        st = pod["status"]
        assert st["phase"] == "Running" and st["hostIP"] == "127.0.0.1"
        assert ipaddress.ip_address(st["podIP"]) in ipaddress.ip_network("10.244.0.0/16")
        ips.add(st["podIP"])
        conds = {c["type"]: c["status"] for c in st["conditions"]}
        assert conds["PodScheduled"] == conds["Initialized"] == "True"
        assert conds["ContainersReady"] == conds["Ready"] == "True"
        cs = st["containerStatuses"][0]
        assert cs["ready"] and cs["started"] and cs["restartCount"] == 0
        assert cs["imageID"].startswith("docker.io/istio/examples-bookinfo-details-v1@sha256:")
        assert "startedAt" in cs["state"]["running"]
        assert pod["spec"]["nodeName"] == cluster.runtime.node_name
    assert len(ips) == 2
    status = cluster.get("apps", "deployments", "default", "details-v1")["status"]
    assert status["replicas"] == status["readyReplicas"] == status["availableReplicas"] == 2
    assert status["updatedReplicas"] == 2 and status["observedGeneration"] == 1
    conds = {c["type"]: c for c in status["conditions"]}
    assert conds["Available"]["status"] == "True"
    assert conds["Progressing"]["reason"] == "NewReplicaSetAvailable"


def test_template_change_rolls_out_a_new_replicaset(cluster: Cluster) -> None:
    cluster.create("apps", "deployments", deployment("web", "web", DETAILS_IMAGE, 2), "default")
    cluster.settle()
    old = cluster.items("apps", "replicasets", "default")[0]["metadata"]["name"]

    def bump(d: dict) -> None:
        d["spec"]["template"]["metadata"]["annotations"] = {"restartedAt": "now"}
    cluster.store.mutate(cluster.rt("apps", "deployments"), "default", "web", bump)
    cluster.settle()
    rss = {r["metadata"]["name"]: r for r in cluster.items("apps", "replicasets", "default")}
    assert len(rss) == 2
    new = next(n for n in rss if n != old)
    assert rss[old]["spec"]["replicas"] == 0 and rss[new]["spec"]["replicas"] == 2
    assert rss[new]["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"
    assert {p["metadata"]["name"].rsplit("-", 1)[0] for p in cluster.pods("default")} == {new}
    status = cluster.get("apps", "deployments", "default", "web")["status"]
    assert status["observedGeneration"] == 2 and status["updatedReplicas"] == 2


def test_scaling_changes_the_pod_count(cluster: Cluster) -> None:
    cluster.create("apps", "deployments", deployment("web", "web", DETAILS_IMAGE, 1), "default")
    cluster.settle()
    drt = cluster.rt("apps", "deployments")
    cluster.store.mutate(drt, "default", "web", lambda d: d["spec"].update(replicas=3))
    cluster.settle()
    assert len(cluster.pods("default", "web-")) == 3
    cluster.store.mutate(drt, "default", "web", lambda d: d["spec"].update(replicas=1))
    cluster.settle()
    assert len(cluster.pods("default", "web-")) == 1
    assert cluster.get("apps", "deployments", "default", "web")["status"]["replicas"] == 1


def test_deleted_pod_is_replaced_and_its_logs_forgotten(cluster: Cluster) -> None:
    cluster.create("apps", "deployments", deployment("web", "web", DETAILS_IMAGE, 1), "default")
    cluster.settle()
    pod = cluster.pods("default", "web-")[0]["metadata"]["name"]
    cluster.runtime.logs.append("default", pod, "web", "hello", 1.0)
    cluster.store.delete(cluster.rt("", "pods"), "default", pod)
    cluster.settle()
    pods = cluster.pods("default", "web-")
    assert len(pods) == 1 and pods[0]["metadata"]["name"] != pod
    assert cluster.runtime.logs.read("default", pod, "web") == ""


def test_statefulset_creates_ordinal_pods(cluster: Cluster) -> None:
    cluster.namespace("istio-system")
    sts = {"metadata": {"name": "loki"}, "spec": {
        "replicas": 1, "serviceName": "loki-headless",
        "selector": {"matchLabels": {"app": "loki"}},
        "template": {"metadata": {"labels": {"app": "loki"}}, "spec": {"containers": [
            {"name": "loki", "image": "docker.io/grafana/loki:3.4.2"}]}}}}
    cluster.create("apps", "statefulsets", sts, "istio-system")
    cluster.settle()
    pod = cluster.get("", "pods", "istio-system", "loki-0")
    assert pod["status"]["phase"] == "Running"
    assert pod["metadata"]["labels"]["statefulset.kubernetes.io/pod-name"] == "loki-0"
    assert (pod["spec"]["hostname"], pod["spec"]["subdomain"]) == ("loki-0", "loki-headless")
    status = cluster.get("apps", "statefulsets", "istio-system", "loki")["status"]
    assert status["readyReplicas"] == 1 and status["replicas"] == 1


def test_pod_events_are_recorded_like_the_kubelet(cluster: Cluster) -> None:
    cluster.create("apps", "deployments", deployment("web", "web", DETAILS_IMAGE), "default")
    cluster.settle()
    pod = cluster.pods("default", "web-")[0]
    name = pod["metadata"]["name"]
    events = [e for e in cluster.items("", "events", "default")
              if e["involvedObject"]["name"] == name]
    by_reason = {e["reason"]: e for e in events}
    sched = by_reason["Scheduled"]
    assert sched["message"] == f"Successfully assigned default/{name} to " \
        f"{cluster.runtime.node_name}"
    assert sched["source"]["component"] == "default-scheduler"
    for reason in ("Pulled", "Created", "Started"):
        ev = by_reason[reason]
        assert ev["type"] == "Normal" and ev["source"]["component"] == "kubelet"
        assert ev["involvedObject"]["fieldPath"] == "spec.containers{web}"
        assert ev["count"] == 1 and ev["firstTimestamp"] and ev["lastTimestamp"]
    assert by_reason["Started"]["message"] == "Started container web"


def test_unmodelled_image_never_starts_and_says_why(cluster: Cluster) -> None:
    image = "docker.io/library/nginx:1.27"
    cluster.create("apps", "deployments", deployment("nginx", "nginx", image), "default")
    cluster.settle()
    pod = cluster.pods("default", "nginx-")[0]
    assert pod["status"]["phase"] == "Pending"
    waiting = pod["status"]["containerStatuses"][0]["state"]["waiting"]
    assert waiting["reason"] == "ImagePullBackOff"
    assert f"does not model image {image}" in waiting["message"]
    assert "docker.io/istio/examples-bookinfo-details-v1" in waiting["message"]
    ready = {c["type"]: c["status"] for c in pod["status"]["conditions"]}["Ready"]
    assert ready == "False"
    warnings = {e["reason"] for e in cluster.items("", "events", "default")
                if e["type"] == "Warning" and e["involvedObject"]["name"] ==
                pod["metadata"]["name"]}
    assert warnings == {"Failed", "BackOff"}
    status = cluster.get("apps", "deployments", "default", "nginx")["status"]
    assert {c["type"]: c["status"] for c in status["conditions"]}["Available"] == "False"


@pytest.mark.parametrize(("image", "kind"), [
    ("docker.io/istio/examples-bookinfo-reviews-v2:1.20.3", "bookinfo-reviews"),
    ("istio/examples-bookinfo-productpage-v1:1.17.0", "bookinfo-productpage"),
    ("docker.io/mccutchen/go-httpbin:v2.15.0", "go-httpbin"),
    ("kennethreitz/httpbin", "httpbin"),
    ("curlimages/curl", "curl"),
    ("fortio/fortio:latest_release", "fortio"),
    ("docker.io/istio/proxyv2:1.26.0", "proxyv2"),
    ("quay.io/kiali/kiali:v2.8", "kiali"),
    ("prom/prometheus:v3.2.1", "prometheus"),
    ("nginx", None),
])
def test_workload_kind_by_image(image: str, kind: str | None) -> None:
    assert images.workload_kind(image) == kind


def test_events_list_in_the_order_they_happened(cluster: Cluster) -> None:
    cluster.create("apps", "deployments", deployment("web", "web", DETAILS_IMAGE), "default")
    cluster.settle()
    name = cluster.pods("default", "web-")[0]["metadata"]["name"]
    reasons = [e["reason"] for e in cluster.items("", "events", "default")
               if e["involvedObject"]["name"] == name]  # the store lists by name
    assert reasons == ["Scheduled", "Pulling", "Pulled", "Created", "Started"]


def test_istiod_puts_its_root_cert_in_every_namespace(cluster: Cluster) -> None:
    assert cluster.store.try_get(cluster.rt("", "configmaps"), "default",
                                 "istio-ca-root-cert") is None
    cluster.namespace("istio-system")
    cluster.create("apps", "deployments", deployment("istiod", "istiod",
                                                     "docker.io/istio/pilot:1.26.0"),
                   "istio-system")
    cluster.settle()
    for ns in ("default", "istio-system"):
        cm = cluster.get("", "configmaps", ns, "istio-ca-root-cert")
        assert "BEGIN CERTIFICATE" in cm["data"]["root-cert.pem"]
    assert cluster.store.try_get(cluster.rt("", "configmaps"), "kube-system",
                                 "istio-ca-root-cert") is None
    cluster.namespace("foo")
    cluster.get("", "configmaps", "foo", "istio-ca-root-cert")
