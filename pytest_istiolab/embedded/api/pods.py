"""Choosing a pod's container for ``log`` and ``exec``, with kube-apiserver's errors.

Like kube-apiserver (and unlike ``kubectl``, which reads the
``kubectl.kubernetes.io/default-container`` annotation client-side before it calls the
API), the server only defaults the container when the pod has exactly one.
"""

from __future__ import annotations

from typing import Any

from .responses import bad_request

Obj = dict[str, Any]


def container_names(pod: Obj, kinds: tuple[str, ...] = ("containers",)) -> list[str]:
    spec = pod.get("spec") or {}
    return [c.get("name", "") for kind in kinds for c in spec.get(kind) or []]


def choose_container(pod: Obj, requested: str | None) -> str:
    name = (pod.get("metadata") or {}).get("name", "")
    if requested:
        every = container_names(pod, ("initContainers", "containers", "ephemeralContainers"))
        if requested not in every:
            raise bad_request(f"container {requested} is not valid for pod {name}")
        return requested
    main = container_names(pod)
    if len(main) == 1:
        return main[0]
    if not main:
        raise bad_request(f"a container name must be specified for pod {name}")
    every = container_names(pod, ("initContainers", "containers", "ephemeralContainers"))
    raise bad_request(f"a container name must be specified for pod {name}, "
                      f"choose one of: [{' '.join(every)}]")


def container_state(pod: Obj, container: str) -> Obj:
    status = pod.get("status") or {}
    for key in ("containerStatuses", "initContainerStatuses", "ephemeralContainerStatuses"):
        for cs in status.get(key) or []:
            if cs.get("name") == container:
                return cs.get("state") or {}
    return {}
