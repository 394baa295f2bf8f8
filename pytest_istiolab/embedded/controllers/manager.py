"""The controller manager: store events in, a work queue, one worker thread, reconcilers.

Every committed write is turned into work items (deduplicated while queued); the worker
reconciles them in order. Reconcilers only read the store and write through it, so their
own writes come back as events until nothing changes any more. Nothing here sleeps for a
simulated duration; the worker waits on the queue only.
"""

from __future__ import annotations

import sys
import threading
import traceback
from collections import deque
from collections.abc import Callable

from .. import unmodelled
from ..runtime import Runtime
from ..store import DELETED, Event, StoreError
from .bootstrap import ROOT_CA_CONFIGMAP, istio_root_ca_configmap, root_ca_configmap
from .events import EventRecorder
from .notmodelled import NotModelled
from .pods import PodLifecycle
from .services import reconcile_endpoints, reconcile_service
from .util import (
    CONFIGMAP,
    DEPLOYMENT,
    ENDPOINTS,
    NAMESPACE,
    POD,
    REPLICASET,
    SERVICE,
    SERVICEACCOUNT,
    STATEFULSET,
    controller_of,
    rtype,
)

Key = tuple[str, str, str]  # (what, namespace, name)
ISTIOD = ("istio-system", "istiod")
ISTIOD_SKIPS = ("kube-system", "kube-public", "kube-node-lease", "local-path-storage")


