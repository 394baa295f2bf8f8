"""Server-side apply (``PATCH`` with ``application/apply-patch+yaml``), simplified.

Modelled: ``fieldManager`` is required (422 without it); a missing object is created (201);
the applied configuration is merged into the live object the way ``kubectl apply`` merges
(maps recursively; lists with a merge key element by element for built-in types; other
lists, and every list of a custom resource, replaced whole); and fields that the same
manager applied before but left out this time are removed. What each manager applied last
is remembered by the API server, keyed by object uid and manager.

Not modelled: ``metadata.managedFields`` (never returned), ownership shared between
managers, and therefore apply conflicts (409): ``force`` is accepted and changes nothing.
"""

from __future__ import annotations

import copy
from typing import Any

from ..resources import BUILTIN_TYPES, ResourceType
from .patch import merge_key

Obj = dict[str, Any]
_BUILTIN_KEYS = {t.key for t in BUILTIN_TYPES}
_MISSING: Any = object()
_SERVER_OWNED = ("uid", "resourceVersion", "creationTimestamp", "generation", "managedFields",
                 "deletionTimestamp", "selfLink")


def is_builtin(rt: ResourceType) -> bool:
    return rt.key in _BUILTIN_KEYS


def clean_config(config: Obj) -> Obj:
    """The applied configuration without fields a client cannot own."""
    out = copy.deepcopy(config)
    meta = out.get("metadata") or {}
    for key in _SERVER_OWNED:
        meta.pop(key, None)
    return out


def apply_config(rt: ResourceType, live: Obj, config: Obj, previous: Obj | None) -> Obj:
    """The object after ``config`` is applied over ``live`` by a manager that applied
    ``previous`` last time (``None`` for its first apply)."""
    builtin = is_builtin(rt)
    merged = _merge(live, config, (), builtin)
    if previous is not None:
        _remove_dropped(merged, previous, config, (), builtin)
    return merged


def _merge(live: Any, config: Any, path: tuple[str, ...], builtin: bool) -> Any:
    if not isinstance(config, dict) or not isinstance(live, dict):
        return copy.deepcopy(config)
    out = dict(live)
    for key, value in config.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, list):
            out[key] = _merge_list(out.get(key), value, key, path, builtin)
        else:
            out[key] = _merge(out.get(key), value, (*path, key), builtin)
    return out


def _merge_list(live: Any, config: list, field: str, path: tuple[str, ...],
                builtin: bool) -> list:
    """A keyed list: the applied elements in the applied order (each merged with the live one
    of its key, down to nested keyed lists such as a container's ports), then the live ones
    the configuration does not name. So re-applying a configuration gives back the very list
    it gave before, whatever was applied in between (a pod template's hash comes back too)."""
    key = merge_key(field, path) if builtin else None
    if key is None or not isinstance(live, list):
        return copy.deepcopy(config)
    if not all(isinstance(e, dict) for e in config):
        return copy.deepcopy(config)
    by_key = {e.get(key): e for e in live if isinstance(e, dict)}
    named = {e.get(key) for e in config}
    merged = [_merge(by_key.get(e.get(key)), e, (*path, field), builtin) for e in config]
    return merged + [copy.deepcopy(e) for e in live
                     if not (isinstance(e, dict) and e.get(key) in named)]


def _remove_dropped(obj: Any, previous: Any, config: Any, path: tuple[str, ...],
                    builtin: bool) -> None:
    """Delete what ``previous`` set and ``config`` no longer sets (leaving what others set)."""
    if not isinstance(obj, dict) or not isinstance(previous, dict):
        return
    config = config if isinstance(config, dict) else {}
    for key, old in previous.items():
        new = config.get(key, _MISSING)
        live = obj.get(key)
        keyed = builtin and merge_key(key, path) is not None
        if isinstance(old, dict) and isinstance(live, dict):
            _remove_dropped(live, old, new, (*path, key), builtin)
        elif isinstance(old, list) and keyed and isinstance(live, list):
            _remove_dropped_items(live, old, new if isinstance(new, list) else [], key, path)
        elif new is _MISSING:
            obj.pop(key, None)
            continue
        if new is _MISSING and not obj.get(key):
            obj.pop(key, None)


def _remove_dropped_items(items: list, previous: list, config: list, field: str,
                          path: tuple[str, ...]) -> None:
    key = merge_key(field, path)
    now = {e.get(key): e for e in config if isinstance(e, dict)}
    for old in previous:
        if not isinstance(old, dict):
            continue
        ident = old.get(key)
        idx = next((i for i, e in enumerate(items) if isinstance(e, dict) and e.get(key) == ident),
                   None)
        if idx is None:
            continue
        if ident not in now:
            del items[idx]
        else:
            _remove_dropped(items[idx], old, now[ident], (*path, field), True)
