"""A pod's containers as the kubelet runs them: app containers and native sidecars.

Kubernetes >= 1.29 (stable in 1.33) runs an init container with ``restartPolicy: Always``
as a *sidecar*: it starts before the app containers and keeps running beside them, so it
counts with them for readiness, logs, exec and the network. Istio 1.27 injects
``istio-proxy`` that way on Kubernetes >= 1.33. Every part of the embedded cluster that asks
"which containers run in this pod?" or "where is its proxy?" asks here.
"""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]
PROXY = "istio-proxy"


def is_restartable(container: Obj) -> bool:
    """An init container that is a native sidecar (``restartPolicy: Always``)."""
    return container.get("restartPolicy") == "Always"


def running_containers(pod: Obj) -> list[Obj]:
    """The containers that run for the pod's life: native sidecars first, then ``containers``."""
    spec = pod.get("spec") or {}
    return [*(c for c in spec.get("initContainers") or [] if is_restartable(c)),
            *(spec.get("containers") or [])]


def container_named(pod: Obj, name: str) -> Obj | None:
    """The running container ``name`` (an app container or a native sidecar)."""
    return next((c for c in running_containers(pod) if c.get("name") == name), None)


def proxy_of(pod: Obj) -> Obj | None:
    """The pod's ``istio-proxy``, in ``containers`` or as a native sidecar."""
    return container_named(pod, PROXY)


def image_of(pod: Obj, name: str) -> str:
    found = container_named(pod, name)
    return str((found or {}).get("image") or "")
