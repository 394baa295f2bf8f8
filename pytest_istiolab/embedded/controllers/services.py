"""Service allocation (ClusterIP, NodePort) and the endpoints controllers.

ClusterIPs come from 10.96.0.0/12 and NodePorts from 30000-32767, unique in this runtime;
given values are honoured. A NodePort is only handed out if this cluster can hold
127.0.0.1:port (``runtime.node_ports``), so the listener manager can serve it and no other
cluster on the host can take it. ``LoadBalancer`` services get NodePorts
and an empty ``status.loadBalancer`` (``EXTERNAL-IP <pending>``, as on bare metal).

Endpoints and EndpointSlices list the ready pods matching a Service's selector (not-ready
ones under ``notReadyAddresses``), with named ``targetPort``s resolved per pod.
Not modelled: kube-proxy, session affinity, topology hints, dual stack.
"""

from __future__ import annotations

import ipaddress
import random
from typing import Any

from ..runtime import Runtime
from ..store import StoreError
from .util import (
    ENDPOINTS,
    ENDPOINTSLICE,
    POD,
    SERVICE,
    Obj,
    is_active,
    is_pod_ready,
    labels_of,
    random_suffix,
    rtype,
)

SERVICE_CIDR = ipaddress.ip_network("10.96.0.0/12")
NODE_PORT_RANGE = (30000, 32767)
# KEP-3668: the lowest ports (86 of 2768) are a static band left for users to request; the
# embedded cluster also never picks Lab 9.2's fixed NodePorts itself, so they are free there.
STATIC_BAND_END = 30085
LAB_FIXED_NODE_PORTS = frozenset({31120, 31121, 31122, 31123})
_RESERVED_IPS = {"10.96.0.1", "10.96.0.10"}


def _rng(runtime: Runtime) -> random.Random:
    rng = getattr(runtime, "_istiolab_service_rng", None)
    if rng is None:
        rng = random.Random(runtime.seed ^ 0x0A11C)
        runtime._istiolab_service_rng = rng  # type: ignore[attr-defined]
    return rng


def allocate_service(runtime: Runtime, svc: Obj, strict: bool = False) -> bool:
    """Fill in clusterIP, nodePorts and Service defaults. Returns True if anything changed.

    ``strict`` (at create time) rejects a requested ClusterIP or NodePort that another
    Service already holds, with kube-apiserver's 422 message.
    """
    before = repr(svc)
    spec = svc.setdefault("spec", {})
    spec.setdefault("type", "ClusterIP")
    spec.setdefault("sessionAffinity", "None")
    spec.setdefault("ipFamilies", ["IPv4"])
    spec.setdefault("ipFamilyPolicy", "SingleStack")
    spec.setdefault("internalTrafficPolicy", "Cluster")
    if spec["type"] == "ExternalName":
        return repr(svc) != before
    name = svc.get("metadata", {}).get("name")
    ns = svc.get("metadata", {}).get("namespace")
    used_ips, used_ports = _used(runtime, (ns, name))
    if strict:
        _check_taken(svc, used_ips, used_ports)
    if not spec.get("clusterIP"):
        spec["clusterIP"] = _free_ip(runtime, used_ips)
    spec["clusterIPs"] = [spec["clusterIP"]]
    node_ports = spec["type"] in ("NodePort", "LoadBalancer")
    for port in spec.get("ports") or []:
        port.setdefault("protocol", "TCP")
        port.setdefault("targetPort", port.get("port"))
        if node_ports and not port.get("nodePort"):
            port["nodePort"] = _free_node_port(runtime, used_ports)
            used_ports.add(port["nodePort"])
        elif node_ports:
            runtime.node_ports.reserve(int(port["nodePort"]))  # a requested port: hold it too
        elif not node_ports:
            port.pop("nodePort", None)
    if node_ports:
        spec.setdefault("externalTrafficPolicy", "Cluster")
    else:
        spec.pop("externalTrafficPolicy", None)
    if spec["type"] == "LoadBalancer":
        spec.setdefault("allocateLoadBalancerNodePorts", True)
    svc.setdefault("status", {}).setdefault("loadBalancer", {})
    return repr(svc) != before


