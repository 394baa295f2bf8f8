"""Istio's standard metrics, recorded from every request a proxy of the model serves.

Scope and limitations
---------------------
Modelled (istio/proxy ``istio_stats`` @1.26.0): ``istio_requests_total`` (counter) and the
histograms ``istio_request_duration_milliseconds``, ``istio_request_bytes`` and
``istio_response_bytes`` (``_bucket{le}``, ``_sum``, ``_count``; Envoy's default buckets
0.5 … 3600000, which Istio keeps unless ``sidecar.istio.io/statsHistogramBuckets`` says
otherwise), with the 25 HTTP labels in Istio's order. A sidecar's outbound hop and a
gateway report ``reporter="source"``, a sidecar's inbound hop ``reporter="destination"``;
``connection_security_policy`` is ``mutual_tls``/``none`` at the destination and ``unknown``
at the source; unknown peers are ``unknown``; ``source_cluster``/``destination_cluster`` are
``Kubernetes`` (istiod's default CLUSTER_ID). Not modelled: TCP and gRPC metrics, waypoints,
``sidecar.istio.io/statsHistogramBuckets``, Telemetry ``metrics`` overrides (an unmodelled
override is not silently applied: there is none to apply).

Samples are kept per pod as (virtual time, cumulative value); a Prometheus model reads them
as if it had scraped at every instant (see ``workloads/prometheus``).

CPU work, for the kubelet's cAdvisor model (``workloads/cadvisor``): per pod and container,
the CPU seconds the model spent for it, cumulative. A proxy (sidecar or gateway, container
``istio-proxy``) is charged :data:`PROXY_CPU_PER_REQUEST` for every HTTP request it logs
(each hop: a sidecar's inbound and outbound hops count apart); an application container is
charged the local work its handler declares (:meth:`AppContext.spend`). Waiting on calls
costs nothing.
"""

from __future__ import annotations

import bisect
import threading
from dataclasses import dataclass, field
from typing import Any

from ..runtime import Runtime
from .config import namespace_of, service_fqdn
from .topology import has_sidecar, pod_labels, selects, service_account

Obj = dict[str, Any]
BUCKETS = (0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000,
           300000, 600000, 1800000, 3600000)
LABELS = ("reporter", "source_workload", "source_canonical_service", "source_canonical_revision",
          "source_workload_namespace", "source_principal", "source_app", "source_version",
          "source_cluster", "destination_workload", "destination_workload_namespace",
          "destination_principal", "destination_app", "destination_version",
          "destination_service", "destination_canonical_service",
          "destination_canonical_revision", "destination_service_name",
          "destination_service_namespace", "destination_cluster", "request_protocol",
          "response_code", "grpc_response_status", "response_flags",
          "connection_security_policy")
CLUSTER_ID = "Kubernetes"
# CPU seconds a proxy spends per request it handles: 0.2 vCPU per 1000 requests/s, the order
# of Istio's published sidecar figure (a model choice, not a measurement)
PROXY_CPU_PER_REQUEST = 0.0002
UNKNOWN = "unknown"
Labels = tuple[tuple[str, str], ...]


@dataclass
class Series:
    """One time series: cumulative values at virtual times (appended in time order)."""

    times: list[float] = field(default_factory=list)
    values: list[float] = field(default_factory=list)

    def add(self, when: float, delta: float) -> None:
        last = self.values[-1] if self.values else 0.0
        i = bisect.bisect_right(self.times, when)
        self.times.insert(i, when)
        self.values.insert(i, last + delta)
        for j in range(i + 1, len(self.values)):  # a late sample (rare): keep them cumulative
            self.values[j] += delta

    def at(self, when: float) -> float | None:
        i = bisect.bisect_right(self.times, when)
        return self.values[i - 1] if i else None

    def window(self, start: float, end: float) -> list[tuple[float, float]]:
        lo, hi = bisect.bisect_left(self.times, start), bisect.bisect_right(self.times, end)
        return list(zip(self.times[lo:hi], self.values[lo:hi], strict=True))


