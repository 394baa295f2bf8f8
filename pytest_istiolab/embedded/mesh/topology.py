"""Pods and Services as the data plane sees them: addresses, sidecars, gateways, endpoints.

Endpoints come from the Endpoints object of a Service when there is one (as kube-proxy and
istiod read them); without one, from the Service selector over ready pods.
"""

from __future__ import annotations

from typing import Any

from ..podspec import running_containers
from .config import Snapshot, namespace_of, spec_of
from .model import Endpoint

Obj = dict[str, Any]
SIDECAR = "istio-proxy"
TCP_PREFIXES = ("tcp", "tls", "https", "mongo", "mysql", "redis")


# --------------------------------------------------------------------------- pods
def pod_ip(pod: Obj) -> str:
    return str((pod.get("status") or {}).get("podIP") or "")


def pod_name(pod: Obj) -> str:
    return str(pod["metadata"]["name"])


def pod_labels(pod: Obj) -> dict[str, str]:
    return dict(pod["metadata"].get("labels") or {})


def containers(pod: Obj) -> list[Obj]:
    """The pod's running containers, a native sidecar ``istio-proxy`` (Istio 1.27) included."""
    return running_containers(pod)


def container_named(pod: Obj, name: str) -> Obj | None:
    return next((c for c in containers(pod) if c.get("name") == name), None)


def is_gateway(pod: Obj) -> bool:
    """An Istio gateway: its only container is the proxy, started as ``proxy router``."""
    proxy = container_named(pod, SIDECAR)
    if proxy is None:
        return False
    args = [str(a) for a in proxy.get("args") or []]
    if "router" in args:
        return True
    return len(containers(pod)) == 1 and pod_labels(pod).get("istio", "").endswith("gateway")


def has_sidecar(pod: Obj) -> bool:
    """An injected workload: an app container plus ``istio-proxy`` (gateways excluded)."""
    return container_named(pod, SIDECAR) is not None and not is_gateway(pod)


def pod_ready(pod: Obj) -> bool:
    meta, status = pod["metadata"], pod.get("status") or {}
    if meta.get("deletionTimestamp") or not status.get("podIP"):
        return False
    if status.get("phase") not in (None, "Running"):
        return False
    conditions = status.get("conditions")
    if not conditions:
        return status.get("phase") == "Running"
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def service_account(pod: Obj) -> str:
    spec = spec_of(pod)
    return str(spec.get("serviceAccountName") or spec.get("serviceAccount") or "default")


def spiffe_id(pod: Obj, trust_domain: str = "cluster.local") -> str:
    return f"spiffe://{trust_domain}/ns/{namespace_of(pod)}/sa/{service_account(pod)}"


def container_ports(pod: Obj) -> list[tuple[str, int, str]]:
    """(container name, containerPort, port name) for every declared port."""
    out = []
    for c in containers(pod):
        for p in c.get("ports") or []:
            if p.get("containerPort"):
                out.append((str(c.get("name")), int(p["containerPort"]), str(p.get("name") or "")))
    return out


# ----------------------------------------------------------------------- services
def service_ports(svc: Obj) -> list[Obj]:
    return list(spec_of(svc).get("ports") or [])


def service_port(svc: Obj, port: int) -> Obj | None:
    return next((p for p in service_ports(svc) if int(p.get("port", 0)) == port), None)


def is_http_port(port: Obj) -> bool:
    """Istio's protocol selection: by ``appProtocol`` or name prefix; unnamed ports are sniffed."""
    proto = str(port.get("appProtocol") or port.get("name") or "").lower()
    return not proto.startswith(TCP_PREFIXES)


def selects(selector: dict[str, str] | None, labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in (selector or {}).items())


def target_port(svc_port: Obj, pod: Obj | None) -> int:
    """The pod port a Service port forwards to (numeric, named, or the same port)."""
    target = svc_port.get("targetPort", svc_port.get("port"))
    if isinstance(target, int) or (isinstance(target, str) and target.isdigit()):
        return int(target)
    if pod is not None:
        for _, number, name in container_ports(pod):
            if name == target:
                return number
    return int(svc_port.get("port", 0))


def service_pods(snap: Snapshot, svc: Obj) -> list[Obj]:
    """Ready pods behind a Service, from its Endpoints object or else its selector."""
    ns = namespace_of(svc)
    eps = snap.endpoints.get((ns, svc["metadata"]["name"]))
    if eps is not None:
        ips = [a.get("ip") for s in eps.get("subsets") or [] for a in s.get("addresses") or []]
        pods = [snap.pods_by_ip.get(ip) for ip in ips if ip]
        return [p for p in pods if p is not None and namespace_of(p) == ns]
    selector = spec_of(svc).get("selector")
    return [p for p in snap.pods
            if namespace_of(p) == ns and selects(selector, pod_labels(p)) and pod_ready(p)]


def service_endpoints(snap: Snapshot, svc: Obj, port: int,
                      labels: dict[str, str] | None = None) -> list[Endpoint]:
    """The (pod IP, target port) pairs of a Service port, optionally filtered by pod labels."""
    sp = service_port(svc, port)
    if sp is None:
        return []
    out = []
    for pod in service_pods(snap, svc):
        if labels and not all(pod_labels(pod).get(k) == v for k, v in labels.items()):
            continue
        out.append(Endpoint(pod_ip(pod), target_port(sp, pod), pod=pod))
    return out


def services_selecting(snap: Snapshot, pod: Obj) -> list[Obj]:
    labels = pod_labels(pod)
    return [s for s in snap.services if namespace_of(s) == namespace_of(pod)
            and selects(spec_of(s).get("selector"), labels)]
