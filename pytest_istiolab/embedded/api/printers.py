"""Server-side printing of built-in kinds: the columns ``kubectl get`` shows.

Each printer is a list of columns ``(name, type, priority)`` (priority 1 = ``-o wide``
only) and a function from an object to its cells, following kube-apiserver's printers
(pods' STATUS reasons, services' PORT(S) and EXTERNAL-IP, deployments' READY, ...).
Types without a printer here get the default NAME / CREATED AT table, as on a real server.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .scale import selector_string
from .timefmt import age

Obj = dict[str, Any]
Column = tuple[str, str, int]
RowFn = Callable[[Obj, float], list[Any]]
NONE = "<none>"


def _m(obj: Obj) -> Obj:
    return obj.get("metadata") or {}


def _spec(obj: Obj) -> Obj:
    return obj.get("spec") or {}


def _status(obj: Obj) -> Obj:
    return obj.get("status") or {}


def _age(obj: Obj, now: float) -> str:
    return age(_m(obj).get("creationTimestamp"), now)


# ------------------------------------------------------------------ pods
POD_COLUMNS: list[Column] = [("Name", "string", 0), ("Ready", "string", 0),
                             ("Status", "string", 0), ("Restarts", "string", 0),
                             ("Age", "string", 0), ("IP", "string", 1), ("Node", "string", 1),
                             ("Nominated Node", "string", 1), ("Readiness Gates", "string", 1)]


def pod_row(obj: Obj, now: float) -> list[Any]:
    """kubectl's ``printPod``: native sidecars (restartable init containers) count in READY
    once started, beside ``containers`` (``2/2`` for a pod with Istio 1.27's sidecar)."""
    spec, status = _spec(obj), _status(obj)
    sidecars = _restartable(spec)
    statuses = status.get("containerStatuses") or []
    started = [cs for cs in status.get("initContainerStatuses") or []
               if cs.get("name") in sidecars and cs.get("started")]
    ready = sum(1 for cs in [*started, *statuses] if cs.get("ready"))
    restarts = sum(int(cs.get("restartCount", 0)) for cs in statuses)
    gates = spec.get("readinessGates") or []
    total = len(spec.get("containers") or []) + len(sidecars)
    return [_m(obj).get("name"), f"{ready}/{total}",
            pod_phase_reason(obj), restarts, _age(obj, now), status.get("podIP") or NONE,
            spec.get("nodeName") or NONE, status.get("nominatedNodeName") or NONE,
            f"0/{len(gates)}" if gates else NONE]


def pod_phase_reason(obj: Obj) -> str:
    """The STATUS column: phase, or the reason a container is waiting or terminated."""
    spec, status = _spec(obj), _status(obj)
    reason = status.get("reason") or status.get("phase") or "Pending"
    init_total = len(spec.get("initContainers") or [])
    initializing = False
    sidecars = _restartable(spec)
    for i, cs in enumerate(status.get("initContainerStatuses") or []):
        term, wait = _state(cs, "terminated"), _state(cs, "waiting")
        if term is not None and term.get("exitCode") == 0:
            continue
        if cs.get("name") in sidecars and cs.get("started"):
            continue
        initializing = True
        if term is not None:
            reason = "Init:" + (term.get("reason") or f"ExitCode:{term.get('exitCode')}")
        elif wait is not None and wait.get("reason") and wait["reason"] != "PodInitializing":
            reason = "Init:" + wait["reason"]
        else:
            reason = f"Init:{i}/{init_total}"
        break
    if not initializing:
        running = False
        for cs in reversed(status.get("containerStatuses") or []):
            term, wait = _state(cs, "terminated"), _state(cs, "waiting")
            if wait is not None and wait.get("reason"):
                reason = wait["reason"]
            elif term is not None:
                reason = term.get("reason") or f"ExitCode:{term.get('exitCode')}"
            elif _state(cs, "running") is not None and cs.get("ready"):
                running = True
        if reason == "Completed" and running:
            reason = "Running"
    if _m(obj).get("deletionTimestamp"):
        reason = "Terminating"
    return str(reason)


def _restartable(spec: Obj) -> set[str]:
    return {c.get("name", "") for c in spec.get("initContainers") or []
            if c.get("restartPolicy") == "Always"}


def _state(cs: Obj, name: str) -> Obj | None:
    value = (cs.get("state") or {}).get(name)
    return value if isinstance(value, dict) else None


# -------------------------------------------------------------- services
SERVICE_COLUMNS: list[Column] = [("Name", "string", 0), ("Type", "string", 0),
                                 ("Cluster-IP", "string", 0), ("External-IP", "string", 0),
                                 ("Port(s)", "string", 0), ("Age", "string", 0),
                                 ("Selector", "string", 1)]


def service_row(obj: Obj, now: float) -> list[Any]:
    spec = _spec(obj)
    kind = spec.get("type") or "ClusterIP"
    selector = ",".join(f"{k}={v}" for k, v in sorted((spec.get("selector") or {}).items()))
    return [_m(obj).get("name"), kind, spec.get("clusterIP") or NONE, _external_ip(obj, kind),
            service_ports(spec), _age(obj, now), selector or NONE]


def service_ports(spec: Obj) -> str:
    parts = []
    for p in spec.get("ports") or []:
        proto = p.get("protocol") or "TCP"
        node = f":{p['nodePort']}" if p.get("nodePort") else ""
        parts.append(f"{p.get('port')}{node}/{proto}")
    return ",".join(parts) or NONE


def _external_ip(obj: Obj, kind: str) -> str:
    spec = _spec(obj)
    external = list(spec.get("externalIPs") or [])
    if kind == "ExternalName":
        return str(spec.get("externalName") or NONE)
    if kind == "LoadBalancer":
        ingress = ((_status(obj).get("loadBalancer") or {}).get("ingress")) or []
        ips = external + [i.get("ip") or i.get("hostname") for i in ingress]
        return ",".join(str(i) for i in ips if i) or "<pending>"
    return ",".join(external) or NONE


# ------------------------------------------------------------ workloads
def _template_columns(obj: Obj) -> list[str]:
    containers = ((_spec(obj).get("template") or {}).get("spec") or {}).get("containers") or []
    return [",".join(c.get("name", "") for c in containers) or NONE,
            ",".join(c.get("image", "") for c in containers) or NONE]


DEPLOYMENT_COLUMNS: list[Column] = [("Name", "string", 0), ("Ready", "string", 0),
                                    ("Up-to-date", "integer", 0), ("Available", "integer", 0),
                                    ("Age", "string", 0), ("Containers", "string", 1),
                                    ("Images", "string", 1), ("Selector", "string", 1)]


def deployment_row(obj: Obj, now: float) -> list[Any]:
    spec, status = _spec(obj), _status(obj)
    desired = int(spec.get("replicas", 1))
    return [_m(obj).get("name"), f"{int(status.get('readyReplicas', 0))}/{desired}",
            int(status.get("updatedReplicas", 0)), int(status.get("availableReplicas", 0)),
            _age(obj, now), *_template_columns(obj),
            selector_string(spec.get("selector") or {}) or NONE]


REPLICASET_COLUMNS: list[Column] = [("Name", "string", 0), ("Desired", "integer", 0),
                                    ("Current", "integer", 0), ("Ready", "integer", 0),
                                    ("Age", "string", 0), ("Containers", "string", 1),
                                    ("Images", "string", 1), ("Selector", "string", 1)]


def replicaset_row(obj: Obj, now: float) -> list[Any]:
    spec, status = _spec(obj), _status(obj)
    return [_m(obj).get("name"), int(spec.get("replicas", 1)), int(status.get("replicas", 0)),
            int(status.get("readyReplicas", 0)), _age(obj, now), *_template_columns(obj),
            selector_string(spec.get("selector") or {}) or NONE]


STATEFULSET_COLUMNS: list[Column] = [("Name", "string", 0), ("Ready", "string", 0),
                                     ("Age", "string", 0), ("Containers", "string", 1),
                                     ("Images", "string", 1)]


def statefulset_row(obj: Obj, now: float) -> list[Any]:
    desired = int(_spec(obj).get("replicas", 1))
    ready = int(_status(obj).get("readyReplicas", 0))
    return [_m(obj).get("name"), f"{ready}/{desired}", _age(obj, now), *_template_columns(obj)]


DAEMONSET_COLUMNS: list[Column] = [("Name", "string", 0), ("Desired", "integer", 0),
                                   ("Current", "integer", 0), ("Ready", "integer", 0),
                                   ("Up-to-date", "integer", 0), ("Available", "integer", 0),
                                   ("Node Selector", "string", 0), ("Age", "string", 0)]


def daemonset_row(obj: Obj, now: float) -> list[Any]:
    st = _status(obj)
    selector = ((_spec(obj).get("template") or {}).get("spec") or {}).get("nodeSelector") or {}
    return [_m(obj).get("name"), int(st.get("desiredNumberScheduled", 0)),
            int(st.get("currentNumberScheduled", 0)), int(st.get("numberReady", 0)),
            int(st.get("updatedNumberScheduled", 0)), int(st.get("numberAvailable", 0)),
            ",".join(f"{k}={v}" for k, v in sorted(selector.items())) or NONE, _age(obj, now)]
