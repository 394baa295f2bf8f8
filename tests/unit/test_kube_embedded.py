"""Kube against the embedded API server (Store + Runtime + ApiServer, no controllers).

Pods and Deployments are made by hand, so readiness is whatever the test writes into status;
exec runs a fake handler (echo, cat, exit N, fail).
"""

from __future__ import annotations

import threading

import pytest
from kube_testkit import (
    NS,
    READY_DEPLOYMENT,
    RELEASE,
    Cluster,
    add_pod,
    cluster,
    deployment,
    kube,
    pod,
)

from pytest_istiolab.errors import ClusterError, ExecError, ReadinessError
from pytest_istiolab.kube import Kube, ObjectRef

__all__ = ["cluster", "kube"]  # fixtures

# ------------------------------------------------------------------ basics


def test_ping_and_names(kube: Kube, cluster: Cluster) -> None:
    assert kube.ping().startswith("v1.")
    assert (kube.server, kube.context_name) == (cluster.url, "embedded")


def test_namespace_created_with_labels(kube: Kube) -> None:
    ns = kube.get("v1", "Namespace", NS)
    assert ns is not None and ns["metadata"]["labels"]["istio-injection"] == "enabled"


def test_apply_get_list_and_idempotence(kube: Kube) -> None:
    docs = [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"},
             "data": {"k": "1"}},
            {"apiVersion": "v1", "kind": "ConfigMap",
             "metadata": {"name": "b", "labels": {"x": "y"}}}]
    refs = kube.apply(docs, namespace=NS)
    assert refs == [ObjectRef("v1", "ConfigMap", "a", NS), ObjectRef("v1", "ConfigMap", "b", NS)]
    docs[0]["data"]["k"] = "2"
    kube.apply(docs, namespace=NS)
    got = kube.get("v1", "ConfigMap", "a", NS)
    assert got is not None and got["data"] == {"k": "2"}
    assert [c["metadata"]["name"] for c in kube.list("v1", "ConfigMap", NS, "x=y")] == ["b"]
    listed = kube.list("v1", "ConfigMap")
    assert {c["kind"] for c in listed} == {"ConfigMap"}
    assert kube.get("v1", "ConfigMap", "absent", NS) is None


def test_apply_keeps_an_explicit_namespace_and_defaults_to_default(kube: Kube) -> None:
    refs = kube.apply([{"apiVersion": "v1", "kind": "ConfigMap",
                        "metadata": {"name": "c", "namespace": "default"}},
                       {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "d"}}])
    assert [r.namespace for r in refs] == ["default", "default"]
    ns_ref = kube.apply([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x"}}],
                        namespace=NS)
    assert ns_ref[0].namespace is None


def test_apply_reports_to_on_command(kube: Kube) -> None:
    kube.apply([{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "r"}}], NS)
    assert ("apply configmap/r -n lab", "serverside-applied") in kube.commands  # type: ignore


def test_apply_unknown_kind_asks_about_the_crd(kube: Kube) -> None:
    with pytest.raises(ClusterError) as info:
        kube.apply([{"apiVersion": "example.com/v1", "kind": "Gizmo",
                     "metadata": {"name": "g"}}], NS)
    assert "kind Gizmo in example.com/v1" in str(info.value)
    assert "is the CRD installed?" in str(info.value)


def test_apply_a_crd_then_its_instances(kube: Kube) -> None:
    schema = {"openAPIV3Schema": {"type": "object",
                                  "x-kubernetes-preserve-unknown-fields": True}}
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "metadata": {"name": "widgets.example.com"},
           "spec": {"group": "example.com", "scope": "Namespaced",
                    "names": {"plural": "widgets", "singular": "widget", "kind": "Widget",
                              "listKind": "WidgetList"},
                    "versions": [{"name": "v1", "served": True, "storage": True,
                                  "schema": schema}]}}
    kube.list("v1", "ConfigMap", NS)  # discovery cached before the CRD exists
    kube.apply([crd])
    [ref] = kube.apply([{"apiVersion": "example.com/v1", "kind": "Widget",
                         "metadata": {"name": "w"}, "spec": {"size": 3}}], NS)
    assert str(ref) == "widget.example.com/w -n lab"
    got = kube.get("example.com/v1", "Widget", "w", NS)
    assert got is not None and got["spec"] == {"size": 3}


def test_apply_rejected_object_names_object_and_message(kube: Kube) -> None:
    with pytest.raises(ClusterError) as info:
        kube.apply([{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "Bad_Name"}}],
                   NS)
    assert str(info.value).startswith("apply configmap/Bad_Name -n lab failed: ")


def test_apply_document_without_name(kube: Kube) -> None:
    with pytest.raises(ClusterError, match="lacks apiVersion, kind or metadata.name"):
        kube.apply([{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}}], NS)


