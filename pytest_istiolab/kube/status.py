"""Reading Kubernetes object status: readiness of pods and Deployments, and why not.

Pure functions over the JSON objects the API returns, used by :class:`~pytest_istiolab.kube.Kube`
to decide when a wait is over and, when it never is, to say what is wrong in the words
``kubectl describe`` would use (phase, container waiting reasons, recent events).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

Obj = dict[str, Any]
EVENTS_PER_OBJECT = 5
REVISION = "deployment.kubernetes.io/revision"
HASH_LABEL = "pod-template-hash"


def is_terminating(obj: Obj) -> bool:
    return bool((obj.get("metadata") or {}).get("deletionTimestamp"))


def condition(obj: Obj, kind: str) -> Obj | None:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == kind:
            return cond
    return None


def is_pod_ready(pod: Obj) -> bool:
    cond = condition(pod, "Ready")
    return cond is not None and cond.get("status") == "True"


def live_pods(pods: Iterable[Obj]) -> list[Obj]:
    """Pods that are not being deleted (a rollout's old pods are ignored)."""
    return [p for p in pods if not is_terminating(p)]


def pods_ready(pods: Iterable[Obj], count: int | None) -> bool:
    """Every live pod Ready, and at least ``count`` of them (at least one without ``count``)."""
    live = live_pods(pods)
    return len(live) >= (count if count is not None else 1) and all(map(is_pod_ready, live))


def deployment_problem(dep: Obj) -> str | None:
    """None when the Deployment is rolled out and Available; else what is missing."""
    spec, status = dep.get("spec") or {}, dep.get("status") or {}
    meta = dep.get("metadata") or {}
    wanted = spec.get("replicas", 1)
    if status.get("observedGeneration", 0) < meta.get("generation", 0):
        return (f"generation {meta.get('generation')} not yet observed by the controller "
                f"(status is for {status.get('observedGeneration', 0)})")
    ready, updated = status.get("readyReplicas", 0), status.get("updatedReplicas", 0)
    available = condition(dep, "Available")
    problems = []
    if ready != wanted or (wanted and updated != wanted):
        problems.append(f"{ready}/{wanted} replicas ready, {updated} updated")
    old = status.get("replicas", 0) - updated
    if old > 0:  # kubectl rollout status: "N old replicas are pending termination"
        problems.append(f"{old} old replicas are pending termination")
    if wanted and (available is None or available.get("status") != "True"):
        problems.append(f"Available={_cond_text(available)}")
    return "; ".join(problems) or None


def current_hash(dep: Obj, replicasets: Iterable[Obj]) -> str | None:
    """The ``pod-template-hash`` of the Deployment's newest ReplicaSet: the one owned by it
    whose revision annotation is the Deployment's (None before the controller made it)."""
    uid = (dep.get("metadata") or {}).get("uid")
    revision = ((dep.get("metadata") or {}).get("annotations") or {}).get(REVISION)
    for rs in replicasets:
        meta = rs.get("metadata") or {}
        owned = any(ref.get("uid") == uid for ref in meta.get("ownerReferences") or [])
        if owned and revision and (meta.get("annotations") or {}).get(REVISION) == revision:
            return (meta.get("labels") or {}).get(HASH_LABEL)
    return None


def old_pods_serving(deployments: Iterable[Obj], replicasets: list[Obj], pods: list[Obj],
                     endpoints: Iterable[Obj]) -> list[str]:
    """What of a rollout still serves: ``pod P (old ReplicaSet of D)`` for a live pod of an
    older template, ``Endpoints E -> P`` for a ready address naming a pod that is gone,
    terminating or of an older template. Empty when every Deployment has rolled out."""
    by_name = {(p.get("metadata") or {}).get("name"): p for p in pods}
    current: set[str] = set()
    problems = []
    for dep in deployments:
        name, want = dep["metadata"]["name"], current_hash(dep, replicasets)
        labels = ((dep.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
        for pod in live_pods(pods):
            pod_labels = (pod.get("metadata") or {}).get("labels") or {}
            if not labels or any(pod_labels.get(k) != v for k, v in labels.items()):
                continue
            if want is not None and pod_labels.get(HASH_LABEL) == want:
                current.add(pod["metadata"]["name"])
            else:
                problems.append(f"pod {pod['metadata']['name']} (old ReplicaSet of {name})")
    for eps in endpoints:
        for subset in eps.get("subsets") or []:
            for address in subset.get("addresses") or []:
                ref = address.get("targetRef") or {}
                pod = by_name.get(ref.get("name")) if ref.get("kind") == "Pod" else None
                if ref.get("kind") != "Pod" or ref.get("name") in current:
                    continue
                if pod is None or is_terminating(pod) or HASH_LABEL in (
                        (pod.get("metadata") or {}).get("labels") or {}):
                    problems.append(f"Endpoints {eps['metadata']['name']} -> {ref.get('name')}"
                                    + (" (gone)" if pod is None else ""))
    return problems


def selector_string(selector: Obj | None) -> str:
    """A label selector (``matchLabels`` only) as ``a=b,c=d``."""
    labels = (selector or {}).get("matchLabels") or {}
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def pod_summary(pod: Obj) -> str:
    """``name: phase Pending, not ready; container x waiting: ImagePullBackOff (...)``."""
    status = pod.get("status") or {}
    name = (pod.get("metadata") or {}).get("name", "?")
    parts = [f"phase {status.get('phase', 'Unknown')}",
             "ready" if is_pod_ready(pod) else "not ready"]
    if is_terminating(pod):
        parts.append("terminating")
    scheduled = condition(pod, "PodScheduled")
    if scheduled is not None and scheduled.get("status") == "False":
        parts.append(f"unschedulable: {scheduled.get('message') or scheduled.get('reason')}")
    for label, key in (("init container", "initContainerStatuses"),
                       ("container", "containerStatuses")):
        for cs in status.get(key) or []:
            state = _container_state(cs)
            if state:
                parts.append(f"{label} {cs.get('name')} {state}")
    return f"{name}: " + ", ".join(parts)


def _container_state(cs: Obj) -> str | None:
    state = cs.get("state") or {}
    if "waiting" in state:
        waiting = state["waiting"] or {}
        return "waiting: " + _reason_message(waiting)
    if "terminated" in state:
        term = state["terminated"] or {}
        return f"terminated: {_reason_message(term)} (exit code {term.get('exitCode')})"
    if "running" in state and not cs.get("ready"):
        return f"running, not ready (restarts {cs.get('restartCount', 0)})"
    return None


def _reason_message(state: Obj) -> str:
    reason = state.get("reason") or "unknown reason"
    message = state.get("message")
    return f"{reason} ({message})" if message else reason


def _cond_text(cond: Obj | None) -> str:
    if cond is None:
        return "missing"
    text = str(cond.get("status"))
    detail = cond.get("reason") or ""
    if cond.get("message"):
        detail = f"{detail}: {cond['message']}" if detail else cond["message"]
    return f"{text} ({detail})" if detail else text


def event_time(event: Obj) -> str:
    """A sortable timestamp of an Event (RFC 3339 strings sort by time)."""
    meta = event.get("metadata") or {}
    return (event.get("lastTimestamp") or event.get("eventTime") or
            event.get("firstTimestamp") or meta.get("creationTimestamp") or "")


def sort_events(events: Iterable[Obj]) -> list[Obj]:
    """Oldest first; events within one second (timestamps have seconds only) by
    resourceVersion, which real API servers and the embedded one hand out in write order."""
    return sorted(events, key=lambda e: (event_time(e), _rv_number(e)))


def _rv_number(obj: Obj) -> int:
    rv = str((obj.get("metadata") or {}).get("resourceVersion") or "")
    return int(rv) if rv.isdigit() else 0


def involves(event: Obj, name: str) -> bool:
    return (event.get("involvedObject") or event.get("regarding") or {}).get("name") == name


def event_lines(events: Iterable[Obj], name: str, limit: int = EVENTS_PER_OBJECT) -> list[str]:
    """The last ``limit`` events about ``name``, as ``Warning BackOff: message (x3)``."""
    mine = [e for e in sort_events(events) if involves(e, name)][-limit:]
    lines = []
    for event in mine:
        count = event.get("count") or 1
        suffix = f" (x{count})" if count > 1 else ""
        lines.append(f"{event.get('type', 'Normal')} {event.get('reason', '')}: "
                     f"{event.get('message') or event.get('note') or ''}{suffix}")
    return lines


def describe_pods(pods: Iterable[Obj], events: list[Obj]) -> list[str]:
    """Each pod that is not ready (or all, when all are ready) with its recent events."""
    pods = list(pods)
    shown = [p for p in pods if not is_pod_ready(p)] or pods
    lines = []
    for pod in shown:
        lines.append("  pod " + pod_summary(pod))
        name = (pod.get("metadata") or {}).get("name", "")
        lines.extend(f"    event {line}" for line in event_lines(events, name))
    return lines
