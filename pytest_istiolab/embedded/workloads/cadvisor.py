"""The kubelet's cAdvisor, as the Prometheus addon's ``kubernetes-nodes-cadvisor`` job sees it.

Scope and limitations
---------------------
The 1.26 addon scrapes every node through the API server's node proxy
(``https://kubernetes.default.svc:443/api/v1/nodes/<node>/proxy/metrics/cadvisor``) with
``labelmap`` of the node's labels and the default ``honor_labels: false``: a target's labels
are ``job``, ``instance="kubernetes.default.svc:443"`` and the node's labels with ``.``/``/``
turned into ``_`` (labels with empty values are dropped, as Prometheus drops them). The
model answers that job from the pods in the store, as if it scraped at every instant (see
``workloads/prometheus``); the job has a target only when the mounted ``prometheus.yml`` has
a ``kubernetes-nodes-cadvisor`` job.

Series, one per running container (``status.containerStatuses[].state.running``) of every
pod bound to the node, with cAdvisor's labels ``container``, ``pod``, ``namespace``,
``image`` (the container's image), ``name`` (the containerd container id) and ``id`` (the
cgroupfs path ``/kubepods[/burstable|/besteffort]/pod<uid>/<container id>`` by the pod's QoS
class):

* ``container_cpu_usage_seconds_total{cpu="total"}`` (the kubelet disables per-CPU stats, so
  cAdvisor reports the one ``total`` series): a counter from the container's start, growing
  at an idle rate (:data:`IDLE_CPU`, :data:`PROXY_IDLE_CPU` for ``istio-proxy``) plus the
  CPU work the mesh model charged the container (``mesh.telemetry``: a fixed cost per
  request a proxy handles, the declared local work of an application's handler);
* ``container_memory_working_set_bytes``: a gauge per container, constant from its start:
  ``istio-proxy`` grows with the configuration it holds (a base plus a share per Service and
  per pod in the cluster, computed at query time, not from the configuration's history),
  ``discovery`` with the pods it serves, the addons and applications a fixed size by
  container name.

Not modelled: the pod-level and sandbox (pause) cgroups, the node's root and system cgroups,
every other ``container_*`` family (network, filesystem, throttling, the other memory
figures), ``machine_*`` and the kubelet's own metrics. CPU and memory limits are not
enforced on the figures. The same series, in the text format, answer the node proxy path
(``api/nodeproxy``).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..mesh import telemetry
from ..mesh.config import namespace_of
from ..mesh.telemetry import Series
from ..runtime import Runtime
from . import promql

Obj = dict[str, Any]
JOB = "kubernetes-nodes-cadvisor"
INSTANCE = "kubernetes.default.svc:443"
IDLE_CPU = 0.001  # vCPU an idle container uses (1 ms of CPU per second)
PROXY_IDLE_CPU = 0.003  # an idle proxy: xDS, stats, health checks
MiB = 1024 * 1024
PROXY_BASE_MEMORY = 32 * MiB
PROXY_MEMORY_PER_SERVICE = 48 * 1024  # clusters, routes and listeners per Service
PROXY_MEMORY_PER_POD = 6 * 1024  # endpoints
DISCOVERY_BASE_MEMORY = 96 * MiB
DISCOVERY_MEMORY_PER_POD = 64 * 1024
MEMORY_BY_CONTAINER = {"prometheus-server": 220 * MiB, "prometheus-server-configmap-reload":
                       12 * MiB, "grafana": 110 * MiB, "kiali": 70 * MiB, "jaeger": 140 * MiB}


@dataclass
class CpuCounter:
    """``container_cpu_usage_seconds_total``: idle time plus charged work, from ``since``."""

    since: float
    idle: float
    work: Series | None

    def at(self, when: float) -> float | None:
        if when < self.since:
            return None
        charged = self.work.at(when) if self.work is not None else None
        return self.idle * (when - self.since) + (charged or 0.0)

    def window(self, start: float, end: float) -> list[tuple[float, float]]:
        if end < self.since:
            return []
        first = max(start, self.since)
        times = {first, end}
        # and the sample a scrape interval before the end, irate's earlier one (the counter
        # grows between charges too, so the last charge before it would not do)
        if end - promql.SCRAPE_INTERVAL >= first:
            times.add(end - promql.SCRAPE_INTERVAL)
        if self.work is not None:
            times.update(t for t, _ in self.work.window(start, end))
        return [(t, self.at(t) or 0.0) for t in sorted(times) if t >= self.since]


def _time(raw: Any) -> float:
    try:
        return datetime.fromisoformat(str(raw).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def target_labels(node: Obj) -> dict[str, str]:
    labels = {_label_name(k): str(v) for k, v in
              (node["metadata"].get("labels") or {}).items() if str(v) != ""}
    return {**labels, "instance": INSTANCE, "job": JOB}


def scrape_url(node: Obj) -> str:
    return f"https://{INSTANCE}/api/v1/nodes/{node['metadata']['name']}/proxy/metrics/cadvisor"


def _label_name(name: str) -> str:
    return "".join(c if c.isalnum() or c == "_" else "_" for c in name)


def nodes(runtime: Runtime) -> list[Obj]:
    return list(runtime.store.by_kind("", "nodes"))


def _cgroup(pod: Obj) -> str:
    qos = str((pod.get("status") or {}).get("qosClass") or "BestEffort")
    parent = {"Guaranteed": "/kubepods", "Burstable": "/kubepods/burstable"}.get(
        qos, "/kubepods/besteffort")
    return f"{parent}/pod{pod['metadata'].get('uid', '')}"


def _running(pod: Obj) -> Iterable[tuple[Obj, float]]:
    status = pod.get("status") or {}
    if status.get("phase") != "Running":
        return
    # running init containers are native sidecars (Istio 1.27's istio-proxy)
    for cs in [*(status.get("initContainerStatuses") or []),
               *(status.get("containerStatuses") or [])]:
        running = (cs.get("state") or {}).get("running")
        if running is not None:
            yield cs, _time(running.get("startedAt") or status.get("startTime"))


class Memory:
    """The working-set sizes of one query: the configuration counted once."""

    def __init__(self, runtime: Runtime) -> None:
        store = runtime.store
        self.pods = len(store.by_kind("", "pods"))
        self.services = len(store.by_kind("", "services"))

    def of(self, container: str) -> float:
        if container == "istio-proxy":
            return float(PROXY_BASE_MEMORY + PROXY_MEMORY_PER_SERVICE * self.services
                         + PROXY_MEMORY_PER_POD * self.pods)
        if container == "discovery":
            return float(DISCOVERY_BASE_MEMORY + DISCOVERY_MEMORY_PER_POD * self.pods)
        if container in MEMORY_BY_CONTAINER:
            return float(MEMORY_BY_CONTAINER[container])
        return float(24 * MiB + (zlib.crc32(container.encode()) % 24) * MiB)


def series(runtime: Runtime, node: Obj, base: dict[str, str]
           ) -> Iterable[tuple[dict[str, str], Any]]:
    """Every series the node's cAdvisor exposes, each with the target labels ``base``."""
    name = node["metadata"]["name"]
    memory = Memory(runtime)
    for pod in runtime.store.by_kind("", "pods"):
        if (pod.get("spec") or {}).get("nodeName") != name:
            continue
        cgroup = _cgroup(pod)
        for cs, since in _running(pod):
            cid = str(cs.get("containerID") or "").rpartition("://")[2]
            container = str(cs.get("name") or "")
            labels = {**base, "container": container, "id": f"{cgroup}/{cid}",
                      "image": str(cs.get("image") or ""), "name": cid,
                      "namespace": namespace_of(pod), "pod": pod["metadata"]["name"]}
            idle = PROXY_IDLE_CPU if container == "istio-proxy" else IDLE_CPU
            work = telemetry.cpu_series(runtime, pod, container)
            yield ({**labels, "__name__": "container_cpu_usage_seconds_total", "cpu": "total"},
                   CpuCounter(since, idle, work))
            yield ({**labels, "__name__": "container_memory_working_set_bytes"},
                   promql.Const(memory.of(container), since))
