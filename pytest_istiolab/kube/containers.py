"""A pod's containers as the kubelet runs them, and its Istio sidecar wherever it is.

Istio 1.25/1.26 inject ``istio-proxy`` into ``spec.containers``; Istio 1.27 on Kubernetes
>= 1.33 injects it as a *native sidecar*, an init container with ``restartPolicy: Always``
(``ENABLE_NATIVE_SIDECARS=auto``), which runs beside the app for the pod's life. Checks that
look for the sidecar, count a pod's containers or read its READY column ask here, so they hold
on both.
"""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]
SIDECAR = "istio-proxy"
INIT = "istio-init"


def native_sidecars(pod: Obj) -> list[Obj]:
    """The pod's restartable init containers (``restartPolicy: Always``)."""
    return [c for c in (pod.get("spec") or {}).get("initContainers") or []
            if c.get("restartPolicy") == "Always"]


def running_containers(pod: Obj) -> list[Obj]:
    """Native sidecars, then ``spec.containers``: what runs once the pod is up."""
    return [*native_sidecars(pod), *((pod.get("spec") or {}).get("containers") or [])]


def app_containers(pod: Obj) -> list[Obj]:
    """The running containers other than ``istio-proxy``."""
    return [c for c in running_containers(pod) if c.get("name") != SIDECAR]


def container(pod: Obj, name: str) -> Obj | None:
    return next((c for c in running_containers(pod) if c.get("name") == name), None)


def sidecar(pod: Obj) -> Obj | None:
    """The pod's ``istio-proxy`` container, in ``containers`` or as a native sidecar."""
    return container(pod, SIDECAR)


def has_sidecar(pod: Obj) -> bool:
    return sidecar(pod) is not None


def is_native_sidecar(pod: Obj) -> bool:
    return any(c.get("name") == SIDECAR for c in native_sidecars(pod))


def init_containers(pod: Obj) -> list[str]:
    """The run-to-completion init containers (``istio-init``, the app's own), by name."""
    return [str(c.get("name")) for c in (pod.get("spec") or {}).get("initContainers") or []
            if c.get("restartPolicy") != "Always"]


def ready_column(pod: Obj) -> str:
    """``kubectl get pod``'s READY: ready/total over ``containers`` and started native sidecars
    (kubectl's ``printPod`` counts restartable init containers since Kubernetes 1.28)."""
    status = pod.get("status") or {}
    natives = {c.get("name") for c in native_sidecars(pod)}
    started = [s for s in status.get("initContainerStatuses") or []
               if s.get("name") in natives and s.get("started")]
    running = [s for s in status.get("containerStatuses") or []
               if (s.get("state") or {}).get("running") is not None]
    ready = sum(1 for s in [*started, *running] if s.get("ready"))
    total = len((pod.get("spec") or {}).get("containers") or []) + len(natives)
    return f"{ready}/{total}"