def test_delete_waits_and_ignores_missing(kube: Kube) -> None:
    [ref] = kube.apply([{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "z"}}], NS)
    kube.delete(ref)
    assert kube.get("v1", "ConfigMap", "z", NS) is None
    kube.delete(ref)
    kube.delete(ObjectRef("example.com/v1", "Nothing", "n", NS))
    assert ("delete configmap/z -n lab", "not found") in kube.commands  # type: ignore


def test_delete_all_in_reverse_order(kube: Kube) -> None:
    refs = kube.apply([{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": n}}
                       for n in ("first", "second")], NS)
    kube.commands.clear()  # type: ignore[attr-defined]
    kube.delete_all(refs)
    assert [d for d, _ in kube.commands] == [  # type: ignore[attr-defined]
        "delete configmap/second -n lab", "delete configmap/first -n lab"]
    assert kube.list("v1", "ConfigMap", NS) == []


def test_delete_namespace(kube: Kube) -> None:
    kube.create_namespace("gone", {})
    kube.delete_namespace("gone")
    assert kube.get("v1", "Namespace", "gone") is None


def test_raw_get_and_ref_for(kube: Kube) -> None:
    assert any(g["name"] == "apps" for g in kube.raw_get("/apis")["groups"])
    doc = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}}
    assert kube.ref_for(doc, NS) == ObjectRef("apps/v1", "Deployment", "d", NS)
    assert kube.ref_for({"apiVersion": "x.io/v1", "kind": "Y", "metadata": {"name": "y"}}) == \
        ObjectRef("x.io/v1", "Y", "y", None)

# ------------------------------------------------------------------ exec, logs, events


def test_exec_separates_stdout_stderr_and_exit_code(kube: Kube, cluster: Cluster) -> None:
    add_pod(cluster, "sleep-1", {"app": "sleep"})
    ok = kube.exec(NS, "sleep-1", ["echo", "hello", "mesh"])
    assert (ok.exit_code, ok.stdout, ok.stderr) == (0, "hello mesh\n", "")
    failed = kube.exec(NS, "sleep-1", ["fail", "boom"], container="app")
    assert (failed.exit_code, failed.stdout, failed.stderr) == (3, "partial out\n", "boom\n")
    assert kube.exec(NS, "sleep-1", ["exit", "56"]).exit_code == 56
    description, output = kube.commands[-1]  # type: ignore[attr-defined]
    assert description == "exec lab/sleep-1 -- exit 56" and output.startswith("exit code 56")


def test_exec_with_stdin(kube: Kube, cluster: Cluster) -> None:
    add_pod(cluster, "sleep-1", {"app": "sleep"})
    assert kube.exec(NS, "sleep-1", ["cat"], stdin="line 1\nline 2\n").stdout == \
        "line 1\nline 2\n"


