"""Server-side printing of the remaining built-in kinds the labs list with ``kubectl get``:
namespaces, nodes, config maps, secrets, service accounts, events, endpoints, HPAs, PDBs
and jobs (see :mod:`printers` for pods, services and workloads)."""

from __future__ import annotations

from typing import Any

from .printers import NONE, Column, Obj, _age, _m, _spec, _status
from .timefmt import age

NAMESPACE_COLUMNS: list[Column] = [("Name", "string", 0), ("Status", "string", 0),
                                   ("Age", "string", 0)]


def namespace_row(obj: Obj, now: float) -> list[Any]:
    return [_m(obj).get("name"), _status(obj).get("phase") or "Active", _age(obj, now)]


NODE_COLUMNS: list[Column] = [("Name", "string", 0), ("Status", "string", 0),
                              ("Roles", "string", 0), ("Age", "string", 0),
                              ("Version", "string", 0), ("Internal-IP", "string", 1),
                              ("External-IP", "string", 1), ("OS-Image", "string", 1),
                              ("Kernel-Version", "string", 1), ("Container-Runtime", "string", 1)]


def node_row(obj: Obj, now: float) -> list[Any]:
    status = _status(obj)
    conds = {c.get("type"): c.get("status") for c in status.get("conditions") or []}
    ready = "Ready" if conds.get("Ready") == "True" else "NotReady"
    if _spec(obj).get("unschedulable"):
        ready += ",SchedulingDisabled"
    prefix = "node-role.kubernetes.io/"
    roles = sorted(k[len(prefix):] for k in (_m(obj).get("labels") or {}) if k.startswith(prefix))
    addrs = {a.get("type"): a.get("address") for a in status.get("addresses") or []}
    info = status.get("nodeInfo") or {}
    return [_m(obj).get("name"), ready, ",".join(roles) or NONE, _age(obj, now),
            info.get("kubeletVersion", ""), addrs.get("InternalIP") or NONE,
            addrs.get("ExternalIP") or NONE, info.get("osImage") or "<unknown>",
            info.get("kernelVersion") or "<unknown>",
            info.get("containerRuntimeVersion") or "<unknown>"]


CONFIGMAP_COLUMNS: list[Column] = [("Name", "string", 0), ("Data", "integer", 0),
                                   ("Age", "string", 0)]


def configmap_row(obj: Obj, now: float) -> list[Any]:
    count = len(obj.get("data") or {}) + len(obj.get("binaryData") or {})
    return [_m(obj).get("name"), count, _age(obj, now)]


SECRET_COLUMNS: list[Column] = [("Name", "string", 0), ("Type", "string", 0),
                                ("Data", "integer", 0), ("Age", "string", 0)]


def secret_row(obj: Obj, now: float) -> list[Any]:
    return [_m(obj).get("name"), obj.get("type") or "Opaque", len(obj.get("data") or {}),
            _age(obj, now)]


SERVICEACCOUNT_COLUMNS: list[Column] = [("Name", "string", 0), ("Secrets", "integer", 0),
                                        ("Age", "string", 0)]


def serviceaccount_row(obj: Obj, now: float) -> list[Any]:
    return [_m(obj).get("name"), len(obj.get("secrets") or []), _age(obj, now)]


EVENT_COLUMNS: list[Column] = [("Last Seen", "string", 0), ("Type", "string", 0),
                               ("Reason", "string", 0), ("Object", "string", 0),
                               ("Message", "string", 0), ("Subobject", "string", 1),
                               ("Source", "string", 1), ("First Seen", "string", 1),
                               ("Count", "string", 1), ("Name", "string", 1)]


def event_row(obj: Obj, now: float) -> list[Any]:
    involved = obj.get("involvedObject") or {}
    last = obj.get("lastTimestamp") or obj.get("eventTime") or _m(obj).get("creationTimestamp")
    first = obj.get("firstTimestamp") or obj.get("eventTime") or last
    source = obj.get("source") or {}
    return [age(last, now), obj.get("type") or "", obj.get("reason") or "",
            f"{str(involved.get('kind', '')).lower()}/{involved.get('name', '')}",
            (obj.get("message") or "").strip(), involved.get("fieldPath") or "",
            ", ".join(v for v in (source.get("component"), source.get("host")) if v),
            age(first, now), int(obj.get("count") or 1), _m(obj).get("name")]


ENDPOINTS_COLUMNS: list[Column] = [("Name", "string", 0), ("Endpoints", "string", 0),
                                   ("Age", "string", 0)]


def endpoints_row(obj: Obj, now: float) -> list[Any]:
    pairs = []
    for subset in obj.get("subsets") or []:
        for addr in subset.get("addresses") or []:
            ports = subset.get("ports") or [{}]
            pairs += [f"{addr.get('ip')}:{p['port']}" if "port" in p else str(addr.get("ip"))
                      for p in ports]
    text = ",".join(pairs[:3]) + (f" + {len(pairs) - 3} more..." if len(pairs) > 3 else "")
    return [_m(obj).get("name"), text or NONE, _age(obj, now)]


HPA_COLUMNS: list[Column] = [("Name", "string", 0), ("Reference", "string", 0),
                             ("Targets", "string", 0), ("MinPods", "string", 0),
                             ("MaxPods", "string", 0), ("Replicas", "string", 0),
                             ("Age", "string", 0)]


def hpa_row(obj: Obj, now: float) -> list[Any]:
    spec, status = _spec(obj), _status(obj)
    ref = spec.get("scaleTargetRef") or {}
    targets = []
    current = {m.get("resource", {}).get("name"): m for m in status.get("currentMetrics") or []}
    for metric in spec.get("metrics") or []:
        res = metric.get("resource") or {}
        goal = (res.get("target") or {}).get("averageUtilization")
        seen = ((current.get(res.get("name")) or {}).get("resource") or {}).get("current") or {}
        value = f"{seen['averageUtilization']}%" if "averageUtilization" in seen else "<unknown>"
        targets.append(f"{res.get('name')}: {value}/{goal}%")
    return [_m(obj).get("name"), f"{ref.get('kind')}/{ref.get('name')}",
            ", ".join(targets) or "<none>", spec.get("minReplicas", 1), spec.get("maxReplicas"),
            status.get("currentReplicas", 0), _age(obj, now)]


PDB_COLUMNS: list[Column] = [("Name", "string", 0), ("Min Available", "string", 0),
                             ("Max Unavailable", "string", 0),
                             ("Allowed Disruptions", "integer", 0), ("Age", "string", 0)]


def pdb_row(obj: Obj, now: float) -> list[Any]:
    spec = _spec(obj)
    return [_m(obj).get("name"), str(spec.get("minAvailable", "N/A")),
            str(spec.get("maxUnavailable", "N/A")),
            int(_status(obj).get("disruptionsAllowed", 0)), _age(obj, now)]
