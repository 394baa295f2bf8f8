"""The three PATCH formats kube-apiserver accepts besides server-side apply.

* ``application/merge-patch+json`` — RFC 7386: maps merge, ``null`` deletes, lists replace.
* ``application/json-patch+json`` — RFC 6902 operations on JSON pointers.
* ``application/strategic-merge-patch+json`` — built-in types only: lists with a merge key
  (containers/env/volumes by ``name``, container ports by ``containerPort``, Service ports by
  ``port``, volumeMounts by ``mountPath``, conditions by ``type`` ...) merge element by element;
  the directives ``$patch`` (replace/delete/merge), ``$retainKeys``, ``$setElementOrder/*``
  and ``$deleteFromPrimitiveList/*`` are honoured. Custom resources answer 415, as on a
  real server.

Not modelled: merge keys of types the labs never patch strategically (they replace).
"""

from __future__ import annotations

import copy
from typing import Any

Obj = dict[str, Any]

_MERGE_KEYS = {
    "containers": "name", "initContainers": "name", "ephemeralContainers": "name",
    "env": "name", "volumes": "name", "volumeMounts": "mountPath", "volumeDevices": "devicePath",
    "imagePullSecrets": "name", "hostAliases": "ip", "conditions": "type",
    "ownerReferences": "uid", "topologySpreadConstraints": "topologyKey",
    "resourceClaims": "name", "addresses": "type", "ephemeralContainerStatuses": "name",
    "containerStatuses": "name", "initContainerStatuses": "name",
}
_PRIMITIVE_MERGE = {"finalizers"}
_CONTAINER_LISTS = {"containers", "initContainers", "ephemeralContainers"}


class PatchError(Exception):
    """A patch that cannot be applied (422 on a real server) or cannot be read (400)."""

    def __init__(self, message: str, code: int = 422) -> None:
        super().__init__(message)
        self.code = code


# ------------------------------------------------------------------ RFC 7386
def merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


# ------------------------------------------------------------------ RFC 6902
def json_patch(doc: Any, ops: Any) -> Any:
    if not isinstance(ops, list):
        raise PatchError("json patch must be a list of operations", 400)
    doc = copy.deepcopy(doc)
    for op in ops:
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise PatchError(f"invalid json patch operation: {op}", 400)
        doc = _apply_op(doc, op)
    return doc


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f"invalid JSON pointer {path!r}", 400)
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _resolve(doc: Any, parts: list[str], path: str) -> Any:
    cur = doc
    for part in parts:
        if isinstance(cur, dict) and part in cur:
            cur = cur[part]
        elif isinstance(cur, list) and part.isdigit() and int(part) < len(cur):
            cur = cur[int(part)]
        else:
            raise PatchError(f"jsonpatch: path {path!r} does not exist in the object")
    return cur


def _apply_op(doc: Any, op: Obj) -> Any:
    kind, path = op["op"], op["path"]
    parts = _pointer(path)
    if kind == "test":
        if _resolve(doc, parts, path) != op.get("value"):
            raise PatchError(f"jsonpatch: test operation for path {path!r} failed")
        return doc
    if kind in ("move", "copy"):
        src = _pointer(op.get("from", ""))
        value = copy.deepcopy(_resolve(doc, src, op.get("from", "")))
        if kind == "move":
            doc = _remove(doc, src, op.get("from", ""))
        return _add(doc, parts, value, path)
    if kind == "remove":
        return _remove(doc, parts, path)
    if kind == "replace":
        doc = _remove(doc, parts, path)
        return _add(doc, parts, copy.deepcopy(op.get("value")), path)
    if kind == "add":
        return _add(doc, parts, copy.deepcopy(op.get("value")), path)
    raise PatchError(f"jsonpatch: unknown operation {kind!r}", 400)


