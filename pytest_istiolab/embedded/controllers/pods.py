"""The scheduler and the kubelet of the one embedded node, as a pod state machine.

Each reconcile moves a pod one visible step, so watchers see what they see on a real node:
``Pending`` (unscheduled) -> scheduled (``PodScheduled``, event ``Scheduled``) -> containers
started (``Running``, ``Ready``, pull/create/start events per container, init containers
``Completed``; a native sidecar, an init container with ``restartPolicy: Always``, keeps
``running`` with ``started: true`` and counts for readiness). A container whose image the
embedded cluster does not model (see :mod:`..images`) never starts: ``ErrImagePull`` then
``ImagePullBackOff`` with ``Failed`` and ``BackOff`` warning events whose message names what
is modelled.

Under the realism profile (:mod:`..realism`) a started pod turns ``Ready`` only after a
seeded delay (its readiness probes), and Endpoints follow.

Not modelled: probes, restarts, resource accounting, graceful termination (a deleted pod
is gone at once), volumes (nothing is mounted anywhere).
"""

from __future__ import annotations

import ipaddress
import secrets

from .. import images
from ..podspec import is_restartable, running_containers
from ..runtime import Runtime
from ..store import StoreError
from .events import EventRecorder
from .util import POD, Obj, condition, now, rtype

POD_CIDR = ipaddress.ip_network("10.244.0.0/16")


