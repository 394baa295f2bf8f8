"""The embedded cluster's object store: objects, resourceVersions, an event log and watchers.

Thread-safe. Every write commits under one lock, appends to the event log and then
notifies subscribers (outside the lock). The API server, the controllers and the mesh
model all read and write through this class; nothing else holds cluster state.
"""

from __future__ import annotations

import builtins
import json
import re
import threading
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .resources import BUILTIN_TYPES, ResourceType, crd_to_type

Obj = dict[str, Any]
ADDED, MODIFIED, DELETED = "ADDED", "MODIFIED", "DELETED"
_NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")


class StoreError(Exception):
    """A failure that the API server reports as a ``Status`` object."""

    def __init__(self, code: int, reason: str, message: str, details: dict | None = None):
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details or {}

    def status(self) -> Obj:
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": self.message, "reason": self.reason, "details": self.details,
                "code": self.code}


def not_found(rt: ResourceType, name: str) -> StoreError:
    what = f"{rt.plural}.{rt.group}" if rt.group else rt.plural
    return StoreError(404, "NotFound", f'{what} "{name}" not found',
                      {"name": name, "group": rt.group, "kind": rt.plural})


@dataclass(frozen=True)
class Event:
    rv: int
    type: str  # ADDED | MODIFIED | DELETED
    rtype: ResourceType
    obj: Obj  # a snapshot; never mutate


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _copy(obj: Obj) -> Obj:
    return json.loads(json.dumps(obj))


