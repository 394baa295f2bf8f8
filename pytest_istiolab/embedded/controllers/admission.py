"""Create-time defaulting that kube-apiserver does synchronously, plus sidecar injection.

Pods: the ServiceAccount admission plugin (``serviceAccountName``, the ``kube-api-access-*``
projected token volume and its mounts), the API defaults a ``kubectl get -o yaml`` shows,
``status.phase: Pending``; then the Istio sidecar injector (see :mod:`..injection`); then
the in-tree plugins again, as Kubernetes re-runs them after a webhook changed the pod.
Services: ClusterIP and NodePort allocation and the Service defaults.
"""

from __future__ import annotations

from ..resources import ResourceType
from ..runtime import Runtime
from .services import allocate_service
from .util import POD, SERVICE, Obj, random_suffix

_MARK = "_istiolab_admission_registered"
SA_MOUNT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"


def register_admission(runtime: Runtime) -> None:
    """Install the admission plugins on ``runtime.store`` (once)."""
    if getattr(runtime.store, _MARK, False):
        return
    setattr(runtime.store, _MARK, True)
    import random

    rng = random.Random(runtime.seed ^ 0x5A5A)

    def admit(rt: ResourceType, obj: Obj) -> Obj:
        if rt.key == POD:
            return admit_pod(runtime, obj, rng)
        if rt.key == SERVICE:
            allocate_service(runtime, obj, strict=True)
        return obj

    runtime.store.add_admission(admit)


def admit_pod(runtime: Runtime, pod: Obj, rng: object) -> Obj:
    from ..injection import maybe_inject

    default_pod(pod, rng)
    pod = maybe_inject(runtime, pod)
    default_pod(pod, rng)
    return pod


def default_pod(pod: Obj, rng: object) -> None:
    spec = pod.setdefault("spec", {})
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("securityContext", {})
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("enableServiceLinks", True)
    spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
    spec.setdefault("priority", 0)
    sa = spec.get("serviceAccountName") or spec.get("serviceAccount") or "default"
    spec["serviceAccountName"] = sa
    spec["serviceAccount"] = sa
    if not spec.get("tolerations"):
        spec["tolerations"] = [
            {"key": f"node.kubernetes.io/{t}", "operator": "Exists", "effect": "NoExecute",
             "tolerationSeconds": 300} for t in ("not-ready", "unreachable")]
    for container in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]:
        _default_container(container)
    if spec.get("automountServiceAccountToken") is not False:
        _mount_token(spec, rng)
    status = pod.setdefault("status", {})
    status.setdefault("phase", "Pending")
    status["qosClass"] = qos_class(spec)


def _default_container(c: Obj) -> None:
    image = str(c.get("image") or "")
    tag = image.rsplit("/", 1)[-1]
    latest = "@" not in tag and (":" not in tag or tag.endswith(":latest"))
    c.setdefault("imagePullPolicy", "Always" if latest else "IfNotPresent")
    c.setdefault("terminationMessagePath", "/dev/termination-log")
    c.setdefault("terminationMessagePolicy", "File")
    c.setdefault("resources", {})
    for port in c.get("ports") or []:
        port.setdefault("protocol", "TCP")


def _mount_token(spec: Obj, rng: object) -> None:
    volumes = spec.setdefault("volumes", [])
    existing = next((v["name"] for v in volumes
                     if v.get("name", "").startswith("kube-api-access-")), None)
    if existing is None:
        existing = "kube-api-access-" + random_suffix(rng)  # type: ignore[arg-type]
        volumes.append({"name": existing, "projected": {"defaultMode": 420, "sources": [
            {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
            {"configMap": {"name": "kube-root-ca.crt",
                           "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
            {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {
                "apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}]}})
    for c in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]:
        mounts = c.setdefault("volumeMounts", [])
        if not any(m.get("mountPath") == SA_MOUNT_PATH for m in mounts):
            mounts.append({"name": existing, "mountPath": SA_MOUNT_PATH, "readOnly": True})


def qos_class(spec: Obj) -> str:
    containers = [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]
    resources = [c.get("resources") or {} for c in containers]
    if not any(r.get("requests") or r.get("limits") for r in resources):
        return "BestEffort"
    for r in resources:
        limits, requests = r.get("limits") or {}, r.get("requests") or {}
        for res in ("cpu", "memory"):
            if res not in limits or str(requests.get(res, limits[res])) != str(limits[res]):
                return "Burstable"
    return "Guaranteed"