class PodLifecycle:
    """Schedules and "runs" pods on the runtime's single node."""

    def __init__(self, runtime: Runtime, events: EventRecorder) -> None:
        self.rt = runtime
        self.events = events
        self._pulled: set[str] = set()
        self._next_ip = int(POD_CIDR.network_address) + 5

    def reconcile(self, ns: str, name: str) -> None:
        store = self.rt.store
        prt = rtype(store, POD)
        pod = store.try_get(prt, ns, name)
        if pod is None or pod["metadata"].get("deletionTimestamp"):
            return
        status = pod.get("status") or {}
        if status.get("phase") in ("Succeeded", "Failed"):
            return
        if not pod["spec"].get("nodeName"):
            self._schedule(pod)
        elif not status.get("startTime"):
            self._start(pod)
        elif _waiting_reason(pod) == "ErrImagePull":
            self._back_off(pod)

    # ------------------------------------------------------------ steps
    def _schedule(self, pod: Obj) -> None:
        node = self.rt.node_name

        def fill(cur: Obj) -> None:
            cur["spec"]["nodeName"] = node
            status = cur.setdefault("status", {})
            status["phase"] = "Pending"
            status["conditions"] = [condition("PodScheduled", "True", previous=[],
                                              probe_time=True)]
        if self._mutate(pod, fill):
            meta = pod["metadata"]
            self.events.record(pod, "Scheduled", f"Successfully assigned {meta['namespace']}/"
                               f"{meta['name']} to {node}", component="default-scheduler")

    def _start(self, pod: Obj) -> None:
        ip = self.rt.node_ip if pod["spec"].get("hostNetwork") else self._allocate_ip()
        started = now()
        init_statuses = [self._run_init(pod, c, started)
                         for c in pod["spec"].get("initContainers") or []]
        init_ok = all(s["state"].get("terminated") or s.get("started")
                      for s in init_statuses)
        statuses = [self._run(pod, c, started) if init_ok else _waiting(c, "PodInitializing")
                    for c in pod["spec"].get("containers") or []]
        running = init_ok and all(s["state"].get("running") for s in statuses)
        realism = self.rt.realism
        delayed = running and realism is not None
        if delayed:  # readiness comes later (see _become_ready)
            statuses = [{**s, "ready": False} for s in statuses]
            init_statuses = [{**s, "ready": False} if s["state"].get("running") else s
                             for s in init_statuses]

        def fill(cur: Obj) -> None:
            status = cur.setdefault("status", {})
            prev = status.get("conditions") or []
            status.update(hostIP=self.rt.node_ip, hostIPs=[{"ip": self.rt.node_ip}],
                          podIP=ip, podIPs=[{"ip": ip}], startTime=started,
                          phase="Running" if running else "Pending",
                          containerStatuses=statuses)
            if init_statuses:
                status["initContainerStatuses"] = init_statuses
            ready = "True" if running and not delayed else "False"
            reason = "" if ready == "True" else "ContainersNotReady"
            not_ready = [s["name"] for s in [*init_statuses, *statuses]
                         if not s["ready"] and not s["state"].get("terminated")]
            msg = f"containers with unready status: [{' '.join(not_ready)}]" if not_ready else ""
            status["conditions"] = [
                condition("PodReadyToStartContainers", "True", previous=prev, probe_time=True),
                condition("Initialized", "True" if init_ok else "False",
                          "" if init_ok else "ContainersNotInitialized", previous=prev,
                          probe_time=True),
                condition("Ready", ready, reason, msg, previous=prev, probe_time=True),
                condition("ContainersReady", ready, reason, msg, previous=prev, probe_time=True),
                condition("PodScheduled", "True", previous=prev, probe_time=True),
            ]
        if self._mutate(pod, fill) and init_ok:
            self._announce(pod, statuses)
            if delayed and realism is not None:
                meta = pod["metadata"]
                key = (meta["namespace"], meta["name"], meta.get("uid", ""))
                self.rt.later.call(realism.ready_delay_of(key[2] or f"{key[0]}/{key[1]}"),
                                   lambda: self._become_ready(*key))

    def _become_ready(self, ns: str, name: str, uid: str) -> None:
        """Realism profile: the readiness probes pass some time after the containers started."""
        def fill(cur: Obj) -> None:
            if cur["metadata"].get("uid", "") != uid or cur["metadata"].get("deletionTimestamp"):
                return
            status = cur.get("status") or {}
            every = [*(status.get("initContainerStatuses") or []),
                     *(status.get("containerStatuses") or [])]
            for cs in every:
                if (cs.get("state") or {}).get("running"):
                    cs["ready"] = True
            if not all(cs.get("ready") for cs in every):
                return
            prev = status.get("conditions") or []
            status["conditions"] = [
                condition(c["type"], "True", previous=prev, probe_time=True)
                if c.get("type") in ("Ready", "ContainersReady") else c for c in prev]
        try:
            self.rt.store.mutate(rtype(self.rt.store, POD), ns, name, fill)
        except StoreError:
            pass  # the pod went meanwhile

    def _announce(self, pod: Obj, statuses: list[Obj]) -> None:
        """Let the workload models write what a started container logs first."""
        from ..workloads import container_started

        running = {s["name"] for s in statuses if s["state"].get("running")}
        running |= {c["name"] for c in running_containers(pod) if is_restartable(c)}
        when = self.rt.clock.now()
        for c in running_containers(pod):
            if c["name"] in running:
                container_started(self.rt, pod, c, when)

    def _back_off(self, pod: Obj) -> None:
        bad: list[tuple[str, str]] = []

        def fill(cur: Obj) -> None:
            status = cur.get("status") or {}
            for cs in [*(status.get("initContainerStatuses") or []),
                       *(status.get("containerStatuses") or [])]:
                waiting = (cs.get("state") or {}).get("waiting") or {}
                if waiting.get("reason") == "ErrImagePull":
                    waiting["reason"] = "ImagePullBackOff"
                    waiting["message"] = f'Back-off pulling image "{cs["image"]}": ' + \
                        images.not_modelled_message(cs["image"])
                    bad.append((cs["name"], cs["image"]))
        if self._mutate(pod, fill):
            for cname, image in bad:
                path = _field_path(pod, cname)
                self.events.record(pod, "BackOff", f'Back-off pulling image "{image}"',
                                   type_="Warning", field_path=path)
                self.events.record(pod, "Failed", "Error: ImagePullBackOff", type_="Warning",
                                   field_path=path)

    # ------------------------------------------------------- containers
    def _pull(self, pod: Obj, c: Obj) -> bool:
        image, path = c.get("image", ""), _field_path(pod, c["name"])
        if not images.is_modelled(image):
            self.events.record(pod, "Pulling", f'Pulling image "{image}"', field_path=path)
            self.events.record(pod, "Failed", f'Failed to pull image "{image}": '
                               + images.not_modelled_message(image), type_="Warning",
                               field_path=path)
            self.events.record(pod, "Failed", "Error: ErrImagePull", type_="Warning",
                               field_path=path)
            return False
        if image in self._pulled and c.get("imagePullPolicy") != "Always":
            self.events.record(pod, "Pulled", f'Container image "{image}" already present on '
                               "machine", field_path=path)
        else:
            self.events.record(pod, "Pulling", f'Pulling image "{image}"', field_path=path)
            self.events.record(pod, "Pulled", f'Successfully pulled image "{image}" in 0s '
                               "(0s including waiting)", field_path=path)
            self._pulled.add(image)
        self.events.record(pod, "Created", f"Created container: {c['name']}", field_path=path)
        self.events.record(pod, "Started", f"Started container {c['name']}", field_path=path)
        return True

    def _run_init(self, pod: Obj, c: Obj, started: str) -> Obj:
        if not self._pull(pod, c):
            return _pull_failed(c)
        if is_restartable(c):  # a native sidecar: started, and running beside the app
            return self._run(pod, c, started)
        cid = _container_id()
        return {**_base(c), "containerID": cid, "ready": True, "started": False,
                "state": {"terminated": {"exitCode": 0, "reason": "Completed",
                                         "startedAt": started, "finishedAt": started,
                                         "containerID": cid}}}

    def _run(self, pod: Obj, c: Obj, started: str) -> Obj:
        if not self._pull(pod, c):
            return _pull_failed(c)
        return {**_base(c), "containerID": _container_id(), "ready": True, "started": True,
                "state": {"running": {"startedAt": started}}}

    # ---------------------------------------------------------- helpers
    def _allocate_ip(self) -> str:
        used = {(p.get("status") or {}).get("podIP") for p in self.rt.store.by_kind(*POD)}
        while True:
            ip = str(ipaddress.ip_address(self._next_ip))
            self._next_ip += 1
            if self._next_ip >= int(POD_CIDR.broadcast_address):
                self._next_ip = int(POD_CIDR.network_address) + 5
            if ip not in used and not ip.endswith(".0") and not ip.endswith(".255"):
                return ip

    def _mutate(self, pod: Obj, fn: object) -> bool:
        meta = pod["metadata"]
        try:
            self.rt.store.mutate(rtype(self.rt.store, POD), meta["namespace"], meta["name"],
                                 fn)  # type: ignore[arg-type]
        except StoreError:
            return False
        return True


