"""kube.status: readiness decisions and the words used to explain them."""

from __future__ import annotations

from pytest_istiolab.kube import status as ks


def pod(name: str = "p", ready: bool = True, **status: object) -> dict:
    return {"metadata": {"name": name},
            "status": {"phase": "Running",
                       "conditions": [{"type": "Ready", "status": str(ready)}], **status}}


def dep(replicas: int = 2, generation: int = 1, **status: object) -> dict:
    return {"metadata": {"name": "d", "generation": generation}, "spec": {"replicas": replicas},
            "status": {"observedGeneration": 1, **status}}


AVAILABLE = [{"type": "Available", "status": "True"}]


def test_pods_ready_needs_all_live_pods_and_a_count() -> None:
    assert ks.pods_ready([pod("a"), pod("b")], None)
    assert not ks.pods_ready([pod("a"), pod("b", ready=False)], None)
    assert not ks.pods_ready([], None)
    assert ks.pods_ready([], 0)
    assert not ks.pods_ready([pod("a")], 2)
    old = pod("old", ready=False)
    old["metadata"]["deletionTimestamp"] = "2025-01-01T00:00:00Z"
    assert ks.pods_ready([pod("new"), old], 1)


def test_deployment_problem() -> None:
    ready = dep(readyReplicas=2, updatedReplicas=2, conditions=AVAILABLE)
    assert ks.deployment_problem(ready) is None
    assert ks.deployment_problem(dep(generation=2, readyReplicas=2, updatedReplicas=2,
                                     conditions=AVAILABLE)) == \
        "generation 2 not yet observed by the controller (status is for 1)"
    assert ks.deployment_problem(dep(readyReplicas=1, updatedReplicas=2, conditions=AVAILABLE)) \
        == "1/2 replicas ready, 2 updated"
    assert ks.deployment_problem(dep(readyReplicas=2, updatedReplicas=2)) == "Available=missing"
    scaled_to_zero = dep(replicas=0)
    assert ks.deployment_problem(scaled_to_zero) is None


def test_a_rollout_with_an_old_pod_left_is_not_done() -> None:
    """The new pod is up and counted Ready, but the old ReplicaSet's pod still runs (a
    maxSurge rollout between its two steps): kubectl rollout status is still waiting."""
    mid = dep(replicas=1, readyReplicas=1, updatedReplicas=1, conditions=AVAILABLE)
    mid["status"]["replicas"] = 2
    assert ks.deployment_problem(mid) == "1 old replicas are pending termination"
    mid["status"]["replicas"] = 1
    assert ks.deployment_problem(mid) is None


def _owned(name: str, uid: str, revision: str, phash: str, kind: str = "ReplicaSet") -> dict:
    return {"metadata": {"name": name, "uid": f"{name}-uid", "labels": {
        "app": "gw", "pod-template-hash": phash},
        "annotations": {ks.REVISION: revision},
        "ownerReferences": [{"kind": kind, "uid": uid, "name": "x"}]}}