class Store:
    """In-memory Kubernetes object store."""

    def __init__(self, history: int = 20000) -> None:
        self._lock = threading.RLock()
        self._types: dict[tuple[str, str], ResourceType] = {}
        self._objects: dict[tuple[str, str], dict[tuple[str, str], Obj]] = {}
        self._rv = 1
        self._events: deque[Event] = deque(maxlen=history)
        self._subscribers: builtins.list[Callable[[Event], None]] = []
        self._admission: builtins.list[Callable[[ResourceType, Obj], Obj | None]] = []
        self.types_changed = threading.Event()
        for rt in BUILTIN_TYPES:
            self.register_type(rt)

    # ---------------------------------------------------------------- types
    def register_type(self, rt: ResourceType) -> None:
        with self._lock:
            self._types[rt.key] = rt
            self._objects.setdefault(rt.key, {})

    def unregister_type(self, group: str, plural: str) -> None:
        with self._lock:
            self._types.pop((group, plural), None)
            self._objects.pop((group, plural), None)

    def types(self) -> builtins.list[ResourceType]:
        with self._lock:
            return list(self._types.values())

    def find_type(self, group: str, version: str | None, plural: str) -> ResourceType | None:
        rt = self._types.get((group, plural))
        if rt is None or (version is not None and version not in rt.versions):
            return None
        return rt

    def type_for(self, api_version: str, kind: str) -> ResourceType | None:
        group, _, version = api_version.rpartition("/")
        for rt in self.types():
            if rt.group == group and rt.kind == kind and version in rt.versions:
                return rt
        return None

    def resource_type(self, group: str, plural: str) -> ResourceType:
        rt = self._types.get((group, plural))
        if rt is None:
            raise StoreError(404, "NotFound", f"the server could not find the requested resource "
                             f"({plural}.{group or 'core'})")
        return rt

    def add_admission(self, plugin: Callable[[ResourceType, Obj], Obj | None]) -> None:
        """Register a mutating admission plugin, run on every create (e.g. sidecar injection).

        ``plugin(rt, obj)`` runs under the store lock after the namespace is known
        (``obj["metadata"]["namespace"]`` is set) and may edit ``obj`` in place or return a
        replacement; raising :class:`StoreError` rejects the create.
        """
        with self._lock:
            self._admission.append(plugin)

    # --------------------------------------------------------------- events
    @property
    def resource_version(self) -> int:
        return self._rv

    def subscribe(self, callback: Callable[[Event], None]) -> Callable[[], None]:
        """Call ``callback(event)`` after every committed write. Returns an unsubscribe function."""
        with self._lock:
            self._subscribers.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)
        return unsubscribe

    def events_since(self, rv: int) -> builtins.list[Event]:
        """Events after ``rv``; raises 410 Expired when the log no longer reaches back that far."""
        with self._lock:
            if rv >= self._rv:
                return []
            if self._events and self._events[0].rv > rv + 1:
                raise StoreError(410, "Expired", f"too old resource version: {rv} "
                                 f"({self._events[0].rv - 1})")
            return [e for e in self._events if e.rv > rv]

    def _commit(self, etype: str, rt: ResourceType, obj: Obj) -> Event:
        self._rv += 1
        obj.setdefault("metadata", {})["resourceVersion"] = str(self._rv)
        ev = Event(self._rv, etype, rt, _copy(obj))
        self._events.append(ev)
        return ev

    def _notify(self, events: Iterable[Event]) -> None:
        subs = list(self._subscribers)
        for ev in events:
            for cb in subs:
                cb(ev)

    # ---------------------------------------------------------------- reads
    def get(self, rt: ResourceType, namespace: str | None, name: str) -> Obj:
        with self._lock:
            obj = self._objects.get(rt.key, {}).get((namespace or "", name))
            if obj is None:
                raise not_found(rt, name)
            return _copy(obj)

    def try_get(self, rt: ResourceType, namespace: str | None, name: str) -> Obj | None:
        try:
            return self.get(rt, namespace, name)
        except StoreError:
            return None

    def list(self, rt: ResourceType, namespace: str | None = None,
             label_selector: str | None = None, field_selector: str | None = None
             ) -> tuple[builtins.list[Obj], int]:
        labels = parse_label_selector(label_selector)
        fields = parse_field_selector(field_selector)
        with self._lock:
            items = [
                _copy(o) for (ns, _), o in sorted(self._objects.get(rt.key, {}).items())
                if (namespace is None or ns == namespace)
                and match_labels(labels, o) and match_fields(fields, o)
            ]
            return items, self._rv

    def by_kind(self, group: str, plural: str, namespace: str | None = None) -> builtins.list[Obj]:
        """Convenience for the controllers and the mesh model: every object of a type."""
        rt = self._types.get((group, plural))
        return [] if rt is None else self.list(rt, namespace)[0]

    # --------------------------------------------------------------- writes
    def create(self, rt: ResourceType, obj: Obj, namespace: str | None = None) -> Obj:
        obj = _copy(obj)
        meta = obj.setdefault("metadata", {})
        with self._lock:
            ns = self._namespace_for(rt, meta, namespace)
            if not meta.get("name") and meta.get("generateName"):
                meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
            name = meta.get("name") or ""
            _validate_name(rt, name)
            bucket = self._objects[rt.key]
            if (ns, name) in bucket:
                what = f"{rt.plural}.{rt.group}" if rt.group else rt.plural
                raise StoreError(409, "AlreadyExists", f'{what} "{name}" already exists',
                                 {"name": name, "group": rt.group, "kind": rt.plural})
            if ns:
                meta["namespace"] = ns
            for plugin in list(self._admission):
                obj = plugin(rt, obj) or obj
                meta = obj["metadata"]
            self._validate(rt, obj)
            obj["apiVersion"] = rt.api_version()
            obj["kind"] = rt.kind
            meta.update(uid=str(uuid.uuid4()), creationTimestamp=now_rfc3339(), generation=1)
            meta.pop("deletionTimestamp", None)
            meta.pop("managedFields", None)
            if ns:
                meta["namespace"] = ns
            else:
                meta.pop("namespace", None)
            self._defaults(rt, obj)
            bucket[(ns, name)] = obj
            events = [self._commit(ADDED, rt, obj)]
            events += self._after_write(rt, obj)
            result = _copy(obj)
        self._notify(events)
        return result

    def update(self, rt: ResourceType, obj: Obj, namespace: str | None, name: str,
               subresource: str | None = None) -> Obj:
        """PUT semantics, with optimistic concurrency on ``metadata.resourceVersion``."""
        obj = _copy(obj)
        with self._lock:
            ns = namespace or "" if rt.namespaced else ""
            current = self._objects[rt.key].get((ns, name))
            if current is None:
                raise not_found(rt, name)
            sent_rv = (obj.get("metadata") or {}).get("resourceVersion")
            if sent_rv and sent_rv != current["metadata"]["resourceVersion"]:
                raise StoreError(
                    409, "Conflict",
                    f'Operation cannot be fulfilled on {rt.plural} "{name}": the object has been '
                    "modified; please apply your changes to the latest version and try again",
                    {"name": name, "kind": rt.plural})
            new = self._merge_put(rt, current, obj, subresource)
            result, events = self._replace(rt, ns, name, current, new)
        self._notify(events)
        return result

    def mutate(self, rt: ResourceType, namespace: str | None, name: str,
               fn: Callable[[Obj], Obj | None]) -> Obj:
        """Read-modify-write under the store lock (controllers, patch handlers)."""
        with self._lock:
            ns = namespace or "" if rt.namespaced else ""
            current = self._objects[rt.key].get((ns, name))
            if current is None:
                raise not_found(rt, name)
            draft = _copy(current)
            out = fn(draft)
            new = draft if out is None else out
            new.setdefault("metadata", {})
            for key in ("uid", "creationTimestamp", "name"):
                new["metadata"][key] = current["metadata"].get(key)
            if ns:
                new["metadata"]["namespace"] = ns
            new["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
            result, events = self._replace(rt, ns, name, current, new)
        self._notify(events)
        return result

    def _replace(self, rt: ResourceType, ns: str, name: str, current: Obj, new: Obj
                 ) -> tuple[Obj, builtins.list[Event]]:
        self._validate(rt, new)
        new["apiVersion"], new["kind"] = rt.api_version(), rt.kind
        meta = new["metadata"]
        meta.pop("managedFields", None)
        generation = int(current["metadata"].get("generation", 1))
        meta["generation"] = generation + 1 if _spec_of(new) != _spec_of(current) else generation
        meta["resourceVersion"] = current["metadata"]["resourceVersion"]
        if json.dumps(new, sort_keys=True) == json.dumps(current, sort_keys=True):
            return _copy(current), []  # a no-op write keeps the resourceVersion, as Kubernetes does
        self._objects[rt.key][(ns, name)] = new
        events = [self._commit(MODIFIED, rt, new)]
        events += self._after_write(rt, new)
        return _copy(new), events

    def delete(self, rt: ResourceType, namespace: str | None, name: str) -> Obj:
        events: builtins.list[Event] = []
        with self._lock:
            ns = namespace or "" if rt.namespaced else ""
            obj = self._objects[rt.key].get((ns, name))
            if obj is None:
                raise not_found(rt, name)
            if rt.key == ("", "namespaces"):
                obj["metadata"]["deletionTimestamp"] = now_rfc3339()
                obj.setdefault("status", {})["phase"] = "Terminating"
                events.append(self._commit(MODIFIED, rt, obj))
                for other in list(self._types.values()):
                    if other.namespaced:
                        for (ons, oname) in list(self._objects.get(other.key, {})):
                            if ons == name:
                                events += self._delete_one(other, ons, oname)
            events += self._delete_one(rt, ns, name)
            result = _copy(obj)
        self._notify(events)
        return result

    def _delete_one(self, rt: ResourceType, ns: str, name: str) -> builtins.list[Event]:
        obj = self._objects.get(rt.key, {}).pop((ns, name), None)
        if obj is None:
            return []
        obj["metadata"].setdefault("deletionTimestamp", now_rfc3339())
        events = [self._commit(DELETED, rt, obj)]
        uid = obj["metadata"].get("uid")
        # garbage collection: dependents whose ownerReferences name this object
        for other in list(self._types.values()):
            for (ons, oname), dep in list(self._objects.get(other.key, {}).items()):
                refs = dep.get("metadata", {}).get("ownerReferences") or []
                if any(r.get("uid") == uid for r in refs):
                    events += self._delete_one(other, ons, oname)
        if rt.key == ("apiextensions.k8s.io", "customresourcedefinitions"):
            crt = crd_to_type(obj)
            for (ons, oname) in list(self._objects.get(crt.key, {})):
                events += self._delete_one(crt, ons, oname)
            self.unregister_type(crt.group, crt.plural)
            self.types_changed.set()
        return events

    # ------------------------------------------------------------- helpers
    def _namespace_for(self, rt: ResourceType, meta: Obj, namespace: str | None) -> str:
        if not rt.namespaced:
            return ""
        ns = namespace or meta.get("namespace") or "default"
        if meta.get("namespace") and namespace and meta["namespace"] != namespace:
            raise StoreError(400, "BadRequest", "the namespace of the provided object does not "
                             "match the namespace sent on the request")
        nso = self._objects[("", "namespaces")].get(("", ns))
        if nso is None:
            raise StoreError(404, "NotFound", f'namespaces "{ns}" not found',
                             {"name": ns, "kind": "namespaces"})
        if (nso.get("status") or {}).get("phase") == "Terminating":
            raise StoreError(403, "Forbidden", f"unable to create new content in namespace {ns} "
                             "because it is being terminated")
        return str(ns)

    def _validate(self, rt: ResourceType, obj: Obj) -> None:
        if rt.schemas:
            from .schema import validate_custom_resource

            validate_custom_resource(rt, obj)

    def _defaults(self, rt: ResourceType, obj: Obj) -> None:
        if rt.key == ("", "namespaces"):
            obj.setdefault("spec", {"finalizers": ["kubernetes"]})
            obj["status"] = {"phase": "Active"}
            labels = obj["metadata"].setdefault("labels", {})
            labels["kubernetes.io/metadata.name"] = obj["metadata"]["name"]
        if rt.key == ("apiextensions.k8s.io", "customresourcedefinitions"):
            names = obj.get("spec", {}).get("names", {})
            obj["status"] = {
                "conditions": [
                    {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts",
                     "message": "no conflicts found", "lastTransitionTime": now_rfc3339()},
                    {"type": "Established", "status": "True", "reason": "InitialNamesAccepted",
                     "message": "the initial names have been accepted",
                     "lastTransitionTime": now_rfc3339()}],
                "acceptedNames": names,
                "storedVersions": [v["name"] for v in obj["spec"].get("versions", [])
                                   if v.get("storage")]}

    def _after_write(self, rt: ResourceType, obj: Obj) -> builtins.list[Event]:
        if rt.key == ("apiextensions.k8s.io", "customresourcedefinitions"):
            self.register_type(crd_to_type(obj))
            self.types_changed.set()
        return []

    def _merge_put(self, rt: ResourceType, current: Obj, obj: Obj, subresource: str | None) -> Obj:
        meta = obj.setdefault("metadata", {})
        for key in ("uid", "creationTimestamp", "namespace", "name", "generation"):
            if key in current["metadata"]:
                meta[key] = current["metadata"][key]
        meta["resourceVersion"] = current["metadata"]["resourceVersion"]
        if subresource == "status":
            new = _copy(current)
            new["status"] = obj.get("status", {})
            return new
        if "status" in rt.subresources or rt.key == ("", "namespaces"):
            if "status" in current:
                obj["status"] = current["status"]
            else:
                obj.pop("status", None)
        return obj


# ----------------------------------------------------------------- selectors
Selector = list[tuple[str, str, list[str]]]


def parse_label_selector(sel: str | None) -> Selector:
    """Parse ``a=b,c!=d,e in (f,g),h notin (i),j,!k`` into (key, op, values)."""
    out: Selector = []
    if not sel:
        return out
    for part in re.findall(r"[^,(]+(?:\([^)]*\))?", sel):
        part = part.strip().strip(",").strip()
        if not part:
            continue
        m = re.fullmatch(r"([\w./-]+)\s+(in|notin)\s+\(([^)]*)\)", part)
        if m:
            out.append((m.group(1), m.group(2), [v.strip() for v in m.group(3).split(",")]))
        elif "!=" in part:
            k, v = part.split("!=", 1)
            out.append((k.strip(), "!=", [v.strip()]))
        elif "==" in part or "=" in part:
            k, v = re.split(r"==?", part, maxsplit=1)
            out.append((k.strip(), "=", [v.strip()]))
        elif part.startswith("!"):
            out.append((part[1:].strip(), "!", []))
        else:
            out.append((part, "exists", []))
    return out


def match_labels(selector: Selector, obj: Obj) -> bool:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    for key, op, values in selector:
        has, val = key in labels, labels.get(key)
        first = values[0] if values else None  # "exists" and "!" carry no value
        ok = {"=": has and val == first, "!=": val != first, "in": has and val in values,
              "notin": val not in values, "exists": has, "!": not has}[op]
        if not ok:
            return False
    return True


def parse_field_selector(sel: str | None) -> Selector:
    return [(k, op, v) for k, op, v in parse_label_selector(sel) if op in ("=", "!=")]


def match_fields(selector: Selector, obj: Obj) -> bool:
    for path, op, values in selector:
        cur: Any = obj
        for part in path.split("."):
            cur = cur.get(part) if isinstance(cur, dict) else None
        val = "" if cur is None else str(cur)
        if (val == values[0]) != (op == "="):
            return False
    return True


def _spec_of(obj: Obj) -> str:
    return json.dumps({k: v for k, v in obj.items()
                       if k not in ("metadata", "status", "apiVersion", "kind")}, sort_keys=True)


def _validate_name(rt: ResourceType, name: str) -> None:
    if not name:
        raise StoreError(422, "Invalid", f'{rt.kind} "" is invalid: metadata.name: Required '
                         "value: name or generateName is required",
                         {"kind": rt.kind, "causes": [{"reason": "FieldValueRequired",
                                                        "message": "Required value",
                                                        "field": "metadata.name"}]})
    if len(name) > 253 or not _NAME_RE.match(name):
        raise StoreError(422, "Invalid", f'{rt.kind} "{name}" is invalid: metadata.name: Invalid '
                         f'value: "{name}": a lowercase RFC 1123 subdomain must consist of lower '
                         "case alphanumeric characters, '-' or '.', and must start and end with an "
                         "alphanumeric character", {"name": name, "kind": rt.kind})
