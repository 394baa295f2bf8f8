"""Deployment, ReplicaSet and StatefulSet controllers.

A Deployment owns one ReplicaSet per pod template (``<deploy>-<pod-template-hash>``); a
template change creates (or reuses) the matching ReplicaSet and rolls to it as its
``strategy`` says, as the deployment controller does: ``RollingUpdate`` (the default, 25%
/ 25%) scales the new ReplicaSet up to ``replicas + maxSurge`` pods in all and the old ones
down only while ``replicas - maxUnavailable`` pods stay Ready (surge rounded up,
unavailability down, 1 when both are 0; unready old pods go first); ``Recreate`` scales the
old ones to 0 and starts the new pods once the old are gone. Each step waits for pod
readiness, so with surge a rollout never leaves a Service without a ready backend, and with
``maxSurge: 0`` it removes the old pod before the new one is ready. ReplicaSets create pods
``<rs>-<5 chars>`` and delete surplus ones. StatefulSets create ``<name>-0..N-1`` and
replace pods whose template is outdated. Statuses carry what ``kubectl rollout status`` and
``kubectl wait --for=condition=Available`` read.

Not modelled: paused rollouts, progress deadlines, minReadySeconds, revision history
pruning, StatefulSet ordering guarantees and PVCs.
"""

from __future__ import annotations

import copy
import random

from ..runtime import Runtime
from ..store import StoreError
from .events import EventRecorder
from .util import (
    DEPLOYMENT,
    POD,
    REPLICASET,
    STATEFULSET,
    Obj,
    condition,
    is_active,
    is_pod_ready,
    owned_by,
    owner_ref,
    random_suffix,
    rtype,
    template_hash,
)

REVISION = "deployment.kubernetes.io/revision"


