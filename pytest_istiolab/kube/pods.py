"""``Kube`` namespaces, pods, events and logs (mixed into ``Kube``)."""

from __future__ import annotations

import builtins
from collections.abc import Callable
from typing import Any

from kubernetes.client.rest import ApiException

from pytest_istiolab.errors import ClusterError, ReadinessError
from pytest_istiolab.kube.refs import ObjectRef, status_message
from pytest_istiolab.kube.status import is_pod_ready, is_terminating, sort_events

Obj = dict[str, Any]
ObjList = list[Obj]


class PodsMixin:
    """Uses ``apply``, ``delete``, ``list`` and ``_call`` of ``Kube``."""

    apply: Callable[..., builtins.list[ObjectRef]]
    delete: Callable[..., None]
    list: Callable[..., ObjList]
    _call: Callable[..., Any]

    # ------------------------------------------------------------------ namespaces
    def create_namespace(self, name: str, labels: dict[str, str] | None = None) -> ObjectRef:
        """Create (or update the labels of) a namespace."""
        doc = {"apiVersion": "v1", "kind": "Namespace",
               "metadata": {"name": name, "labels": dict(labels or {})}}
        return self.apply([doc])[0]

    def delete_namespace(self, name: str, wait: bool = True) -> None:
        self.delete(ObjectRef("v1", "Namespace", name), wait=wait)

    # ------------------------------------------------------------------ pods, events, logs
    def pods(self, namespace: str, label_selector: str | None = None) -> ObjList:
        return self.list("v1", "Pod", namespace, label_selector)

    def first_pod(self, namespace: str, label_selector: str) -> str:
        """The name of a matching pod (a ready, not terminating one when there is one)."""
        pods = [p for p in self.pods(namespace, label_selector) if not is_terminating(p)]
        if not pods:
            raise ReadinessError(f"no pod matches {label_selector} in namespace {namespace}",
                                 "deploy the workload first (and wait until it is ready)")
        pods.sort(key=lambda p: (not is_pod_ready(p), p["metadata"]["name"]))
        return str(pods[0]["metadata"]["name"])

    def events(self, namespace: str, involved_name: str | None = None) -> ObjList:
        """Events of a namespace, oldest first; only those about ``involved_name`` if given."""
        items = self.list("v1", "Event", namespace)
        if involved_name is not None:
            items = [e for e in items
                     if (e.get("involvedObject") or {}).get("name") == involved_name]
        return sort_events(items)

    def logs(self, namespace: str, pod: str, container: str | None = None,
             since_seconds: int | None = None, tail_lines: int | None = None) -> str:
        """A container's log text (``kubectl logs``)."""
        query: builtins.list[tuple[str, Any]] = []
        for key, value in (("container", container), ("sinceSeconds", since_seconds),
                           ("tailLines", tail_lines)):
            if value is not None:
                query.append((key, value))
        path = f"/api/v1/namespaces/{namespace}/pods/{pod}/log"
        try:
            return str(self._call("GET", path, query=query, accept="text/plain, */*", raw=True))
        except ApiException as err:
            where = f"pod {pod}" + (f" container {container}" if container else "")
            raise ClusterError(f"no logs for {where} in namespace {namespace}: "
                               f"{status_message(err)}",
                               "check the pod and container names") from err
