"""Core v1 ``Event`` objects, as the kubelet, scheduler and controllers record them.

Repeated events (same object, reason and message) are aggregated into one object whose
``count`` and ``lastTimestamp`` grow, as ``kubectl describe`` shows ``(x4 over 35s)``.
"""

from __future__ import annotations

import threading
import time

from ..runtime import Runtime
from ..store import StoreError
from .util import EVENT, Obj, now, rtype


class EventRecorder:
    """Writes Events for one runtime (one node)."""

    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime
        self._seen: dict[tuple[str, str, str, str, str], str] = {}
        self._last_ns = 0
        self._lock = threading.Lock()

    def _suffix(self) -> str:
        """Kubernetes names events ``<object>.<hex UnixNano>``: names sort in time order."""
        with self._lock:
            self._last_ns = max(time.time_ns(), self._last_ns + 1)
            return f"{self._last_ns:x}"

    def record(self, obj: Obj, reason: str, message: str, *, type_: str = "Normal",
               component: str = "kubelet", field_path: str | None = None) -> None:
        meta = obj["metadata"]
        ns = meta.get("namespace") or "default"
        key = (ns, meta.get("uid", ""), reason, message, field_path or "")
        store = self.rt.store
        ert = rtype(store, EVENT)
        existing = self._seen.get(key)
        if existing is not None:
            try:
                store.mutate(ert, ns, existing, _bump)
                return
            except StoreError:
                pass  # the namespace or event went away: record a new one
        name = f"{meta['name']}.{self._suffix()}"
        stamp = now()
        involved: Obj = {"kind": obj.get("kind"), "namespace": meta.get("namespace"),
                         "name": meta["name"], "uid": meta.get("uid"),
                         "apiVersion": obj.get("apiVersion"),
                         "resourceVersion": meta.get("resourceVersion")}
        if field_path:
            involved["fieldPath"] = field_path
        source: Obj = {"component": component}
        if component == "kubelet":
            source["host"] = self.rt.node_name
        event = {
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": name, "namespace": ns},
            "involvedObject": {k: v for k, v in involved.items() if v is not None},
            "reason": reason, "message": message, "source": source,
            "firstTimestamp": stamp, "lastTimestamp": stamp, "count": 1, "type": type_,
            "eventTime": None, "reportingComponent": component,
            "reportingInstance": self.rt.node_name if component == "kubelet" else "",
        }
        try:
            store.create(ert, event, ns)
        except StoreError:
            return  # e.g. the namespace is terminating; Kubernetes drops such events too
        self._seen[key] = name


def _bump(event: Obj) -> None:
    event["count"] = int(event.get("count") or 1) + 1
    event["lastTimestamp"] = now()