def _check_taken(svc: Obj, ips: set[str], ports: set[int]) -> None:
    spec, name = svc["spec"], svc.get("metadata", {}).get("name", "")
    ip = spec.get("clusterIP")
    if ip and ip != "None" and ip in ips - _RESERVED_IPS:
        _invalid(name, "spec.clusterIPs", f'"{ip}"', f"failed to allocate IP {ip}: provided "
                 "IP is already allocated")
    for i, port in enumerate(spec.get("ports") or []):
        if port.get("nodePort") and port["nodePort"] in ports:
            _invalid(name, f"spec.ports[{i}].nodePort", str(port["nodePort"]),
                     "provided port is already allocated")


def _invalid(name: str, field: str, value: str, detail: str) -> None:
    raise StoreError(422, "Invalid", f'Service "{name}" is invalid: {field}: Invalid value: '
                     f"{value}: {detail}", {"name": name, "kind": "Service", "causes": [
                         {"reason": "FieldValueInvalid", "message": f"Invalid value: {value}: "
                          f"{detail}", "field": field}]})


def _used(runtime: Runtime, skip: tuple[Any, Any]) -> tuple[set[str], set[int]]:
    ips, ports = set(_RESERVED_IPS), set[int]()
    for svc in runtime.store.by_kind(*SERVICE):
        meta = svc["metadata"]
        if (meta.get("namespace"), meta.get("name")) == skip:
            continue
        spec = svc.get("spec") or {}
        if spec.get("clusterIP"):
            ips.add(spec["clusterIP"])
        ports.update(p["nodePort"] for p in spec.get("ports") or [] if p.get("nodePort"))
    return ips, ports


def _free_ip(runtime: Runtime, used: set[str]) -> str:
    rng = _rng(runtime)
    first = int(SERVICE_CIDR.network_address) + 2
    last = int(SERVICE_CIDR.broadcast_address) - 1
    while True:
        ip = str(ipaddress.ip_address(rng.randint(first, last)))
        if ip not in used:
            return ip


def _free_node_port(runtime: Runtime, used: set[int]) -> int:
    rng = _rng(runtime)
    high = NODE_PORT_RANGE[1]
    for _ in range(2000):
        port = rng.randint(STATIC_BAND_END + 1, high)
        if port in LAB_FIXED_NODE_PORTS:
            continue
        if port not in used and runtime.node_ports.reserve(port):
            return port
    raise StoreError(422, "Invalid", "no free NodePort in 30000-32767 could be bound on "
                     f"{runtime.node_ip}")


# ------------------------------------------------------------------ endpoints
def reconcile_service(runtime: Runtime, ns: str, name: str) -> None:
    store = runtime.store
    srt = rtype(store, SERVICE)
    svc = store.try_get(srt, ns, name)
    if svc is None:
        return
    if allocate_service(runtime, dict(svc)):
        try:
            store.mutate(srt, ns, name, lambda cur: _allocate_in_place(runtime, cur))
        except StoreError:
            return
    reconcile_endpoints(runtime, ns, name)


def _allocate_in_place(runtime: Runtime, svc: Obj) -> None:
    allocate_service(runtime, svc)


def reconcile_endpoints(runtime: Runtime, ns: str, name: str) -> None:
    store = runtime.store
    svc = store.try_get(rtype(store, SERVICE), ns, name)
    if svc is None or not (svc.get("spec") or {}).get("selector"):
        return  # selector-less services keep the Endpoints their owner writes
    selector = svc["spec"]["selector"]
    pods = [p for p in store.by_kind(*POD, ns) if is_active(p)
            and (p.get("status") or {}).get("podIP")
            and all(labels_of(p).get(k) == v for k, v in selector.items())]
    _write_endpoints(runtime, svc, pods)
    _write_slice(runtime, svc, pods)


def resolve_ports(svc: Obj, pod: Obj) -> list[Obj]:
    out = []
    for sp in (svc.get("spec") or {}).get("ports") or []:
        target = sp.get("targetPort", sp.get("port"))
        number = target
        if isinstance(target, str) and not target.isdigit():
            number = next((cp["containerPort"] for c in pod["spec"].get("containers") or []
                           for cp in c.get("ports") or [] if cp.get("name") == target), None)
            if number is None:
                continue
        entry: Obj = {"port": int(number), "protocol": sp.get("protocol", "TCP")}
        if sp.get("name"):
            entry = {"name": sp["name"], **entry}
        if sp.get("appProtocol"):
            entry["appProtocol"] = sp["appProtocol"]
        out.append(entry)
    return out


