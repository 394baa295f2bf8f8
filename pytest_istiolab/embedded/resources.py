"""The resource types the embedded API server serves.

Built-in types are declared here; custom resources are added at run time when a
CustomResourceDefinition is created (see :mod:`store`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True)
class ResourceType:
    """One REST resource: ``/api[s]/{group}/{version}/[namespaces/{ns}/]{plural}``."""

    group: str  # "" for the core group
    versions: tuple[str, ...]  # served versions, preferred (storage) first
    plural: str
    singular: str
    kind: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ALL_VERBS
    # For CRDs: the openAPIV3Schema per version (used to reject unknown fields).
    schemas: dict[str, dict] = field(default_factory=dict, compare=False, hash=False)

    @property
    def key(self) -> tuple[str, str]:
        return (self.group, self.plural)

    @property
    def preferred_version(self) -> str:
        return self.versions[0]

    def api_version(self, version: str | None = None) -> str:
        v = version or self.preferred_version
        return f"{self.group}/{v}" if self.group else v

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"


def _core(plural: str, kind: str, namespaced: bool = True, short: tuple[str, ...] = (),
          sub: tuple[str, ...] = (), singular: str | None = None,
          verbs: tuple[str, ...] = ALL_VERBS, categories: tuple[str, ...] = ()) -> ResourceType:
    return ResourceType("", ("v1",), plural, singular or kind.lower(), kind, namespaced, short, sub,
                        categories, verbs=verbs)


BUILTIN_TYPES: tuple[ResourceType, ...] = (
    _core("namespaces", "Namespace", namespaced=False, short=("ns",), sub=("status", "finalize")),
    _core("nodes", "Node", namespaced=False, short=("no",), sub=("status",)),
    _core("pods", "Pod", short=("po",), sub=("status", "log", "exec", "portforward", "attach"),
          categories=("all",)),
    _core("services", "Service", short=("svc",), sub=("status", "proxy"), categories=("all",)),
    _core("endpoints", "Endpoints", short=("ep",), singular="endpoints"),
    _core("configmaps", "ConfigMap", short=("cm",)),
    _core("secrets", "Secret"),
    _core("serviceaccounts", "ServiceAccount", short=("sa",)),
    _core("events", "Event", short=("ev",)),
    _core("persistentvolumeclaims", "PersistentVolumeClaim", short=("pvc",), sub=("status",)),
    _core("resourcequotas", "ResourceQuota", short=("quota",), sub=("status",)),
    _core("limitranges", "LimitRange", short=("limits",)),
    ResourceType("apps", ("v1",), "deployments", "deployment", "Deployment", True, ("deploy",),
                 ("status", "scale"), ("all",)),
    ResourceType("apps", ("v1",), "replicasets", "replicaset", "ReplicaSet", True, ("rs",),
                 ("status", "scale"), ("all",)),
    ResourceType("apps", ("v1",), "statefulsets", "statefulset", "StatefulSet", True, ("sts",),
                 ("status", "scale"), ("all",)),
    ResourceType("apps", ("v1",), "daemonsets", "daemonset", "DaemonSet", True, ("ds",),
                 ("status",), ("all",)),
    ResourceType("batch", ("v1",), "jobs", "job", "Job", True, (), ("status",), ("all",)),
    ResourceType("autoscaling", ("v2",), "horizontalpodautoscalers", "horizontalpodautoscaler",
                 "HorizontalPodAutoscaler", True, ("hpa",), ("status",), ("all",)),
    ResourceType("policy", ("v1",), "poddisruptionbudgets", "poddisruptionbudget",
                 "PodDisruptionBudget", True, ("pdb",), ("status",)),
    ResourceType("rbac.authorization.k8s.io", ("v1",), "clusterroles", "clusterrole", "ClusterRole",
                 False),
    ResourceType("rbac.authorization.k8s.io", ("v1",), "clusterrolebindings", "clusterrolebinding",
                 "ClusterRoleBinding", False),
    ResourceType("rbac.authorization.k8s.io", ("v1",), "roles", "role", "Role", True),
    ResourceType("rbac.authorization.k8s.io", ("v1",), "rolebindings", "rolebinding", "RoleBinding",
                 True),
    ResourceType("admissionregistration.k8s.io", ("v1",), "mutatingwebhookconfigurations",
                 "mutatingwebhookconfiguration", "MutatingWebhookConfiguration", False),
    ResourceType("admissionregistration.k8s.io", ("v1",), "validatingwebhookconfigurations",
                 "validatingwebhookconfiguration", "ValidatingWebhookConfiguration", False),
    ResourceType("apiextensions.k8s.io", ("v1",), "customresourcedefinitions",
                 "customresourcedefinition", "CustomResourceDefinition", False, ("crd", "crds"),
                 ("status",)),
    ResourceType("discovery.k8s.io", ("v1",), "endpointslices", "endpointslice", "EndpointSlice",
                 True),
    ResourceType("networking.k8s.io", ("v1",), "networkpolicies", "networkpolicy", "NetworkPolicy",
                 True, ("netpol",)),
    ResourceType("coordination.k8s.io", ("v1",), "leases", "lease", "Lease", True),
)


def crd_to_type(crd: dict) -> ResourceType:
    """Translate a CustomResourceDefinition object into the type it serves."""
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    served = [v for v in spec.get("versions") or [] if v.get("served", True)]
    # kube-apiserver orders a group's versions by priority (GA > beta > alpha) and
    # prefers the first one: v1 for most Istio types in 1.26.
    ordered = sorted((v["name"] for v in served), key=version_priority)
    schemas = {v["name"]: (v.get("schema") or {}).get("openAPIV3Schema") or {} for v in served}
    return ResourceType(
        group=spec.get("group", ""),
        versions=tuple(ordered),
        plural=names.get("plural", ""),
        singular=names.get("singular") or names.get("kind", "").lower(),
        kind=names.get("kind", ""),
        namespaced=spec.get("scope", "Namespaced") == "Namespaced",
        short_names=tuple(names.get("shortNames") or ()),
        subresources=("status",) if any((v.get("subresources") or {}).get("status") is not None
                                        for v in served) else (),
        categories=tuple(names.get("categories") or ()),
        schemas=schemas,
    )


def version_priority(version: str) -> tuple[int, int, int]:
    """Kubernetes version ordering: v1 > v1beta2 > v1beta1 > v1alpha1 (as a sort key)."""
    import re

    m = re.fullmatch(r"v(\d+)(?:(alpha|beta)(\d+))?", version)
    if not m:
        return (3, 0, 0)
    major = int(m.group(1))
    stage = {"": 0, "beta": 1, "alpha": 2}[m.group(2) or ""]
    minor = int(m.group(3) or 0)
    return (stage, -major, -minor)