@dataclass
class PodMetrics:
    """What one proxy exposes on ``:15020/stats/prometheus``: name -> labels -> series."""

    series: dict[str, dict[Labels, Series]] = field(default_factory=dict)

    def add(self, name: str, labels: Labels, when: float, delta: float) -> None:
        self.series.setdefault(name, {}).setdefault(labels, Series()).add(when, delta)


class Telemetry:
    """Every pod's metrics in one embedded cluster (pod key ``namespace/name``)."""

    def __init__(self) -> None:
        self.pods: dict[str, PodMetrics] = {}
        self.cpu: dict[tuple[str, str], Series] = {}  # (pod key, container) -> CPU seconds
        self.lock = threading.Lock()

    def pod(self, key: str) -> PodMetrics:
        return self.pods.setdefault(key, PodMetrics())


_STORES: dict[int, Telemetry] = {}
_STORES_LOCK = threading.Lock()


def of(runtime: Runtime) -> Telemetry:
    """The runtime's metrics store (created on first use)."""
    with _STORES_LOCK:
        return _STORES.setdefault(id(runtime.store), Telemetry())


def charge_cpu(runtime: Runtime, pod: Obj, container: str, when: float, seconds: float) -> None:
    """Count ``seconds`` of CPU work done by ``container`` of ``pod``, ending at ``when``."""
    store = of(runtime)
    with store.lock:
        store.cpu.setdefault((pod_key(pod), container), Series()).add(when, seconds)


def cpu_series(runtime: Runtime, pod: Obj, container: str) -> Series | None:
    store = of(runtime)
    with store.lock:
        return store.cpu.get((pod_key(pod), container))


def pod_key(pod: Obj) -> str:
    return f"{namespace_of(pod)}/{pod['metadata']['name']}"


# ------------------------------------------------------------------ peer labels
def workload_name(pod: Obj) -> str:
    """The Deployment's name (a ReplicaSet's owner), else the pod's owner, else the pod."""
    meta = pod["metadata"]
    for ref in meta.get("ownerReferences") or []:
        name = str(ref.get("name", ""))
        if ref.get("kind") == "ReplicaSet":
            template = pod_labels(pod).get("pod-template-hash")
            if template and name.endswith(f"-{template}"):
                return name[: -len(template) - 1]
            return name.rsplit("-", 1)[0]
        return name
    return str(meta["name"])


def canonical(pod: Obj) -> tuple[str, str]:
    labels = pod_labels(pod)
    service = (labels.get("service.istio.io/canonical-name")
               or labels.get("app.kubernetes.io/name") or labels.get("app")
               or workload_name(pod))
    revision = (labels.get("service.istio.io/canonical-revision")
                or labels.get("app.kubernetes.io/version") or labels.get("version") or "latest")
    return service, revision


def _peer(prefix: str, pod: Obj | None, trust: str, principal: bool) -> dict[str, str]:
    if pod is None:
        return {f"{prefix}_workload": UNKNOWN, f"{prefix}_canonical_service": UNKNOWN,
                f"{prefix}_canonical_revision": UNKNOWN, f"{prefix}_workload_namespace": UNKNOWN,
                f"{prefix}_principal": UNKNOWN, f"{prefix}_app": UNKNOWN,
                f"{prefix}_version": UNKNOWN, f"{prefix}_cluster": UNKNOWN}
    labels = pod_labels(pod)
    service, revision = canonical(pod)
    ns = namespace_of(pod)
    return {f"{prefix}_workload": workload_name(pod), f"{prefix}_canonical_service": service,
            f"{prefix}_canonical_revision": revision, f"{prefix}_workload_namespace": ns,
            f"{prefix}_principal": (f"spiffe://{trust}/ns/{ns}/sa/{service_account(pod)}"
                                    if principal else UNKNOWN),
            f"{prefix}_app": labels.get("app", UNKNOWN),
            f"{prefix}_version": labels.get("version", UNKNOWN),
            f"{prefix}_cluster": CLUSTER_ID}