def _add(doc: Any, parts: list[str], value: Any, path: str) -> Any:
    if not parts:
        return value
    parent = _resolve(doc, parts[:-1], path)
    last = parts[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list) and last == "-":
        parent.append(value)
    elif isinstance(parent, list) and last.isdigit() and int(last) <= len(parent):
        parent.insert(int(last), value)
    else:
        raise PatchError(f"jsonpatch: cannot add at path {path!r}")
    return doc


def _remove(doc: Any, parts: list[str], path: str) -> Any:
    if not parts:
        return None
    parent = _resolve(doc, parts[:-1], path)
    last = parts[-1]
    if isinstance(parent, dict) and last in parent:
        del parent[last]
    elif isinstance(parent, list) and last.isdigit() and int(last) < len(parent):
        del parent[int(last)]
    else:
        raise PatchError(f"jsonpatch: path {path!r} does not exist in the object")
    return doc


# ----------------------------------------------------------- strategic merge
def merge_key(field: str, path: tuple[str, ...]) -> str | None:
    """The patchMergeKey of list ``field`` found under ``path`` (field names from the root)."""
    if field == "ports":
        return "containerPort" if _CONTAINER_LISTS & set(path) else "port"
    return _MERGE_KEYS.get(field)


def strategic_merge(original: Any, patch: Any, path: tuple[str, ...] = ()) -> Any:
    if not isinstance(patch, dict) or not isinstance(original, dict):
        return _strip(patch)
    directive = patch.get("$patch")
    if directive == "replace":
        return _strip({k: v for k, v in patch.items() if k != "$patch"})
    out = dict(original)
    orders: dict[str, list] = {}
    for key, value in patch.items():
        if key in ("$patch", "$retainKeys"):
            continue
        if key.startswith("$setElementOrder/"):
            orders[key.split("/", 1)[1]] = value
        elif key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            out[field] = [v for v in out.get(field) or [] if v not in value]
        elif value is None or (isinstance(value, dict) and value.get("$patch") == "delete"):
            out.pop(key, None)
        elif isinstance(value, list):
            out[key] = _merge_list(out.get(key), value, key, path)
        else:
            out[key] = strategic_merge(out.get(key), value, (*path, key))
    for field, order in orders.items():
        if isinstance(out.get(field), list):
            out[field] = _order(out[field], order, merge_key(field, path))
    if isinstance(patch.get("$retainKeys"), list):
        keep = set(patch["$retainKeys"])
        out = {k: v for k, v in out.items() if k in keep}
    return out


def _merge_list(original: Any, patch: list, field: str, path: tuple[str, ...]) -> list:
    key = merge_key(field, path)
    if any(isinstance(e, dict) and e.get("$patch") == "replace" for e in patch):
        return [_strip(e) for e in patch if not (isinstance(e, dict) and "$patch" in e)]
    if field in _PRIMITIVE_MERGE:
        base = list(original or [])
        return base + [v for v in patch if v not in base]
    if key is None or not isinstance(original, list):
        return [_strip(e) for e in patch if not (isinstance(e, dict) and e.get("$patch"))]
    out = [copy.deepcopy(e) for e in original]
    for elem in patch:
        if not isinstance(elem, dict):
            continue
        idx = next((i for i, cur in enumerate(out)
                    if isinstance(cur, dict) and cur.get(key) == elem.get(key)), None)
        if elem.get("$patch") == "delete":
            if idx is not None:
                del out[idx]
        elif idx is None:
            out.append(_strip(elem))
        else:
            out[idx] = strategic_merge(out[idx], elem, (*path, field))
    return out


def _order(items: list, order: list, key: str | None) -> list:
    def ident(item: Any) -> Any:
        return item.get(key) if key and isinstance(item, dict) else item
    wanted = [o.get(key) if key and isinstance(o, dict) else o for o in order]
    ranked = sorted((i for i in items if ident(i) in wanted), key=lambda i: wanted.index(ident(i)))
    return ranked + [i for i in items if ident(i) not in wanted]


def _strip(value: Any) -> Any:
    """Drop ``$`` directives from a value that is taken as a whole."""
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if not k.startswith("$")}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return copy.deepcopy(value)