def _address(pod: Obj) -> Obj:
    meta = pod["metadata"]
    return {"ip": pod["status"]["podIP"], "nodeName": pod["spec"].get("nodeName"),
            "targetRef": {"kind": "Pod", "namespace": meta["namespace"], "name": meta["name"],
                          "uid": meta["uid"]}}


def _write_endpoints(runtime: Runtime, svc: Obj, pods: list[Obj]) -> None:
    groups: dict[str, Obj] = {}
    for pod in sorted(pods, key=lambda p: p["status"]["podIP"]):
        ports = resolve_ports(svc, pod)
        key = repr(ports)
        subset = groups.setdefault(key, {"addresses": [], "notReadyAddresses": [],
                                         "ports": ports})
        field = "addresses" if is_pod_ready(pod) else "notReadyAddresses"
        subset[field].append(_address(pod))
    subsets = []
    for subset in groups.values():
        subset = {k: v for k, v in subset.items() if v}
        if subset.get("addresses") or subset.get("notReadyAddresses"):
            subsets.append(subset)
    meta = svc["metadata"]
    labels = dict(meta.get("labels") or {})
    body: Obj = {"metadata": {"name": meta["name"], "namespace": meta["namespace"],
                              "labels": labels}, "subsets": subsets}
    _upsert(runtime, ENDPOINTS, meta["namespace"], meta["name"], body,
            lambda cur: cur.update(subsets=subsets) or cur["metadata"].update(labels=labels))


def _write_slice(runtime: Runtime, svc: Obj, pods: list[Obj]) -> None:
    store = runtime.store
    ert = rtype(store, ENDPOINTSLICE)
    meta = svc["metadata"]
    ns = meta["namespace"]
    existing = store.list(ert, ns, f"kubernetes.io/service-name={meta['name']}")[0]
    ports = resolve_ports(svc, pods[0]) if pods else []
    endpoints = [{"addresses": [p["status"]["podIP"]],
                  "conditions": {"ready": is_pod_ready(p), "serving": is_pod_ready(p),
                                 "terminating": False},
                  "nodeName": p["spec"].get("nodeName"),
                  "targetRef": _address(p)["targetRef"]}
                 for p in sorted(pods, key=lambda p: p["status"]["podIP"])]
    labels = {**(meta.get("labels") or {}), "kubernetes.io/service-name": meta["name"],
              "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"}
    if existing:
        name = existing[0]["metadata"]["name"]

        def fill(cur: Obj) -> None:
            cur.update(endpoints=endpoints, ports=ports, addressType="IPv4")
            cur["metadata"]["labels"] = labels
        try:
            store.mutate(ert, ns, name, fill)
        except StoreError:
            pass
        return
    owner = {"apiVersion": "v1", "kind": "Service", "name": meta["name"], "uid": meta["uid"],
             "controller": True, "blockOwnerDeletion": True}
    body = {"metadata": {"name": f"{meta['name']}-{random_suffix(_rng(runtime))}",
                         "labels": labels, "ownerReferences": [owner],
                         "generateName": f"{meta['name']}-"},
            "addressType": "IPv4", "endpoints": endpoints, "ports": ports}
    try:
        created = store.create(ert, body, ns)
    except StoreError:
        return
    current = store.try_get(rtype(store, SERVICE), ns, meta["name"])
    if current is None or current["metadata"]["uid"] != meta["uid"]:
        # the Service went while this slice was being made (the garbage collector already ran
        # for it): remove the orphan, as the garbage collector would
        try:
            store.delete(ert, ns, created["metadata"]["name"])
        except StoreError:
            pass


def _upsert(runtime: Runtime, key: tuple[str, str], ns: str, name: str, body: Obj,
            update: Any) -> None:
    store = runtime.store
    rt = rtype(store, key)
    try:
        if store.try_get(rt, ns, name) is None:
            store.create(rt, body, ns)
        else:
            store.mutate(rt, ns, name, update)
    except StoreError:
        pass  # the namespace is going away, or a concurrent write: the next event retries
