"""``istioctl install`` / ``uninstall`` against a :class:`~.backend.Backend`.

Mirrors istioctl 1.26: components are applied in order (Istio core, Istiod, then the
gateways) with server-side apply, each waited for until its Deployments are ready (the
ReplicaSet of their current pod template has its pods Ready, as istioctl's
``deploymentsReady``: old pods of a rollout may still run; CRDs: ``Established``), then
objects the new installation no longer has are pruned. Progress
lines (``✔ Istiod installed 🧠``) go to stderr as the real progress bar writes them;
``Removed ...`` lines and the closing notice go to stdout.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, TextIO

from ..install import COMPONENT_LABEL, COMPONENT_NAMES, InstallSpec, render_spec
from ..install.common import MANAGED_LABEL, NAMESPACE, REVISION_LABEL, VERSION_LABEL
from .backend import ApiError, Backend

Obj = dict[str, Any]
POLL_INTERVAL = 0.05  # seconds between readiness polls of the API (real time, not simulated)

# istioctl's prune order: namespaced kinds, then cluster-scoped ones
NAMESPACED_KINDS = [("apps/v1", "Deployment"), ("apps/v1", "DaemonSet"), ("v1", "Service"),
                    ("v1", "ConfigMap"), ("v1", "Pod"), ("v1", "Secret"),
                    ("v1", "ServiceAccount"), ("rbac.authorization.k8s.io/v1", "RoleBinding"),
                    ("rbac.authorization.k8s.io/v1", "Role"), ("policy/v1", "PodDisruptionBudget"),
                    ("autoscaling/v2", "HorizontalPodAutoscaler"),
                    ("networking.istio.io/v1alpha3", "EnvoyFilter")]
CLUSTER_KINDS = [("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration"),
                 ("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration"),
                 ("rbac.authorization.k8s.io/v1", "ClusterRole"),
                 ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding")]
CRD_KIND = ("apiextensions.k8s.io/v1", "CustomResourceDefinition")


class InstallFailed(Exception):
    """Installation stopped; the message is istioctl's ``Error:`` line."""


def gvk_string(api_version: str, kind: str) -> str:
    """Go's ``schema.GroupVersionKind.String()``: ``apps/v1, Kind=Deployment``."""
    group, _, version = api_version.rpartition("/")
    return f"{group}/{version}, Kind={kind}"