def _destination_service(hop: Any, upstream_cluster: str | None) -> Obj | None:
    """The Service a request was for: the outbound cluster's host, or (inbound) the Service
    of the pod that the authority names (or the only one selecting it on that port)."""
    snap = hop.flow.snap
    if upstream_cluster and upstream_cluster.startswith("outbound|"):
        return snap.services_by_fqdn.get(upstream_cluster.split("|")[3])
    authority = (hop.record.authority or "").rsplit(":", 1)[0]
    if authority in snap.services_by_ip:
        return snap.services_by_ip[authority]
    ns = namespace_of(hop.proxy)
    mine = [s for s in snap.services if namespace_of(s) == ns
            and selects((s.get("spec") or {}).get("selector"), pod_labels(hop.proxy))]
    for svc in mine:
        name = svc["metadata"]["name"]
        if authority in (name, f"{name}.{ns}", f"{name}.{ns}.svc", service_fqdn(svc)):
            return svc
    return mine[0] if len(mine) == 1 else None


def request_labels(hop: Any) -> dict[str, str]:
    """The 25 labels of the request ``hop`` (a proxy.Hop, after its record is complete)."""
    r = hop.record
    snap = hop.flow.snap
    trust = snap.mesh.trust_domain
    mtls = bool(hop.downstream.mtls)
    if hop.kind == "inbound":
        reporter, source, destination = "destination", hop.downstream.pod, hop.proxy
        policy = "mutual_tls" if mtls else "none"
        src_principal = dst_principal = mtls
    else:
        reporter, source = "source", hop.proxy
        host = (r.upstream_host or "").rsplit(":", 1)[0]
        destination = snap.pods_by_ip.get(host)
        policy = "unknown"
        # auto mTLS: a sidecar upstream is reached over Istio mTLS
        src_principal = dst_principal = destination is not None and has_sidecar(destination)
    svc = _destination_service(hop, r.upstream_cluster)
    labels = {"reporter": reporter, **_peer("source", source, trust, src_principal),
              **_peer("destination", destination, trust, dst_principal)}
    labels.update({
        "destination_service": service_fqdn(svc) if svc else (r.authority or UNKNOWN),
        "destination_service_name": svc["metadata"]["name"] if svc else UNKNOWN,
        "destination_service_namespace": namespace_of(svc) if svc else UNKNOWN,
        "request_protocol": "http", "response_code": str(r.status),
        "grpc_response_status": "", "response_flags": r.flags or "-",
        "connection_security_policy": policy})
    if destination is None:
        labels["destination_cluster"] = UNKNOWN
    return {name: labels[name] for name in LABELS}


def observe(hop: Any, when: float) -> None:
    """Count the request ``hop`` just logged (called where its access-log line is written)."""
    if hop.record.method is None:
        return  # TCP: not modelled
    labels = tuple(request_labels(hop).items())
    r = hop.record
    store = of(hop.flow.runtime)
    with store.lock:
        pod = store.pod(pod_key(hop.proxy))
        pod.add("istio_requests_total", labels, when, 1)
        store.cpu.setdefault((pod_key(hop.proxy), "istio-proxy"), Series()).add(
            when, PROXY_CPU_PER_REQUEST)
        for name, value in (("istio_request_duration_milliseconds", float(r.duration_ms)),
                            ("istio_request_bytes", float(r.bytes_received)),
                            ("istio_response_bytes", float(r.bytes_sent))):
            _histogram(pod, name, labels, when, value)


def _histogram(pod: PodMetrics, name: str, labels: Labels, when: float, value: float) -> None:
    for le in (*BUCKETS, float("inf")):
        if value <= le:
            pod.add(f"{name}_bucket", (*labels, ("le", _le(le))), when, 1)
        else:
            pod.add(f"{name}_bucket", (*labels, ("le", _le(le))), when, 0)
    pod.add(f"{name}_sum", labels, when, value)
    pod.add(f"{name}_count", labels, when, 1)


def _le(value: float) -> str:
    if value == float("inf"):
        return "+Inf"
    return str(int(value)) if float(value).is_integer() else str(value)