class WorkloadControllers:
    def __init__(self, runtime: Runtime, events: EventRecorder) -> None:
        self.rt = runtime
        self.events = events
        self.rng = random.Random(runtime.seed ^ 0x9D5)

    # ------------------------------------------------------- deployments
    def reconcile_deployment(self, ns: str, name: str) -> None:
        store = self.rt.store
        drt, rsrt = rtype(store, DEPLOYMENT), rtype(store, REPLICASET)
        deploy = store.try_get(drt, ns, name)
        if deploy is None:
            return
        spec = deploy.get("spec") or {}
        replicas = int(spec.get("replicas", 1))
        template = spec.get("template") or {}
        phash = template_hash(template)
        owned = [rs for rs in store.by_kind(*REPLICASET, ns) if owned_by(rs, deploy)]
        current = next((rs for rs in owned if rs["metadata"].get("labels", {})
                        .get("pod-template-hash") == phash), None)
        latest = max((_revision(rs) for rs in owned), default=0)
        old = [rs for rs in owned if current is None
               or rs["metadata"]["name"] != current["metadata"]["name"]]
        new_size, old_sizes = self._rollout_step(spec, replicas, current, old, ns)
        if current is None:
            current = self._create_rs(deploy, phash, new_size, latest + 1)
            if current is None:
                return
        elif _replicas(current) != new_size or _revision(current) < latest:
            bump = latest + 1 if _revision(current) < latest else None
            self._scale(rsrt, current, new_size, deploy, bump)
            current = store.try_get(rsrt, ns, current["metadata"]["name"]) or current
        for rs in old:
            size = old_sizes[rs["metadata"]["name"]]
            if size != _replicas(rs):
                self._scale(rsrt, rs, size, deploy, None)
        self._deployment_status(deploy, current, owned)

    def _rollout_step(self, spec: Obj, replicas: int, current: Obj | None, old: list[Obj],
                      ns: str) -> tuple[int, dict[str, int]]:
        """The next sizes (new ReplicaSet, old ones by name) of a rollout, from the
        strategy and the Ready pods of each ReplicaSet right now."""
        sizes = {rs["metadata"]["name"]: _replicas(rs) for rs in old}
        active = [rs for rs in old if sizes[rs["metadata"]["name"]]]
        cur_size = _replicas(current) if current is not None else 0
        if not active:
            return replicas, sizes
        pods = [p for p in self.rt.store.by_kind(*POD, ns) if is_active(p)]

        def ready_of(rs: Obj | None) -> int:
            return 0 if rs is None else len([p for p in pods if owned_by(p, rs)
                                             and is_pod_ready(p)])

        def pods_of(rs: Obj) -> int:
            return len([p for p in pods if owned_by(p, rs)])
        strategy = spec.get("strategy") or {}
        if strategy.get("type") == "Recreate":
            if any(pods_of(rs) for rs in old):  # the old pods first, all of them
                return 0, dict.fromkeys(sizes, 0)
            return replicas, dict.fromkeys(sizes, 0)
        rolling = strategy.get("rollingUpdate") or {}
        surge = _int_or_percent(rolling.get("maxSurge", "25%"), replicas, up=True)
        unavailable = _int_or_percent(rolling.get("maxUnavailable", "25%"), replicas, up=False)
        if surge == 0 and unavailable == 0:
            unavailable = 1
        total = cur_size + sum(sizes.values())
        new_size = min(replicas, cur_size + max(0, replicas + surge - total))
        # scale down: unready old pods freely, ready ones while enough stay available
        spare = ready_of(current) + sum(ready_of(rs) for rs in active) - (replicas - unavailable)
        for rs in sorted(active, key=_revision):
            name = rs["metadata"]["name"]
            unready = max(0, sizes[name] - ready_of(rs))
            cut = min(sizes[name], unready + max(0, spare))
            spare -= max(0, cut - unready)
            sizes[name] -= cut
        return new_size, sizes

    def _create_rs(self, deploy: Obj, phash: str, replicas: int, revision: int) -> Obj | None:
        meta = deploy["metadata"]
        template = copy.deepcopy(deploy["spec"].get("template") or {})
        tmeta = template.setdefault("metadata", {})
        tmeta.setdefault("labels", {})["pod-template-hash"] = phash
        selector = copy.deepcopy(deploy["spec"].get("selector") or {})
        selector.setdefault("matchLabels", {})["pod-template-hash"] = phash
        name = f"{meta['name']}-{phash}"
        body = {"metadata": {
            "name": name, "labels": dict(tmeta["labels"]),
            "annotations": {REVISION: str(revision),
                            "deployment.kubernetes.io/desired-replicas": str(replicas),
                            "deployment.kubernetes.io/max-replicas": str(replicas + 1)},
            "ownerReferences": [owner_ref(deploy)]},
            "spec": {"replicas": replicas, "selector": selector, "template": template}}
        try:
            rs = self.rt.store.create(rtype(self.rt.store, REPLICASET), body, meta["namespace"])
        except StoreError:
            return None
        self.events.record(deploy, "ScalingReplicaSet", f"Scaled up replica set {name} from 0 "
                           f"to {replicas}", component="deployment-controller")
        return rs

    def _scale(self, rsrt: object, rs: Obj, replicas: int, deploy: Obj,
               revision: int | None) -> None:
        old = _replicas(rs)

        def fill(cur: Obj) -> None:
            cur["spec"]["replicas"] = replicas
            ann = cur["metadata"].setdefault("annotations", {})
            ann["deployment.kubernetes.io/desired-replicas"] = str(
                int(deploy["spec"].get("replicas", 1)))
            if revision is not None and replicas:
                ann[REVISION] = str(revision)
        meta = rs["metadata"]
        try:
            self.rt.store.mutate(rsrt, meta["namespace"], meta["name"], fill)  # type: ignore
        except StoreError:
            return
        if old != replicas:
            word = "up" if replicas > old else "down"
            self.events.record(deploy, "ScalingReplicaSet", f"Scaled {word} replica set "
                               f"{meta['name']} from {old} to {replicas}",
                               component="deployment-controller")

    def _deployment_status(self, deploy: Obj, current: Obj, owned: list[Obj]) -> None:
        store = self.rt.store
        ns, name = deploy["metadata"]["namespace"], deploy["metadata"]["name"]
        pods = [p for p in store.by_kind(*POD, ns) if is_active(p)]
        rs_names = {rs["metadata"]["name"] for rs in owned} | {current["metadata"]["name"]}
        mine = [p for p in pods if _owner_name(p) in rs_names]
        updated = [p for p in mine if _owner_name(p) == current["metadata"]["name"]]
        ready = [p for p in mine if is_pod_ready(p)]
        want = int(deploy["spec"].get("replicas", 1))
        complete = len(updated) == want == len(mine) and len([p for p in updated
                                                               if is_pod_ready(p)]) == want
        rs_name = current["metadata"]["name"]

        def fill(cur: Obj) -> None:
            prev = (cur.get("status") or {}).get("conditions") or []
            available = len(ready) >= want
            conds = [
                _dep_cond("Available", available, "MinimumReplicasAvailable" if available
                          else "MinimumReplicasUnavailable", "Deployment has minimum "
                          "availability." if available else "Deployment does not have "
                          "minimum availability.", prev),
                _dep_cond("Progressing", True, "NewReplicaSetAvailable" if complete else
                          "ReplicaSetUpdated", f'ReplicaSet "{rs_name}" has successfully '
                          "progressed." if complete else f'ReplicaSet "{rs_name}" is '
                          "progressing.", prev),
            ]
            status: Obj = {"observedGeneration": cur["metadata"].get("generation", 1),
                           "replicas": len(mine), "updatedReplicas": len(updated),
                           "readyReplicas": len(ready), "availableReplicas": len(ready),
                           "conditions": conds}
            if len(mine) - len(ready):
                status["unavailableReplicas"] = len(mine) - len(ready)
            status = {k: v for k, v in status.items() if v != 0 or k in ("observedGeneration",
                                                                           "replicas")}
            cur["status"] = status
            ann = cur["metadata"].setdefault("annotations", {})
            ann[REVISION] = current["metadata"].get("annotations", {}).get(REVISION, "1")
        try:
            store.mutate(rtype(store, DEPLOYMENT), ns, name, fill)
        except StoreError:
            pass

    # ------------------------------------------------------- replicasets
    def reconcile_replicaset(self, ns: str, name: str) -> None:
        store = self.rt.store
        rs = store.try_get(rtype(store, REPLICASET), ns, name)
        if rs is None:
            return
        want = _replicas(rs)
        pods = [p for p in store.by_kind(*POD, ns) if owned_by(p, rs) and is_active(p)]
        for _ in range(want - len(pods)):
            self._create_pod(rs, f"{name}-")
        if len(pods) > want:
            doomed = sorted(pods, key=lambda p: (is_pod_ready(p),
                                                 p["metadata"]["creationTimestamp"]))
            for pod in doomed[: len(pods) - want]:
                self._delete_pod(pod, rs)
        self._rs_status(rs)

    def _create_pod(self, owner: Obj, prefix: str, name: str | None = None,
                    extra_labels: dict[str, str] | None = None) -> None:
        template = copy.deepcopy((owner.get("spec") or {}).get("template") or {})
        meta = template.setdefault("metadata", {})
        meta.pop("creationTimestamp", None)
        if extra_labels:
            meta.setdefault("labels", {}).update(extra_labels)
        if name is None:
            meta["generateName"] = prefix
            name = prefix + random_suffix(self.rng)
        meta["name"] = name
        meta["ownerReferences"] = [owner_ref(owner)]
        spec = template.get("spec") or {}
        if owner.get("kind") == "StatefulSet":  # stable network identity
            spec.setdefault("hostname", name)
            if owner["spec"].get("serviceName"):
                spec.setdefault("subdomain", owner["spec"]["serviceName"])
        body = {"metadata": meta, "spec": spec}
        try:
            self.rt.store.create(rtype(self.rt.store, POD), body, owner["metadata"]["namespace"])
        except StoreError as err:
            self.events.record(owner, "FailedCreate", f"Error creating: {err.message}",
                               type_="Warning", component=_component(owner))
            return
        self.events.record(owner, "SuccessfulCreate", f"Created pod: {name}",
                           component=_component(owner))

    def _delete_pod(self, pod: Obj, owner: Obj) -> None:
        meta = pod["metadata"]
        try:
            self.rt.store.delete(rtype(self.rt.store, POD), meta["namespace"], meta["name"])
        except StoreError:
            return
        self.events.record(owner, "SuccessfulDelete", f"Deleted pod: {meta['name']}",
                           component=_component(owner))

    def _rs_status(self, rs: Obj) -> None:
        store = self.rt.store
        ns, name = rs["metadata"]["namespace"], rs["metadata"]["name"]
        pods = [p for p in store.by_kind(*POD, ns) if owned_by(p, rs) and is_active(p)]
        ready = len([p for p in pods if is_pod_ready(p)])

        def fill(cur: Obj) -> None:
            status = {"replicas": len(pods), "fullyLabeledReplicas": len(pods),
                      "readyReplicas": ready, "availableReplicas": ready,
                      "observedGeneration": cur["metadata"].get("generation", 1)}
            cur["status"] = {k: v for k, v in status.items() if v or k == "replicas"}
        try:
            store.mutate(rtype(store, REPLICASET), ns, name, fill)
        except StoreError:
            pass

    # ------------------------------------------------------ statefulsets
    def reconcile_statefulset(self, ns: str, name: str) -> None:
        store = self.rt.store
        sts = store.try_get(rtype(store, STATEFULSET), ns, name)
        if sts is None:
            return
        want = _replicas(sts)
        revision = f"{name}-{template_hash(sts['spec'].get('template') or {})}"
        pods = {p["metadata"]["name"]: p for p in store.by_kind(*POD, ns) if owned_by(p, sts)}
        for i in range(want):
            pod_name = f"{name}-{i}"
            pod = pods.get(pod_name)
            if pod is not None and pod["metadata"].get("labels", {}).get(
                    "controller-revision-hash") != revision:
                self._delete_pod(pod, sts)
                pod = None
            if pod is None:
                self._create_pod(sts, "", pod_name, {
                    "controller-revision-hash": revision,
                    "statefulset.kubernetes.io/pod-name": pod_name,
                    "apps.kubernetes.io/pod-index": str(i)})
        for pod_name, pod in pods.items():
            index = pod_name.rsplit("-", 1)[-1]
            if not index.isdigit() or int(index) >= want:
                self._delete_pod(pod, sts)
        self._sts_status(sts, revision)

    def _sts_status(self, sts: Obj, revision: str) -> None:
        store = self.rt.store
        ns, name = sts["metadata"]["namespace"], sts["metadata"]["name"]
        pods = [p for p in store.by_kind(*POD, ns) if owned_by(p, sts) and is_active(p)]
        ready = len([p for p in pods if is_pod_ready(p)])
        current = len([p for p in pods if p["metadata"].get("labels", {}).get(
            "controller-revision-hash") == revision])

        def fill(cur: Obj) -> None:
            cur["status"] = {"observedGeneration": cur["metadata"].get("generation", 1),
                             "replicas": len(pods), "readyReplicas": ready,
                             "currentReplicas": current, "updatedReplicas": current,
                             "availableReplicas": ready, "currentRevision": revision,
                             "updateRevision": revision, "collisionCount": 0}
        try:
            store.mutate(rtype(store, STATEFULSET), ns, name, fill)
        except StoreError:
            pass


