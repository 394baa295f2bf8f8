"""Istio 1.26 automatic sidecar injection, as a store admission plugin, and ``kube-inject``.

Active only while a revision's MutatingWebhookConfiguration exists (``istio-sidecar-injector``
for the default revision, ``istio-sidecar-injector-<rev>`` for others); revision tags
(``istio-revision-tag-<tag>``, labelled ``istio.io/tag`` and ``istio.io/rev``) point a tag at
a revision, and the ``default`` tag takes ``istio-injection=enabled``. The revision's
``istio-sidecar-injector[-<rev>]`` ConfigMap gives the proxy image (its version) and
``istio[-<rev>]`` the mesh config. Rules, as the 1.26 webhooks and injector policy decide them:

* namespace ``istio-injection=enabled`` (or ``istio.io/rev=default`` without
  ``istio-injection``): inject, unless the pod has ``sidecar.istio.io/inject: "false"``
  (label, or the deprecated annotation);
* namespace without either label: inject only pods labelled ``sidecar.istio.io/inject:
  "true"`` or ``istio.io/rev=default``;
* namespace ``istio-injection=disabled``: never; ``kube-system``/``kube-public``: never;
  ``hostNetwork`` pods and already injected pods: never.

If the webhook configuration exists but the ``istiod`` Service does not (e.g. ``istio-system``
was deleted without uninstalling), a pod that needs injection is rejected with the 500
error kube-apiserver gives when it cannot call the webhook (``failurePolicy: Fail``).

Native sidecars, as 1.27's ``ENABLE_NATIVE_SIDECARS=auto`` decides them
(``DetectNativeSidecar``): on when the proxy image's release has the feature on by default
(:attr:`.install.releases.Release.native_sidecars`) and every node's kubelet is >= 1.33 (the
embedded node reports v1.33.1); the pod annotation ``sidecar.istio.io/nativeSidecar``
(``"true"``/``"false"``) overrides it on every release. ``istio-proxy`` then goes into
``initContainers`` right after ``istio-init``, ahead of the pod's own init containers.

The template itself lives in :mod:`.install.sidecar`. Not modelled: injection templates and
custom-template annotations, CNI.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from typing import Any

import yaml

from .install.releases import RELEASES
from .install.sidecar import (
    HUB,
    SidecarValues,
    init_container,
    proxy_container,
    proxy_image,
    sidecar_volumes,
    status_annotation,
)
from .podspec import proxy_of
from .runtime import Runtime

Obj = dict[str, Any]
STATUS = "sidecar.istio.io/status"
INJECT = "sidecar.istio.io/inject"
NATIVE = "sidecar.istio.io/nativeSidecar"
NATIVE_MIN_KUBELET_MINOR = 33  # DetectNativeSidecar's minVersion (stable in Kubernetes 1.33)
WEBHOOK = "istio-sidecar-injector"
IGNORED_NAMESPACES = ("kube-system", "kube-public")
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job",
                  "ReplicationController", "CronJob")


def is_injected(pod: Obj) -> bool:
    """True if ``pod`` (or a pod template) carries an Istio sidecar."""
    meta = pod.get("metadata") or {}
    if STATUS in (meta.get("annotations") or {}):
        return True
    return proxy_of(pod) is not None


def injection_required(namespace_labels: dict[str, str], pod: Obj, namespace: str,
                       revision_aware: bool = False) -> bool:
    """Would the 1.26 webhooks inject ``pod`` into a namespace with these labels?

    ``revision_aware``: any ``istio.io/rev`` value counts (which revision or tag it names,
    and whether one is installed, :func:`injecting_revision` decides); otherwise only
    ``default``."""
    spec = pod.get("spec") or {}
    meta = pod.get("metadata") or {}
    labels = meta.get("labels") or {}
    annotations = meta.get("annotations") or {}
    if namespace in IGNORED_NAMESPACES or spec.get("hostNetwork") or is_injected(pod):
        return False
    ns_inject = namespace_labels.get("istio-injection")
    ns_rev = namespace_labels.get("istio.io/rev")
    pod_flag = labels.get(INJECT, annotations.get(INJECT))
    if ns_inject == "disabled":
        return False
    if ns_inject == "enabled" or (ns_inject is None and ns_rev is not None
                                  and (revision_aware or ns_rev == "default")):
        return str(pod_flag).lower() != "false"
    if ns_inject is None and ns_rev is None:
        if labels.get(INJECT) == "false":
            return False
        pod_rev = labels.get("istio.io/rev")
        return labels.get(INJECT) == "true" or pod_rev == "default" or (
            revision_aware and bool(pod_rev))
    return False


def workload_of(pod: Obj) -> tuple[str, str]:
    """(workload name, ISTIO_META_OWNER) of a pod, from its controller reference."""
    meta = pod.get("metadata") or {}
    ns = meta.get("namespace") or "default"
    refs = [r for r in meta.get("ownerReferences") or [] if r.get("controller")]
    if refs:
        ref = refs[0]
        name, kind = ref["name"], ref.get("kind", "")
        phash = (meta.get("labels") or {}).get("pod-template-hash")
        if kind == "ReplicaSet" and phash and name.endswith("-" + phash):
            deploy = name[: -len(phash) - 1]
            return deploy, f"kubernetes://apis/apps/v1/namespaces/{ns}/deployments/{deploy}"
        group = ref.get("apiVersion", "v1")
        plural = kind.lower() + "s"
        return name, f"kubernetes://apis/{group}/namespaces/{ns}/{plural}/{name}"
    name = meta.get("name") or (meta.get("generateName") or "").rstrip("-")
    return name, f"kubernetes://apis/v1/namespaces/{ns}/pods/{name}"


def inject_pod(pod: Obj, values: SidecarValues, workload: str | None = None,
               owner: str | None = None) -> Obj:
    """A copy of ``pod`` (a Pod or a pod template) with the Istio sidecar added."""
    pod = copy.deepcopy(pod)
    meta = pod.setdefault("metadata", {})
    spec = pod.setdefault("spec", {})
    if workload is None or owner is None:
        workload, owner = workload_of(pod)
    apps = [c for c in spec.get("containers") or [] if c.get("name") != "istio-proxy"]
    flag = str((meta.get("annotations") or {}).get(NATIVE, "")).lower()
    native = flag == "true" or (flag != "false" and values.native)
    if native != values.native:
        values = dataclasses.replace(values, native=native)
    proxy = proxy_container(values, apps, workload, owner)
    own_inits = [c for c in spec.get("initContainers") or [] if c.get("name") != "istio-proxy"]
    spec["initContainers"] = [init_container(values), *([proxy] if native else []), *own_inits]
    spec["containers"] = apps if native else [*apps, proxy]
    names = {v.get("name") for v in spec.get("volumes") or []}
    spec["volumes"] = [*(spec.get("volumes") or []),
                       *(v for v in sidecar_volumes() if v["name"] not in names)]
    labels = meta.setdefault("labels", {})
    labels.setdefault("security.istio.io/tlsMode", "istio")
    labels.setdefault("service.istio.io/canonical-name",
                      labels.get("app.kubernetes.io/name") or labels.get("app") or workload)
    labels.setdefault("service.istio.io/canonical-revision",
                      labels.get("app.kubernetes.io/version") or labels.get("version")
                      or "latest")
    ann = meta.setdefault("annotations", {})
    first = apps[0]["name"] if apps else "istio-proxy"
    ann.setdefault("istio.io/rev", values.revision)
    ann.setdefault("kubectl.kubernetes.io/default-container", first)
    ann.setdefault("kubectl.kubernetes.io/default-logs-container", first)
    ann.setdefault("prometheus.io/path", "/stats/prometheus")
    ann.setdefault("prometheus.io/port", "15020")
    ann.setdefault("prometheus.io/scrape", "true")
    ann[STATUS] = status_annotation(values.revision, native)
    return pod


def native_by_default(proxy_version: str, kubelet_versions: list[str]) -> bool:
    """``ENABLE_NATIVE_SIDECARS=auto``: the release turns it on and every node's kubelet is
    >= 1.33 (a version that does not parse counts as too old, as in ``DetectNativeSidecar``)."""
    found = RELEASES.get(proxy_version.lstrip("v"))
    if found is None or not found.native_sidecars or not kubelet_versions:
        return False
    return all(_kubelet_minor(v) >= NATIVE_MIN_KUBELET_MINOR for v in kubelet_versions)


def _kubelet_minor(version: str) -> int:
    parts = version.lstrip("v").split(".")
    try:
        return int(parts[1])
    except (IndexError, ValueError):
        return -1


def kubelet_versions(nodes: list[Obj]) -> list[str]:
    return [str((((n.get("status") or {}).get("nodeInfo")) or {}).get("kubeletVersion") or "")
            for n in nodes]


# ------------------------------------------------------------ cluster side
def values_from_configmaps(injector_cm: Obj | None, mesh_cm: Obj | None) -> SidecarValues:
    """Read the template inputs the way istiod does: injector ``values`` and ``mesh``."""
    values = SidecarValues()
    data = (injector_cm or {}).get("data") or {}
    try:
        raw = json.loads(data.get("values") or "{}")
    except ValueError:
        raw = {}
    proxy = (raw.get("global") or {}).get("proxy") or {}
    res = proxy.get("resources") or {}
    values.requests = dict(res.get("requests") or values.requests)
    values.limits = dict(res.get("limits") or values.limits)
    values.log_level = proxy.get("logLevel") or values.log_level
    values.component_log_level = proxy.get("componentLogLevel") or values.component_log_level
    glob = raw.get("global") or {}
    values.mesh_id = glob.get("meshID") or values.mesh_id
    values.cluster_id = (glob.get("multiCluster") or {}).get("clusterName") or values.cluster_id
    values.revision = raw.get("revision") or "default"
    if glob.get("tag"):
        values.image = proxy_image(str(glob["tag"])) if (glob.get("hub") or HUB) == HUB \
            else f"{glob['hub']}/proxyv2:{glob['tag']}"
    mesh = yaml.safe_load(((mesh_cm or {}).get("data") or {}).get("mesh") or "") or {}
    values.trust_domain = mesh.get("trustDomain") or values.trust_domain
    return values


def cluster_values(runtime: Runtime, revision: str = "default") -> SidecarValues:
    store = runtime.store
    cms = store.resource_type("", "configmaps")
    suffix = "" if revision == "default" else f"-{revision}"
    values = values_from_configmaps(store.try_get(cms, "istio-system", WEBHOOK + suffix),
                                    store.try_get(cms, "istio-system", "istio" + suffix))
    nodes = store.list(store.resource_type("", "nodes"), None, None)[0]
    values.native = native_by_default(values.version, kubelet_versions(nodes))
    return values


def _revisions(runtime: Runtime) -> tuple[set[str], dict[str, str]]:
    """(revisions with an injector webhook, tag -> revision), from the cluster's
    MutatingWebhookConfigurations as ``istioctl install`` and ``istioctl tag`` write them."""
    store = runtime.store
    webhooks = store.resource_type("admissionregistration.k8s.io",
                                   "mutatingwebhookconfigurations")
    revisions, tags = set(), {}
    for hook in store.list(webhooks, None, None)[0]:
        meta = hook.get("metadata") or {}
        labels = meta.get("labels") or {}
        name = meta.get("name", "")
        if name == WEBHOOK:
            revisions.add("default")
        elif name.startswith(WEBHOOK + "-"):
            revisions.add(name[len(WEBHOOK) + 1:])
        elif labels.get("istio.io/tag") and labels.get("istio.io/rev"):
            tags[labels["istio.io/tag"]] = labels["istio.io/rev"]
    return revisions, tags


def injecting_revision(runtime: Runtime, ns_labels: dict[str, str], pod: Obj,
                       namespace: str) -> str | None:
    """The revision whose injector takes ``pod``, as the revision and tag webhooks select
    it (``None``: no webhook matches)."""
    if not injection_required(ns_labels, pod, namespace, revision_aware=True):
        return None
    revisions, tags = _revisions(runtime)

    def resolve(name: str) -> str | None:
        if name in tags:
            return tags[name] if tags[name] in revisions else None
        return name if name in revisions else None
    labels = (pod.get("metadata") or {}).get("labels") or {}
    if ns_labels.get("istio-injection") == "enabled":
        return resolve("default")
    if "istio.io/rev" in ns_labels:
        return resolve(ns_labels["istio.io/rev"])
    if labels.get("istio.io/rev"):
        return resolve(labels["istio.io/rev"])
    return resolve("default")  # sidecar.istio.io/inject=true: the default tag's webhook


def maybe_inject(runtime: Runtime, pod: Obj) -> Obj:
    """The admission step: inject ``pod`` if Istio is installed and the webhooks say so."""
    store = runtime.store
    ns = (pod.get("metadata") or {}).get("namespace") or "default"
    nso = store.try_get(store.resource_type("", "namespaces"), None, ns) or {}
    ns_labels = (nso.get("metadata") or {}).get("labels") or {}
    revision = injecting_revision(runtime, ns_labels, pod, ns)
    if revision is None:
        return pod
    values = cluster_values(runtime, revision)
    services = store.resource_type("", "services")
    if store.try_get(services, "istio-system", values.istiod) is None:
        from .store import StoreError

        hook, svc = _webhook_name(ns_labels), values.istiod
        raise StoreError(500, "InternalError", f'Internal error occurred: failed calling webhook '
                         f'"{hook}": failed to call webhook: Post "https://{svc}.istio-system.'
                         f'svc:443/inject?timeout=10s": service "{svc}" not found',
                         {"causes": [{"message": f"service \"{svc}\" not found"}]})
    return inject_pod(pod, values)


def _webhook_name(ns_labels: dict[str, str]) -> str:
    """The webhook of ``istio-sidecar-injector`` that matched (for error messages)."""
    if ns_labels.get("istio-injection") == "enabled":
        return "namespace.sidecar-injector.istio.io"
    if ns_labels.get("istio.io/rev"):
        return "rev.namespace.sidecar-injector.istio.io"
    return "object.sidecar-injector.istio.io"


# --------------------------------------------------------------- kube-inject
def kube_inject_documents(docs: list[Obj], values: SidecarValues) -> list[Obj]:
    """``istioctl kube-inject``: inject every workload's pod template and every Pod."""
    out = []
    for doc in docs:
        if not isinstance(doc, dict):
            continue
        out.append(kube_inject_object(doc, values))
    return out