def test_old_pods_serving_names_old_template_pods_and_stale_endpoints() -> None:
    gw = {"metadata": {"name": "gw", "uid": "gw-uid", "annotations": {ks.REVISION: "3"}},
          "spec": {"selector": {"matchLabels": {"app": "gw"}}}}
    replicasets = [_owned("gw-old", "gw-uid", "2", "old"), _owned("gw-new", "gw-uid", "3", "new")]
    new = pod("gw-new-a")
    new["metadata"]["labels"] = {"app": "gw", "pod-template-hash": "new"}
    old = pod("gw-old-b")
    old["metadata"]["labels"] = {"app": "gw", "pod-template-hash": "old"}

    def endpoints(*names: str) -> dict:
        return {"metadata": {"name": "gw"}, "subsets": [{"addresses": [
            {"ip": "10.0.0.1", "targetRef": {"kind": "Pod", "name": n}} for n in names]}]}
    assert ks.old_pods_serving([gw], replicasets, [new], [endpoints("gw-new-a")]) == []
    assert ks.old_pods_serving([gw], replicasets, [new, old], [endpoints("gw-new-a")]) == [
        "pod gw-old-b (old ReplicaSet of gw)"]
    assert ks.old_pods_serving([gw], replicasets, [new], [endpoints("gw-new-a", "gw-old-b")]) \
        == ["Endpoints gw -> gw-old-b (gone)"]
    old["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"  # draining: still listed
    assert ks.old_pods_serving([gw], replicasets, [new, old], [endpoints("gw-old-b")]) == [
        "Endpoints gw -> gw-old-b"]
    # before the controller made the new ReplicaSet every pod is of an old template
    assert ks.old_pods_serving([gw], replicasets[:1], [new], []) == [
        "pod gw-new-a (old ReplicaSet of gw)"]


def test_deployment_replicas_default_to_one() -> None:
    d = dep(readyReplicas=1, updatedReplicas=1, conditions=AVAILABLE)
    del d["spec"]["replicas"]
    assert ks.deployment_problem(d) is None


def test_pod_summary_names_container_states() -> None:
    p = pod("web", ready=False,
            initContainerStatuses=[{"name": "istio-init", "state": {
                "terminated": {"reason": "Error", "exitCode": 1}}}],
            containerStatuses=[
                {"name": "app", "ready": False, "restartCount": 4, "state": {"running": {}}},
                {"name": "istio-proxy", "ready": False, "state": {
                    "waiting": {"reason": "CrashLoopBackOff", "message": "back-off 5m0s"}}},
                {"name": "ok", "ready": True, "state": {"running": {}}}])
    assert ks.pod_summary(p) == (
        "web: phase Running, not ready, init container istio-init terminated: Error "
        "(exit code 1), container app running, not ready (restarts 4), container istio-proxy "
        "waiting: CrashLoopBackOff (back-off 5m0s)")


def test_pod_summary_unschedulable_and_terminating() -> None:
    p = pod("x", ready=False, phase="Pending")
    p["status"]["conditions"].append({"type": "PodScheduled", "status": "False",
                                      "message": "0/1 nodes are available: Insufficient cpu."})
    p["metadata"]["deletionTimestamp"] = "now"
    assert ks.pod_summary(p) == ("x: phase Pending, not ready, terminating, unschedulable: "
                                 "0/1 nodes are available: Insufficient cpu.")


def test_event_lines_newest_last_and_limited() -> None:
    events = [{"involvedObject": {"name": "p"}, "type": "Warning", "reason": f"R{i}",
               "message": f"m{i}", "count": i, "lastTimestamp": f"2025-01-01T00:00:0{i}Z"}
              for i in (3, 1, 2)] + [{"involvedObject": {"name": "other"}, "reason": "X"}]
    assert ks.event_lines(events, "p", limit=2) == ["Warning R2: m2 (x2)", "Warning R3: m3 (x3)"]
    assert ks.event_lines(events, "nobody") == []


def test_events_in_one_second_keep_write_order() -> None:
    same = "2025-01-01T00:00:00Z"
    events = [{"metadata": {"resourceVersion": rv}, "reason": reason, "lastTimestamp": same}
              for rv, reason in (("12", "Started"), ("9", "Scheduled"), ("10", "Pulling"))]
    assert [e["reason"] for e in ks.sort_events(events)] == ["Scheduled", "Pulling", "Started"]


def test_describe_pods_shows_only_the_unready_ones() -> None:
    lines = ks.describe_pods([pod("good"), pod("bad", ready=False)],
                             [{"involvedObject": {"name": "bad"}, "reason": "Unhealthy",
                               "message": "Readiness probe failed"}])
    assert lines == ["  pod bad: phase Running, not ready",
                     "    event Normal Unhealthy: Readiness probe failed"]


def test_selector_string() -> None:
    assert ks.selector_string({"matchLabels": {"version": "v1", "app": "reviews"}}) == \
        "app=reviews,version=v1"
    assert ks.selector_string(None) == ""
