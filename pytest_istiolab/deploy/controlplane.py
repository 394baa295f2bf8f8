"""The control plane serving the labs' namespaces: which istiod revision, and its objects' names.

Istio 1.26 names a revision's objects after it (the ``istiod`` chart with ``--set
revision=X``): Deployment, Service and ServiceAccount ``istiod-X``, mesh ConfigMap
``istio-X``, injector ConfigMap ``istio-sidecar-injector-X``; the proxies it injects carry the
annotation ``istio.io/rev: X`` and ``CA_ADDR: istiod-X.istio-system.svc:15012``, and its mesh
config says ``discoveryAddress: istiod-X.istio-system.svc:15012``. The default revision keeps
the bare names (``istiod``, ``istio``). The manual assumes the default revision; after a
canary upgrade that removed it, only the revisioned names exist.

Which revision injects a namespace is read the way the injection webhooks select it:
``istio-injection=enabled`` goes to the ``default`` tag, else ``istio.io/rev=<name>`` names a
tag or a revision. A tag is a MutatingWebhookConfiguration labelled ``istio.io/tag=<tag>``
whose ``istio.io/rev`` label is the revision it points at (``istioctl tag set``); without a
``default`` tag, ``default`` is the default revision.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pytest_istiolab.errors import ClusterError
from pytest_istiolab.kube import Kube

ISTIO_NAMESPACE = "istio-system"
REVISION_LABEL = "istio.io/rev"
TAG_LABEL = "istio.io/tag"
INJECTION_LABEL = "istio-injection"
DEFAULT = "default"
LAB_NAMESPACE_LABELS = {INJECTION_LABEL: "enabled"}  # what kube.Namespaces gives a lab's namespace
XDS_PORT = 15012  # istiod's xDS and CA port (mTLS)


@dataclass(frozen=True)
class ControlPlane:
    """One istiod revision and the names Istio 1.26 gives what it installs and injects."""

    revision: str = DEFAULT
    selected_by: str = DEFAULT  # the tag or revision name the namespace's labels give

    @property
    def revisioned(self) -> bool:
        return self.revision != DEFAULT

    def _named(self, base: str) -> str:
        return f"{base}-{self.revision}" if self.revisioned else base

    @property
    def istiod(self) -> str:
        """The istiod Deployment, Service and ServiceAccount: ``istiod`` or ``istiod-<rev>``."""
        return self._named("istiod")

    @property
    def mesh_configmap(self) -> str:
        """The mesh config: ``istio`` or ``istio-<rev>``."""
        return self._named("istio")

    @property
    def injector_configmap(self) -> str:
        return self._named("istio-sidecar-injector")

    @property
    def address(self) -> str:
        """What its proxies dial (``CA_ADDR``, ``discoveryAddress``)."""
        return f"{self.istiod}.{ISTIO_NAMESPACE}.svc:{XDS_PORT}"

    @property
    def install_sets(self) -> dict[str, str]:
        """The ``--set`` that (re)installs this revision and not another beside it."""
        return {"revision": self.revision} if self.revisioned else {}

    def describe(self) -> str:
        via = "" if self.selected_by == self.revision else f" (through tag {self.selected_by})"
        return f"revision {self.revision}{via}: {self.istiod} in {ISTIO_NAMESPACE}"


def pod_revision(pod: dict[str, Any]) -> str | None:
    """The revision that injected ``pod``: the sidecar template's ``istio.io/rev``
    annotation (gateway templates write it as a label); None for a pod without it."""
    meta = pod.get("metadata") or {}
    return ((meta.get("annotations") or {}).get(REVISION_LABEL)
            or (meta.get("labels") or {}).get(REVISION_LABEL))


def selected_name(labels: dict[str, str], where: str) -> str:
    """The tag or revision a namespace's labels select (``istio-injection`` wins, as the
    webhooks' selectors say); ClusterError when they select none."""
    if labels.get(INJECTION_LABEL) == "enabled":
        return DEFAULT
    if labels.get(REVISION_LABEL) and labels.get(INJECTION_LABEL) is None:
        return labels[REVISION_LABEL]
    raise ClusterError(f"{where} is not labelled for sidecar injection (neither "
                       f"{INJECTION_LABEL}=enabled nor {REVISION_LABEL}=<revision or tag>)",
                       f"label it: kubectl label namespace <name> {INJECTION_LABEL}=enabled")


def resolve(kube: Kube, name: str) -> ControlPlane:
    """The revision ``name`` stands for: a tag's target, else ``name`` itself."""
    tags = kube.list("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration",
                     label_selector=f"{TAG_LABEL}={name}")
    targets = sorted({str((t["metadata"].get("labels") or {}).get(REVISION_LABEL) or DEFAULT)
                      for t in tags})
    if len(targets) > 1:
        raise ClusterError(f"tag {name} points at several revisions ({', '.join(targets)})",
                           f"istioctl tag set {name} --revision <one of them> --overwrite")
    return ControlPlane(targets[0] if targets else name, name)


def serving_control_plane(kube: Kube, namespace: str | None = None) -> ControlPlane:
    """The control plane injecting ``namespace`` (by its labels), or, without one, the one
    that injects the namespaces the suite creates for its labs (``istio-injection=enabled``)."""
    if namespace is None:
        return resolve(kube, selected_name(LAB_NAMESPACE_LABELS, "a lab namespace"))
    ns = kube.get("v1", "Namespace", namespace)
    if ns is None:
        raise ClusterError(f"namespace {namespace} does not exist",
                           "create it, or check --istio-context points at the mesh")
    labels = (ns.get("metadata") or {}).get("labels") or {}
    return resolve(kube, selected_name(labels, f"namespace {namespace}"))