def _int_or_percent(value: object, replicas: int, up: bool) -> int:
    """``maxSurge``/``maxUnavailable``: an int, or a percentage of replicas (rounded up for
    surge, down for unavailability, as ``intstr.GetScaledValueFromIntOrPercent``)."""
    text = str(value)
    if text.endswith("%") and text[:-1].isdigit():
        scaled = int(text[:-1]) * replicas
        return -(-scaled // 100) if up else scaled // 100
    try:
        return int(text)
    except ValueError:
        return 0


def _replicas(obj: Obj) -> int:
    return int((obj.get("spec") or {}).get("replicas", 1))


def _revision(rs: Obj) -> int:
    return int(rs["metadata"].get("annotations", {}).get(REVISION, 0))


def _owner_name(pod: Obj) -> str | None:
    refs = pod["metadata"].get("ownerReferences") or []
    return refs[0].get("name") if refs else None


def _component(owner: Obj) -> str:
    return {"ReplicaSet": "replicaset-controller", "StatefulSet": "statefulset-controller"
            }.get(owner.get("kind", ""), "controller-manager")


def _dep_cond(ctype: str, ok: bool, reason: str, message: str, prev: list[Obj]) -> Obj:
    cond = condition(ctype, "True" if ok else "False", reason, message, previous=prev)
    old = next((c for c in prev if c.get("type") == ctype), None)
    same = old is not None and old.get("reason") == reason and old.get("status") == cond["status"]
    cond["lastUpdateTime"] = old.get("lastUpdateTime", cond["lastTransitionTime"]) \
        if same and old else cond["lastTransitionTime"]
    return {"type": ctype, "status": cond["status"], "lastUpdateTime": cond["lastUpdateTime"],
            "lastTransitionTime": cond["lastTransitionTime"], "reason": reason,
            "message": message}