class Controllers:
    """Runs the embedded cluster's controllers on a worker thread."""

    def __init__(self, runtime: Runtime) -> None:
        from .workloads import WorkloadControllers

        self.rt = runtime
        self.events = EventRecorder(runtime)
        self.pods = PodLifecycle(runtime, self.events)
        self.workloads = WorkloadControllers(runtime, self.events)
        self.not_modelled = NotModelled(runtime, self.events)
        self.errors: list[str] = []
        self._queue: deque[Key] = deque()
        self._queued: set[Key] = set()
        self._cond = threading.Condition()
        self._busy = False
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._handlers: dict[str, Callable[[str, str], None]] = {
            "namespace": self._reconcile_namespace,
            "deployment": self.workloads.reconcile_deployment,
            "replicaset": self.workloads.reconcile_replicaset,
            "statefulset": self.workloads.reconcile_statefulset,
            "pod": self.pods.reconcile,
            "pod-deleted": self._pod_deleted,
            "service": lambda ns, name: reconcile_service(self.rt, ns, name),
            "service-deleted": self._service_deleted,
            "endpoints": self._all_endpoints,
            "not-modelled": self.not_modelled.reconcile,
        }

    # ------------------------------------------------------------ lifecycle
    def start(self) -> Controllers:
        if self._thread is not None:
            return self
        self._stopping = False
        self._unsubscribe = self.rt.store.subscribe(self._on_event)
        self._thread = threading.Thread(target=self._run, name="istiolab-controllers",
                                        daemon=True)
        self._thread.start()
        self.resync()
        return self

    def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def resync(self) -> None:
        """Queue every object the controllers own (at start, and for tests)."""
        store = self.rt.store
        for key, what in ((NAMESPACE, "namespace"), (DEPLOYMENT, "deployment"),
                          (REPLICASET, "replicaset"), (STATEFULSET, "statefulset"),
                          (POD, "pod"), (SERVICE, "service")):
            for obj in store.by_kind(*key):
                meta = obj["metadata"]
                self._put((what, meta.get("namespace", ""), meta["name"]))

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Block until the queue is empty and the worker is idle; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._queue and not self._busy, timeout)

    # ---------------------------------------------------------------- events
    def _on_event(self, ev: Event) -> None:
        key = ev.rtype.key
        meta = ev.obj.get("metadata") or {}
        ns, name = meta.get("namespace", ""), meta.get("name", "")
        gone = ev.type == DELETED
        if key == NAMESPACE and not gone:
            self._put(("namespace", "", name))
        elif key == DEPLOYMENT:
            self._put(("deployment", ns, name))
            if ns == ISTIOD[0] and name.startswith(ISTIOD[1]) and not gone:
                for nso in self.rt.store.by_kind(*NAMESPACE):
                    self._put(("namespace", "", nso["metadata"]["name"]))
        elif key in (REPLICASET, STATEFULSET):
            kind = "replicaset" if key == REPLICASET else "statefulset"
            self._put((kind, ns, name))
            self._put_owner(ev.obj, ns)
        elif key == POD:
            self._put(("pod-deleted" if gone else "pod", ns, name))
            self._put_owner(ev.obj, ns)
            self._put(("endpoints", ns, ""))
        elif key == SERVICE:
            self._put(("service-deleted" if gone else "service", ns, name))
        elif not gone and unmodelled.watched(ev.rtype.group, ev.rtype.kind):
            self._put(("not-modelled", ns, NotModelled.key(*key, name)))

    def _put_owner(self, obj: dict, ns: str) -> None:
        ref = controller_of(obj)
        if ref is None:
            return
        what = {"Deployment": "deployment", "ReplicaSet": "replicaset",
                "StatefulSet": "statefulset"}.get(ref.get("kind", ""))
        if what:
            self._put((what, ns, ref["name"]))

    def _put(self, key: Key) -> None:
        with self._cond:
            if self._stopping or key in self._queued:
                return
            self._queued.add(key)
            self._queue.append(key)
            self._cond.notify_all()

    # ---------------------------------------------------------------- worker
    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._stopping:
                    self._cond.wait(timeout=1.0)
                if self._stopping:
                    return
                key = self._queue.popleft()
                self._queued.discard(key)
                self._busy = True
            try:
                self._handlers[key[0]](key[1], key[2])
            except Exception:  # a bug in one reconcile must not stop the cluster
                self.errors.append(traceback.format_exc())
                print(f"istiolab controllers: reconcile {key} failed:\n{self.errors[-1]}",
                      file=sys.stderr)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    # ------------------------------------------------------------ handlers
    def _reconcile_namespace(self, _ns: str, name: str) -> None:
        store = self.rt.store
        nso = store.try_get(rtype(store, NAMESPACE), None, name)
        if nso is None or (nso.get("status") or {}).get("phase") == "Terminating":
            return
        ca = store.try_get(rtype(store, CONFIGMAP), "kube-system", ROOT_CA_CONFIGMAP)
        wanted = [(SERVICEACCOUNT, {"metadata": {"name": "default"}})]
        if ca is not None:
            wanted.append((CONFIGMAP, root_ca_configmap(ca["data"]["ca.crt"])))
        if name not in ISTIOD_SKIPS and _an_istiod(store):
            wanted.append((CONFIGMAP, istio_root_ca_configmap()))  # istiod's namespace controller
        for key, body in wanted:
            if store.try_get(rtype(store, key), name, body["metadata"]["name"]) is None:
                try:
                    store.create(rtype(store, key), body, name)
                except StoreError:
                    pass

    def _pod_deleted(self, ns: str, name: str) -> None:
        self.rt.logs.forget_pod(ns, name)

    def _service_deleted(self, ns: str, name: str) -> None:
        store = self.rt.store
        try:
            store.delete(rtype(store, ENDPOINTS), ns, name)
        except StoreError:
            pass

    def _all_endpoints(self, ns: str, _name: str) -> None:
        for svc in self.rt.store.by_kind(*SERVICE, ns):
            reconcile_endpoints(self.rt, ns, svc["metadata"]["name"])


def _an_istiod(store: object) -> bool:
    """Is an istiod of any revision (``istiod``, ``istiod-<rev>``) installed?"""
    return any(((d["metadata"].get("labels") or {}).get("app") == "istiod")
               for d in store.by_kind(*DEPLOYMENT, ISTIOD[0]))  # type: ignore[attr-defined]
