"""Kiali's list pages as the API serves them: ``/api/clusters/apps|services|workloads``.

Shapes of ``models/app.go``, ``service.go`` and ``workload.go`` @v2.8.0. An application is
the app label of Deployments' pod templates (Kiali's default app label names, the first one
present: ``service.istio.io/canonical-name``, ``app.kubernetes.io/name``, ``app``; versions
likewise); its ``labels``
join each label's values across its workloads (``version: v1,v2,v3``), as Kiali shows them.
``istioReferences`` are empty and ``validations`` are ``{}``: Istio config validation is not
modelled.
"""

from __future__ import annotations

from typing import Any

from ..mesh.topology import has_sidecar, is_gateway, pod_labels, selects
from .base import AppContext

Obj = dict[str, Any]
APP_LABELS = ("service.istio.io/canonical-name", "app.kubernetes.io/name", "app")
VERSION_LABELS = ("service.istio.io/canonical-revision", "app.kubernetes.io/version", "version")


def app_of(labels: dict[str, str]) -> str:
    """The workload's application by Kiali's app label names ("" when it has none)."""
    return next((labels[k] for k in APP_LABELS if labels.get(k)), "")


def _pods(ctx: AppContext, ns: str, selector: dict[str, str] | None) -> list[Obj]:
    return [p for p in ctx.runtime.store.by_kind("", "pods", ns)
            if selects(selector, pod_labels(p))]


def _deployments(ctx: AppContext, ns: str) -> list[tuple[Obj, list[Obj]]]:
    out = []
    for dep in sorted(ctx.runtime.store.by_kind("apps", "deployments", ns),
                      key=lambda d: d["metadata"]["name"]):
        selector = ((dep.get("spec") or {}).get("selector") or {}).get("matchLabels")
        out.append((dep, _pods(ctx, ns, selector)))
    return out


def _template_labels(dep: Obj) -> dict[str, str]:
    meta = ((dep.get("spec") or {}).get("template") or {}).get("metadata") or {}
    return {k: str(v) for k, v in (meta.get("labels") or {}).items()}


def _workload(dep: Obj, pods: list[Obj], cluster: str, health: Obj | None) -> Obj:
    meta, labels = dep["metadata"], _template_labels(dep)
    template = ((dep.get("spec") or {}).get("template") or {}).get("spec") or {}
    item: Obj = {
        "name": meta["name"], "namespace": meta.get("namespace", "default"), "cluster": cluster,
        "gvk": {"Group": "apps", "Version": "v1", "Kind": "Deployment"},
        "createdAt": meta.get("creationTimestamp", ""),
        "resourceVersion": str(meta.get("resourceVersion", "")),
        "istioSidecar": bool(pods) and all(has_sidecar(p) for p in pods),
        "isAmbient": False, "isGateway": any(is_gateway(p) for p in pods), "isWaypoint": False,
        "isZtunnel": False, "additionalDetailSample": None, "labels": labels,
        "appLabel": bool(app_of(labels)),
        "versionLabel": any(labels.get(k) for k in VERSION_LABELS),
        "podCount": len(pods), "annotations": dict(meta.get("annotations") or {}),
        "healthAnnotations": {}, "istioReferences": [],
        "serviceAccountNames": sorted({str(template.get("serviceAccountName") or "default")}),
    }
    if health is not None:
        item["health"] = health.get(meta["name"])
    return item


def _app(name: str, ns: str, workloads: list[tuple[Obj, list[Obj]]], cluster: str,
         health: Obj | None) -> Obj:
    joined: dict[str, list[str]] = {}
    for dep, _ in workloads:
        for key, value in _template_labels(dep).items():
            if value not in joined.setdefault(key, []):
                joined[key].append(value)
    pods = [p for _, ps in workloads for p in ps]
    item: Obj = {"name": name, "namespace": ns, "cluster": cluster,
                 "istioSidecar": bool(pods) and all(has_sidecar(p) for p in pods),
                 "isAmbient": False, "isGateway": any(is_gateway(p) for p in pods),
                 "labels": {k: ",".join(sorted(v)) for k, v in joined.items()},
                 "istioReferences": []}
    if health is not None:
        item["health"] = health.get(name)
    return item


def _service(svc: Obj, ctx: AppContext, cluster: str, health: Obj | None) -> Obj:
    meta, spec = svc["metadata"], svc.get("spec") or {}
    selector = {k: str(v) for k, v in (spec.get("selector") or {}).items()}
    pods = _pods(ctx, meta.get("namespace", "default"), selector) if selector else []
    labels = dict(meta.get("labels") or {})
    item: Obj = {
        "name": meta["name"], "namespace": meta.get("namespace", "default"),
        "istioSidecar": bool(pods) and all(has_sidecar(p) for p in pods), "cluster": cluster,
        "isAmbient": False, "appLabel": bool(app_of(labels)), "additionalDetailSample": None,
        "annotations": dict(meta.get("annotations") or {}), "healthAnnotations": {},
        "ports": {str(p.get("name") or p.get("port")): int(p["port"])
                  for p in spec.get("ports") or []},
        "labels": labels, "selector": selector, "istioReferences": [], "kialiWizard": "",
        "serviceRegistry": "Kubernetes",
    }
    if health is not None:
        item["health"] = health.get(meta["name"])
    return item


def list_items(ctx: AppContext, what: str, namespaces: list[str], health: Obj | None,
               cluster: str) -> Obj:
    """The body of ``/api/clusters/<what>?namespaces=...`` (``health`` by namespace, or None)."""
    items: list[Obj] = []
    for ns in namespaces:
        ns_health = None if health is None else health.get(ns, {})
        if what == "services":
            items += [_service(s, ctx, cluster, ns_health) for s in sorted(
                ctx.runtime.store.by_kind("", "services", ns), key=lambda s: s["metadata"]["name"])]
            continue
        deployments = _deployments(ctx, ns)
        if what == "workloads":
            items += [_workload(d, pods, cluster, ns_health) for d, pods in deployments]
            continue
        apps: dict[str, list[tuple[Obj, list[Obj]]]] = {}
        for dep, pods in deployments:
            app = app_of(_template_labels(dep))
            if app:
                apps.setdefault(app, []).append((dep, pods))
        items += [_app(name, ns, apps[name], cluster, ns_health) for name in sorted(apps)]
    key = {"apps": "applications", "services": "services", "workloads": "workloads"}[what]
    body: Obj = {key: items, "cluster": cluster}
    if what != "apps":
        body["validations"] = {}
    return body