class Installer:
    def __init__(self, backend: Backend, out: TextIO, err: TextIO, timeout: float = 300.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.backend, self.out, self.err = backend, out, err
        self.timeout = timeout
        self.clock = clock

    # ---------------------------------------------------------------- install
    def install(self, spec: InstallSpec) -> None:
        objects = render_spec(spec)
        self._ensure_namespace()
        self._check_gateway_namespaces(objects)
        for component, (name, icon) in COMPONENT_NAMES.items():
            mine = [o for o in objects if o["metadata"]["labels"].get(COMPONENT_LABEL)
                    == component]
            if not mine:
                continue
            try:
                for obj in mine:
                    self.backend.apply(obj)
                self._wait_ready(mine)
            except (ApiError, InstallFailed) as err:
                text = err.message if isinstance(err, ApiError) else str(err)
                self.err.write(f"✘ {name} encountered an error: {text}\n")
                raise InstallFailed("failed to install manifests: errors occurred during "
                                    "operation") from err
            self.err.write(f"✔ {name} installed {icon}\n")
            self.err.flush()
        self.prune(objects, spec)
        self.err.write("✔ Installation complete\n")
        self.err.flush()
        if not spec.revision:
            self.out.write("Made this installation the default for cluster-wide operations.\n")

    def _ensure_namespace(self) -> None:
        if self.backend.get("v1", "Namespace", NAMESPACE) is None:
            self.backend.apply({"apiVersion": "v1", "kind": "Namespace",
                                "metadata": {"name": NAMESPACE}})

    def _check_gateway_namespaces(self, objects: list[Obj]) -> None:
        """istioctl creates only the Istio namespace: a gateway namespace that does not exist
        makes the API server refuse the gateway's objects (``namespaces "istio-ingress" not
        found``). Checked before anything is applied, so nothing is left half-installed
        (the real istioctl would already have applied the components before the gateway)."""
        for o in objects:
            ns = o["metadata"].get("namespace")
            if not ns or ns == NAMESPACE or self.backend.get("v1", "Namespace", ns) is not None:
                continue
            component = o["metadata"]["labels"].get(COMPONENT_LABEL, "")
            name = COMPONENT_NAMES.get(component, (component, ""))[0]
            meta = o["metadata"]
            self.err.write(f"✘ {name} encountered an error: failed to update resource with "
                           f"server-side apply for obj {o['kind']}/{ns}/{meta['name']}: "
                           f'namespaces "{ns}" not found\n')
            raise InstallFailed(f'failed to install manifests: namespace "{ns}" of the '
                                f"{name.lower()} does not exist (istioctl creates only the "
                                f"{NAMESPACE} namespace): create it first, e.g. kubectl "
                                f"create namespace {ns}")

    def _wait_ready(self, objects: list[Obj]) -> None:
        deadline = self.clock() + self.timeout
        waiting = [o for o in objects if o["kind"] in ("Deployment", "CustomResourceDefinition")]
        while waiting:
            waiting = [o for o in waiting if not self._ready(o)]
            if not waiting:
                return
            if self.clock() >= deadline:
                details = "\n".join(f"  {self._not_ready(o)}" for o in waiting)
                raise InstallFailed(f"failed to wait for resource: resources not ready after "
                                    f"{_duration(self.timeout)}: timed out waiting for the "
                                    f"condition\n{details}")
            time.sleep(POLL_INTERVAL)

    def _current(self, o: Obj) -> Obj | None:
        meta = o["metadata"]
        return self.backend.get(o["apiVersion"], o["kind"], meta["name"], meta.get("namespace"))

    def _ready(self, o: Obj) -> bool:
        cur = self._current(o)
        if cur is None:
            return False
        status = cur.get("status") or {}
        if o["kind"] == "CustomResourceDefinition":
            return any(c.get("type") == "Established" and c.get("status") == "True"
                       for c in status.get("conditions") or [])
        want = int((cur.get("spec") or {}).get("replicas", 1))
        new = self._new_replicaset(cur)
        return new is not None and int((new.get("status") or {}).get("readyReplicas", 0)) >= want

    def _new_replicaset(self, dep: Obj) -> Obj | None:
        """kubectl's GetNewReplicaSet: the Deployment's ReplicaSet whose pod template is the
        Deployment's (None until the controller made it). istioctl 1.26 waits for its Ready
        pods only: old pods of a rollout may still run when it says installed."""
        meta, template = dep["metadata"], (dep.get("spec") or {}).get("template") or {}
        for rs in self.backend.list("apps/v1", "ReplicaSet", meta["namespace"]):
            owners = rs["metadata"].get("ownerReferences") or []
            if not any(o.get("uid") == meta.get("uid") for o in owners):
                continue
            theirs = json.loads(json.dumps((rs.get("spec") or {}).get("template") or {}))
            ((theirs.get("metadata") or {}).get("labels") or {}).pop("pod-template-hash", None)
            if theirs == template:
                return rs
        return None

    def _not_ready(self, o: Obj) -> str:
        meta = o["metadata"]
        what = f"{o['kind']}/{meta.get('namespace', '')}/{meta['name']}".replace("//", "/")
        if o["kind"] != "Deployment":
            return what
        selector = ",".join(f"{k}={v}" for k, v in
                            o["spec"]["selector"].get("matchLabels", {}).items())
        reasons = []
        for pod in self.backend.list("v1", "Pod", meta["namespace"], selector):
            phase = (pod.get("status") or {}).get("phase", "Pending")
            waiting = [f"{cs['name']}: {cs['state']['waiting'].get('reason', '')}"
                       for cs in (pod.get("status") or {}).get("containerStatuses") or []
                       if (cs.get("state") or {}).get("waiting")]
            reasons.append(f"pod {pod['metadata']['name']} is {phase}"
                           + (f" ({'; '.join(waiting)})" if waiting else ""))
        return f"{what} ({'; '.join(reasons) or 'no pods'})"

    # ------------------------------------------------------------------ prune
    def prune(self, objects: list[Obj], spec: InstallSpec) -> list[str]:
        """What this istioctl installed before (its version, the same revision) and the new
        installation no longer has; other versions' and revisions' objects stay."""
        keep = {_key(o) for o in objects}
        selector = (f"{MANAGED_LABEL}=Reconcile,{VERSION_LABEL}={spec.version},"
                    f"{REVISION_LABEL}={spec.rev_label},{COMPONENT_LABEL}")
        doomed = [o for api, kind in NAMESPACED_KINDS + CLUSTER_KINDS
                  for o in self._list(api, kind, selector) if _key(o) not in keep]
        # (listed in full before anything is deleted, as istioctl does)
        if doomed:
            self.err.write("- Pruning removed resources\n")
        return [self._remove(o) for o in doomed]

    def _list(self, api_version: str, kind: str, selector: str) -> list[Obj]:
        items = self.backend.list(api_version, kind, None, selector)
        for item in items:
            item["apiVersion"], item["kind"] = api_version, kind
        return items

    def _remove(self, o: Obj) -> str:
        meta = o["metadata"]
        gone = self.backend.delete(o["apiVersion"], o["kind"], meta["name"],
                                   meta.get("namespace"))
        name = f"{gvk_string(o['apiVersion'], o['kind'])}/{meta['name']}." \
               f"{meta.get('namespace', '')}"
        if not gone and not meta.get("ownerReferences"):
            line = f"object: {name} is not being deleted because it no longer exists"
        else:
            line = f"  Removed {name}."
        self.out.write(line + "\n")
        return line

    # -------------------------------------------------------------- uninstall
    def revision_objects(self, revision: str) -> list[Obj]:
        """What ``uninstall --revision`` removes: objects of an Istio component labelled with
        the revision (CRDs are shared and stay; a tag moved to another revision stays)."""
        selector = f"{REVISION_LABEL}={revision},{COMPONENT_LABEL}"
        return [o for api, kind in NAMESPACED_KINDS + CLUSTER_KINDS
                for o in self._list(api, kind, selector)]

    def remove(self, o: Obj) -> str:
        return self._remove(o)

    def purge(self) -> list[str]:
        """``uninstall --purge``: every object carrying an Istio component label, CRDs too."""
        found = [o for api, kind in NAMESPACED_KINDS + CLUSTER_KINDS + [CRD_KIND]
                 for o in self._list(api, kind, COMPONENT_LABEL)]  # list all, then delete
        lines = [self._remove(o) for o in found]
        self.err.write("\n✔ Uninstall complete\n")
        return lines


def _key(o: Obj) -> tuple[str, str, str]:
    meta = o["metadata"]
    return (o["kind"], meta.get("namespace") or "", meta["name"])


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs}s" if minutes else f"{secs}s"