def _base(c: Obj) -> Obj:
    image = c.get("image", "")
    return {"name": c["name"], "image": image, "imageID": images.image_id(image),
            "restartCount": 0, "lastState": {}}


def _container_id() -> str:
    return "containerd://" + secrets.token_hex(32)


def _waiting(c: Obj, reason: str, message: str = "") -> Obj:
    waiting = {"reason": reason, **({"message": message} if message else {})}
    return {"name": c["name"], "image": c.get("image", ""), "imageID": "", "restartCount": 0,
            "lastState": {}, "ready": False, "started": False, "state": {"waiting": waiting}}


def _pull_failed(c: Obj) -> Obj:
    image = c.get("image", "")
    return _waiting(c, "ErrImagePull", f'failed to pull image "{image}": '
                    + images.not_modelled_message(image))


def _waiting_reason(pod: Obj) -> str:
    status = pod.get("status") or {}
    for cs in [*(status.get("initContainerStatuses") or []),
               *(status.get("containerStatuses") or [])]:
        waiting = (cs.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") == "ErrImagePull":
            return "ErrImagePull"
    return ""


def _field_path(pod: Obj, name: str) -> str:
    inits = {c["name"] for c in pod["spec"].get("initContainers") or []}
    return f"spec.initContainers{{{name}}}" if name in inits else f"spec.containers{{{name}}}"
