"""Labels and metadata shared by every object ``istioctl install`` creates.

``istioctl`` 1.26 adds owner labels to every object it applies (``operator.istio.io/managed:
Reconcile``, ``operator.istio.io/version``, ``istio.io/rev``, ``operator.istio.io/component``)
on top of the chart labels (``install.operator.istio.io/owning-resource: unknown``,
``app.kubernetes.io/*``); pruning and ``uninstall --purge`` select on them.
"""

from __future__ import annotations

from typing import Any

from .profiles import ISTIO_VERSION

Obj = dict[str, Any]
NAMESPACE = "istio-system"
COMPONENT_LABEL = "operator.istio.io/component"
MANAGED_LABEL = "operator.istio.io/managed"
VERSION_LABEL = "operator.istio.io/version"
REVISION_LABEL = "istio.io/rev"
OWNING_RESOURCE = "install.operator.istio.io/owning-resource"

# component -> (user facing name, icon), in install order
COMPONENT_NAMES: dict[str, tuple[str, str]] = {
    "Base": ("Istio core", "⛵️"),
    "Pilot": ("Istiod", "🧠"),
    "EgressGateways": ("Egress gateways", "🛫"),
    "IngressGateways": ("Ingress gateways", "🛬"),
}


def owner_labels(component: str | None = None, version: str = ISTIO_VERSION,
                 revision: str = "default") -> dict[str, str]:
    labels = {MANAGED_LABEL: "Reconcile", VERSION_LABEL: version, REVISION_LABEL: revision}
    if component:
        labels[COMPONENT_LABEL] = component
    return labels


def chart_labels(app: str, component: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    labels = {"app": app, OWNING_RESOURCE: "unknown", REVISION_LABEL: "default",
              COMPONENT_LABEL: component, "release": "istio",
              "app.kubernetes.io/name": app, "app.kubernetes.io/part-of": "istio",
              "app.kubernetes.io/version": ISTIO_VERSION,
              "app.kubernetes.io/managed-by": "Helm", "app.kubernetes.io/instance": "istio"}
    labels.update(extra or {})
    return labels


def obj(api_version: str, kind: str, name: str, labels: dict[str, str], body: Obj | None = None,
        namespaced: bool = True, annotations: dict[str, str] | None = None,
        namespace: str = NAMESPACE) -> Obj:
    meta: Obj = {"name": name}
    if namespaced:
        meta["namespace"] = namespace
    meta["labels"] = dict(labels)
    if annotations:
        meta["annotations"] = dict(annotations)
    return {"apiVersion": api_version, "kind": kind, "metadata": meta, **(body or {})}


def stamp_release(o: Obj, version: str, revision: str) -> None:
    """Give a rendered object (and its pod template) the release's version and revision
    labels, where the chart puts them (``app.kubernetes.io/version``, ``istio.io/rev``)."""
    metas = [o.get("metadata") or {}]
    template = ((o.get("spec") or {}).get("template") or {}).get("metadata")
    if template:
        metas.append(template)
    for meta in metas:
        labels = meta.get("labels") or {}
        if "app.kubernetes.io/version" in labels:
            labels["app.kubernetes.io/version"] = version
        if REVISION_LABEL in labels:
            labels[REVISION_LABEL] = revision
        annotations = meta.get("annotations") or {}
        if REVISION_LABEL in annotations:
            annotations[REVISION_LABEL] = revision


def component_of(o: Obj) -> str:
    return str(((o.get("metadata") or {}).get("labels") or {}).get(COMPONENT_LABEL, ""))


def proxy_env(workload: str, extra: list[Obj] | None = None,
              istiod: str = "istiod", namespace: str = NAMESPACE) -> list[Obj]:
    """The environment of a gateway's istio-proxy (router mode)."""
    def field(name: str, path: str) -> Obj:
        return {"name": name, "valueFrom": {"fieldRef": {"apiVersion": "v1",
                                                         "fieldPath": path}}}
    return [
        {"name": "PILOT_CERT_PROVIDER", "value": "istiod"},
        {"name": "CA_ADDR", "value": f"{istiod}.{NAMESPACE}.svc:15012"},
        field("NODE_NAME", "spec.nodeName"), field("POD_NAME", "metadata.name"),
        field("POD_NAMESPACE", "metadata.namespace"), field("INSTANCE_IP", "status.podIP"),
        field("HOST_IP", "status.hostIP"),
        {"name": "ISTIO_CPU_LIMIT", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}},
        field("SERVICE_ACCOUNT", "spec.serviceAccountName"),
        {"name": "ISTIO_META_WORKLOAD_NAME", "value": workload},
        {"name": "ISTIO_META_OWNER",
         "value": f"kubernetes://apis/apps/v1/namespaces/{namespace}/deployments/{workload}"},
        {"name": "ISTIO_META_MESH_ID", "value": "cluster.local"},
        {"name": "TRUST_DOMAIN", "value": "cluster.local"},
        {"name": "ISTIO_META_UNPRIVILEGED_POD", "value": "true"},
        {"name": "ISTIO_META_CLUSTER_ID", "value": "Kubernetes"},
        field("ISTIO_META_NODE_NAME", "spec.nodeName"),
        *(extra or []),
    ]