def kube_inject_object(doc: Obj, values: SidecarValues) -> Obj:
    kind = doc.get("kind", "")
    if kind == "List":
        doc = copy.deepcopy(doc)
        doc["items"] = [kube_inject_object(i, values) for i in doc.get("items") or []]
        return doc
    name = (doc.get("metadata") or {}).get("name", "")
    if kind == "Pod":
        return doc if _skip(doc) else inject_pod(doc, values)
    if kind not in WORKLOAD_KINDS:
        return doc
    doc = copy.deepcopy(doc)
    holder = doc["spec"]["jobTemplate"]["spec"] if kind == "CronJob" else doc["spec"]
    template = holder.get("template") or {}
    if _skip(template):
        return doc
    group = "batch/v1" if kind in ("Job", "CronJob") else "apps/v1"
    if kind == "ReplicationController":
        group = "v1"
    owner = f"kubernetes://apis/{group}/namespaces/{{ns}}/{kind.lower()}s/{name}"
    injected = inject_pod(template, values, name, owner)
    for env in (proxy_of(injected) or {}).get("env") or []:
        if env["name"] == "ISTIO_META_OWNER":
            ns = (doc.get("metadata") or {}).get("namespace") or "default"
            env["value"] = env["value"].replace("{ns}", ns)
    injected["metadata"].pop("creationTimestamp", None)
    holder["template"] = injected
    return doc


def _skip(pod: Obj) -> bool:
    labels = (pod.get("metadata") or {}).get("labels") or {}
    ann = (pod.get("metadata") or {}).get("annotations") or {}
    flag = labels.get(INJECT, ann.get(INJECT))
    return is_injected(pod) or str(flag).lower() == "false" or bool(
        (pod.get("spec") or {}).get("hostNetwork"))
