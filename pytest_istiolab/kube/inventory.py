"""What is in a cluster, as a comparable value: the proof that a run leaves nothing behind.

:func:`take_inventory` lists every listable resource the API server's discovery documents
(``/api/v1`` and every group of ``/apis``, namespaced and cluster-scoped, each resource once at
its group's preferred version) and records each object as ``(apiVersion/kind, namespace,
name)``. It adds the state that names do not show: the data of the ``istio`` ConfigMap (the mesh
config every proxy gets; Labs 3.4, 7 and 9.1 change it) and the labels of every namespace
(injection labels decide what a namespace's new pods become).

Left out, because they change without anyone asking and say nothing about what a run created:

* ``events`` (core and ``events.k8s.io``): records of what happened, written by controllers and
  kubelets for every action (a rollout, a probe) and expiring by TTL; they are not objects the
  suite creates or could remove;
* ``leases`` (``coordination.k8s.io``): node heartbeats and leader election of controllers
  (istiod creates its election leases when it first needs them);
* the ``metrics.k8s.io`` group: live usage samples computed by metrics-server, not stored objects.

Endpoints, EndpointSlices, ReplicaSets and Pods are kept: their names only change when the
workload they belong to is replaced, which is exactly what the proof must notice.

Also here: :func:`sweep_run_namespaces`, which removes the namespaces of one run by label (the
safety net behind the per-module cleanup: a run interrupted between creating a namespace and
recording it still leaves nothing).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from pytest_istiolab.constants import LABEL_MANAGED, LABEL_RUN
from pytest_istiolab.kube.client import Kube, ObjectRef

ISTIO_NAMESPACE = "istio-system"
MESH_CONFIGMAP = "istio"
PAGE_SIZE = 500
EXCLUDED: dict[tuple[str, str], str] = {
    ("", "events"): "events are records of what happened and expire by TTL",
    ("events.k8s.io", "events"): "events are records of what happened and expire by TTL",
    ("coordination.k8s.io", "leases"): "node heartbeats and controller leader election",
}
EXCLUDED_GROUPS: dict[str, str] = {
    "metrics.k8s.io": "live usage samples computed by metrics-server, not stored objects",
}

ObjectId = tuple[str, str, str]  # ("apps/v1/Deployment", namespace or "", name)


@dataclass(frozen=True)
class Listable:
    """One resource discovery says can be listed."""

    group: str
    group_version: str
    plural: str
    kind: str
    namespaced: bool

    @property
    def path(self) -> str:
        prefix = "/api" if self.group == "" else "/apis"
        return f"{prefix}/{self.group_version}/{self.plural}"


@dataclass(frozen=True)
class InventoryDiff:
    """What changed between two inventories (empty: nothing left behind)."""

    added: tuple[ObjectId, ...]
    removed: tuple[ObjectId, ...]
    mesh: tuple[dict[str, str], dict[str, str]] | None
    labels: tuple[tuple[str, dict[str, str], dict[str, str]], ...]

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.mesh or self.labels)

    def describe(self, limit: int = 40) -> str:
        lines: list[str] = []
        for title, ids in (("left behind", self.added), ("missing", self.removed)):
            for obj in ids[:limit]:
                lines.append(f"{title}: {obj[0]} {obj[1] + '/' if obj[1] else ''}{obj[2]}")
            if len(ids) > limit:
                lines.append(f"{title}: ... {len(ids) - limit} more")
        if self.mesh:
            before, after = self.mesh
            lines.append(f"istio ConfigMap changed: before {before!r}, after {after!r}")
        for name, before, after in self.labels:
            lines.append(f"labels of namespace {name} changed: {before} -> {after}")
        return "\n".join(lines) or "no difference"


@dataclass(frozen=True)
class Inventory:
    """Every object of a cluster by identity, the mesh config, and namespace labels."""

    objects: frozenset[ObjectId]
    mesh: dict[str, str] = field(default_factory=dict)
    namespace_labels: dict[str, dict[str, str]] = field(default_factory=dict)
    unlistable: tuple[str, ...] = ()

    def diff(self, after: Inventory) -> InventoryDiff:
        labels = tuple((ns, self.namespace_labels[ns], after.namespace_labels[ns])
                       for ns in sorted(set(self.namespace_labels) & set(after.namespace_labels))
                       if self.namespace_labels[ns] != after.namespace_labels[ns])
        return InventoryDiff(
            added=tuple(sorted(after.objects - self.objects)),
            removed=tuple(sorted(self.objects - after.objects)),
            mesh=(self.mesh, after.mesh) if self.mesh != after.mesh else None,
            labels=labels)

    def in_namespace(self, namespace: str) -> frozenset[ObjectId]:
        return frozenset(o for o in self.objects if o[1] == namespace)


def listable_resources(kube: Kube) -> list[Listable]:
    """Every resource of every group that supports ``list``, once, minus :data:`EXCLUDED`."""
    found = _resources(kube, "", "v1", kube.raw_get("/api/v1"))
    for group in kube.raw_get("/apis").get("groups") or []:
        name = group["name"]
        if name in EXCLUDED_GROUPS:
            continue
        preferred = group["preferredVersion"]["groupVersion"]
        versions = [preferred] + [v["groupVersion"] for v in group.get("versions") or []
                                  if v["groupVersion"] != preferred]
        seen: set[str] = set()
        for gv in versions:
            for res in _resources(kube, name, gv, kube.raw_get(f"/apis/{gv}")):
                if res.plural not in seen:
                    seen.add(res.plural)
                    found.append(res)
    return found


def _resources(kube: Kube, group: str, gv: str, document: dict[str, Any]) -> list[Listable]:
    out = []
    for res in document.get("resources") or []:
        plural = res["name"]
        if "/" in plural or "list" not in (res.get("verbs") or []):
            continue
        if (group, plural) in EXCLUDED:
            continue
        out.append(Listable(group, gv, plural, res["kind"], bool(res.get("namespaced"))))
    return out


def take_inventory(kube: Kube) -> Inventory:
    """List everything (see the module docstring); resources the caller may not list are named
    in ``unlistable`` rather than failing the whole inventory."""
    objects: set[ObjectId] = set()
    labels: dict[str, dict[str, str]] = {}
    unlistable: list[str] = []
    for res in listable_resources(kube):
        try:
            items = list(_list_all(kube, res))
        except Exception as exc:  # noqa: BLE001 - RBAC 403s, aggregated APIs that are down
            unlistable.append(f"{res.group_version}/{res.plural}: {exc}")
            continue
        for item in items:
            meta = item.get("metadata") or {}
            objects.add((f"{res.group_version}/{res.kind}", meta.get("namespace") or "",
                         meta.get("name") or ""))
            if res.group == "" and res.plural == "namespaces":
                labels[meta.get("name") or ""] = dict(meta.get("labels") or {})
    return Inventory(frozenset(objects), _mesh_data(kube), labels, tuple(unlistable))


def _list_all(kube: Kube, res: Listable) -> Iterator[dict[str, Any]]:
    token = ""
    while True:
        query: list[tuple[str, Any]] = [("limit", PAGE_SIZE)]
        if token:
            query.append(("continue", token))
        page = kube.raw_get(res.path, query)
        yield from page.get("items") or []
        token = (page.get("metadata") or {}).get("continue") or ""
        if not token:
            return


def _mesh_data(kube: Kube) -> dict[str, str]:
    cm = kube.get("v1", "ConfigMap", MESH_CONFIGMAP, ISTIO_NAMESPACE)
    return dict((cm or {}).get("data") or {})


def run_selector(run_id: str) -> str:
    """The label selector of the namespaces one run created."""
    return f"{LABEL_MANAGED}=pytest-istiolab,{LABEL_RUN}={run_id}"


def sweep_run_namespaces(kube: Kube, run_id: str) -> list[str]:
    """Delete every namespace labelled as created by run ``run_id``; their names."""
    names = [ns["metadata"]["name"] for ns in
             kube.list("v1", "Namespace", label_selector=run_selector(run_id))]
    kube.delete_all([ObjectRef("v1", "Namespace", name) for name in names])
    return names