def test_exec_in_parallel_threads(kube: Kube, cluster: Cluster) -> None:
    add_pod(cluster, "sleep-1", {"app": "sleep"})
    results: dict[int, str] = {}

    def run(i: int) -> None:
        results[i] = kube.exec(NS, "sleep-1", ["echo", str(i)]).stdout

    threads = [threading.Thread(target=run, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert results == {i: f"{i}\n" for i in range(6)}


def test_exec_in_a_missing_pod(kube: Kube) -> None:
    with pytest.raises(ExecError, match="cannot exec in pod ghost: it does not exist in "
                                        "namespace lab"):
        kube.exec(NS, "ghost", ["echo"])


def test_exec_in_a_missing_container(kube: Kube, cluster: Cluster) -> None:
    add_pod(cluster, "sleep-1", {"app": "sleep"})
    with pytest.raises(ExecError) as info:
        kube.exec(NS, "sleep-1", ["echo"], container="nope")
    assert str(info.value).startswith(
        "cannot exec in pod lab/sleep-1 container nope: container nope is not valid for pod")


def test_exec_that_does_not_finish(kube: Kube, cluster: Cluster) -> None:
    add_pod(cluster, "sleep-1", {"app": "sleep"})
    RELEASE.clear()
    try:
        with pytest.raises(ExecError, match=r"exec lab/sleep-1 -- block did not finish within "
                                            r"0.3 s"):
            kube.exec(NS, "sleep-1", ["block"], timeout=0.3)
    finally:
        RELEASE.set()
    assert kube.exec(NS, "sleep-1", ["block"]).stdout == "released\n"


def test_logs(kube: Kube, cluster: Cluster) -> None:
    add_pod(cluster, "p", {"app": "p"})
    now = cluster.runtime.clock.now()
    cluster.runtime.logs.append(NS, "p", "app", "one\ntwo\nthree\n", now)
    assert kube.logs(NS, "p", "app") == "one\ntwo\nthree\n"
    assert kube.logs(NS, "p", "app", tail_lines=1) == "three\n"


def test_events_filtered_and_sorted(kube: Kube, cluster: Cluster) -> None:
    for name, who, second in (("e2", "p", 2), ("e1", "p", 1), ("e3", "q", 3)):
        when = f"2025-01-01T00:00:0{second}Z"
        cluster.put("events", {"apiVersion": "v1", "kind": "Event",
                               "metadata": {"name": name, "namespace": NS},
                               "involvedObject": {"kind": "Pod", "name": who},
                               "reason": "Pulled", "message": name, "lastTimestamp": when})
    assert [e["message"] for e in kube.events(NS, "p")] == ["e1", "e2"]
    assert [e["message"] for e in kube.events(NS)] == ["e1", "e2", "e3"]

# ------------------------------------------------------------------ pods and readiness


def test_pods_and_first_pod_prefers_ready(kube: Kube, cluster: Cluster) -> None:
    add_pod(cluster, "a-unready", {"app": "a"}, ready=False)
    add_pod(cluster, "b-ready", {"app": "a"})
    assert {p["metadata"]["name"] for p in kube.pods(NS, "app=a")} == {"a-unready", "b-ready"}
    assert kube.first_pod(NS, "app=a") == "b-ready"
    with pytest.raises(ReadinessError, match="no pod matches app=none in namespace lab"):
        kube.first_pod(NS, "app=none")


def test_wait_for_pods_ready_returns_at_once_when_ready(kube: Kube, cluster: Cluster) -> None:
    add_pod(cluster, "r1", {"app": "r"})
    add_pod(cluster, "r2", {"app": "r"})
    ready = kube.wait_for_pods_ready(NS, "app=r", count=2)
    assert sorted(p["metadata"]["name"] for p in ready) == ["r1", "r2"]


def test_wait_for_pods_ready_follows_the_watch(kube: Kube, cluster: Cluster) -> None:
    add_pod(cluster, "slow", {"app": "slow"}, ready=False)
    _, ready_status = pod("slow", {"app": "slow"})
    timer = threading.Timer(0.3, cluster.set_status, args=("pods", "slow", ready_status))
    timer.start()
    try:
        [ready] = kube.wait_for_pods_ready(NS, "app=slow", timeout=10)
    finally:
        timer.cancel()
    assert ready["metadata"]["name"] == "slow"


def test_wait_for_pods_ready_explains_a_timeout(kube: Kube, cluster: Cluster) -> None:
    add_pod(cluster, "stuck", {"app": "stuck"}, ready=False, waiting="ImagePullBackOff")
    cluster.put("events", {"apiVersion": "v1", "kind": "Event",
                           "metadata": {"name": "ev", "namespace": NS},
                           "involvedObject": {"kind": "Pod", "name": "stuck"}, "type": "Warning",
                           "reason": "Failed", "message": "Failed to pull image \"x\"",
                           "count": 4, "lastTimestamp": "2025-01-01T00:00:00Z"})
    with pytest.raises(ReadinessError) as info:
        kube.wait_for_pods_ready(NS, "app=stuck", timeout=0.3)
    message = str(info.value)
    assert "pods app=stuck in namespace lab not ready after 0.3 s" in message
    assert "pod stuck: phase Pending, not ready" in message
    assert "container app waiting: ImagePullBackOff (Back-off pulling image \"x\")" in message
    assert "event Warning Failed: Failed to pull image \"x\" (x4)" in message


def test_wait_for_pods_counts(kube: Kube, cluster: Cluster) -> None:
    add_pod(cluster, "only", {"app": "c"})
    with pytest.raises(ReadinessError, match="wanted 2 ready, 1 of 1 are"):
        kube.wait_for_pods_ready(NS, "app=c", count=2, timeout=0.2)
    with pytest.raises(ReadinessError, match="no matching pods exist"):
        kube.wait_for_pods_ready(NS, "app=nothing", timeout=0.2)


def test_wait_for_deployments(kube: Kube, cluster: Cluster) -> None:
    cluster.put("deployments", deployment("web"), group="apps", status=READY_DEPLOYMENT)
    [dep] = kube.wait_for_deployments(NS, ["web"])
    assert dep["metadata"]["name"] == "web"
    assert [d["metadata"]["name"] for d in kube.wait_for_deployments(NS)] == ["web"]


def test_wait_for_deployments_explains_with_pods(kube: Kube, cluster: Cluster) -> None:
    cluster.put("deployments", deployment("ready"), group="apps", status=READY_DEPLOYMENT)
    cluster.put("deployments", deployment("broken"), group="apps",
                status={"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1,
                        "conditions": [{"type": "Available", "status": "False",
                                        "reason": "MinimumReplicasUnavailable"}]})
    add_pod(cluster, "broken-abc", {"app": "broken"}, ready=False, waiting="CrashLoopBackOff")
    with pytest.raises(ReadinessError) as info:
        kube.wait_for_deployments(NS, ["ready", "broken", "missing"], timeout=0.3)
    message = str(info.value)
    assert "deployment broken: 0/1 replicas ready, 1 updated; Available=False " \
           "(MinimumReplicasUnavailable)" in message
    assert "pod broken-abc: phase Pending" in message and "CrashLoopBackOff" in message
    assert "deployment missing: does not exist" in message
    assert "deployment ready:" not in message
