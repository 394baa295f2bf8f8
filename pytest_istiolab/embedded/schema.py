"""Unknown-field detection against a structural schema: a custom resource's openAPIV3Schema,
or a built-in kind's from :mod:`.builtin_schemas`.

What kube-apiserver does with a field a CRD's schema does not declare depends on the
request's ``fieldValidation`` parameter:

* ``Strict`` (kubectl's default since 1.27 for create/replace/client-side apply): 400
  BadRequest, message ``<Kind> in version "<v>" cannot be handled as a <Kind>: strict
  decoding error: unknown field "spec.hosst"`` (several fields joined with ``, ``);
* ``Warn`` (the server default when the parameter is absent, e.g. the Python client): the
  field is dropped (pruned) and a ``Warning: 299 - "unknown field \\"spec.hosst\\""``
  header is returned for each one;
* ``Ignore``: dropped silently;
* server-side apply is always strict, whatever ``fieldValidation`` says: kubectl prints
  ``Error from server: failed to create typed patch object (<ns>/<name>; <group>/<v>,
  Kind=<Kind>): .spec.hosst: field not declared in schema`` (no reason in parentheses, so
  the Status has no known reason: code 500); :func:`apply_error_message` builds the text.

Paths use Kubernetes' notation: ``spec.http[0].route[0].destination.hots``. Fields under an
object marked ``x-kubernetes-preserve-unknown-fields`` are never unknown. ``metadata``,
``apiVersion`` and ``kind`` are not checked here (ObjectMeta has its own rules).
"""

from __future__ import annotations

import copy
from typing import Any

from .resources import ResourceType

Obj = dict[str, Any]
_SKIP_TOP = ("apiVersion", "kind", "metadata")


def schema_for(rt: ResourceType, obj: Obj) -> Obj | None:
    """The openAPIV3Schema of the version ``obj`` is written in (preferred version if none)."""
    version = str(obj.get("apiVersion") or "").rpartition("/")[2]
    if not rt.schemas:
        from .builtin_schemas import schema_for_kind  # built-in kinds: from the client's models

        return schema_for_kind(rt.group, version or rt.preferred_version, rt.kind)
    return rt.schemas.get(version) or rt.schemas.get(rt.preferred_version) or None


def validate_custom_resource(rt: ResourceType, obj: Obj) -> list[str]:
    """Paths of the fields in ``obj`` that ``rt``'s schema does not declare (may be empty)."""
    schema = schema_for(rt, obj)
    if not schema:
        return []
    unknown: list[str] = []
    _walk({k: v for k, v in obj.items() if k not in _SKIP_TOP}, schema, "", unknown)
    return unknown


def prune_unknown_fields(rt: ResourceType, obj: Obj) -> tuple[Obj, list[str]]:
    """A copy of ``obj`` without the undeclared fields (``Warn``/``Ignore``), and their paths."""
    schema = schema_for(rt, obj)
    if not schema:
        return obj, []
    pruned = copy.deepcopy(obj)
    unknown: list[str] = []
    body = {k: v for k, v in pruned.items() if k not in _SKIP_TOP}
    _walk(body, schema, "", unknown, prune=True)
    for key in [k for k in pruned if k not in _SKIP_TOP]:
        if key in body:
            pruned[key] = body[key]
        else:
            del pruned[key]
    return pruned, unknown


def strict_error_message(rt: ResourceType, obj: Obj, unknown: list[str]) -> str:
    """The 400 BadRequest message for ``fieldValidation=Strict``."""
    version = str(obj.get("apiVersion") or rt.api_version()).rpartition("/")[2]
    fields = ", ".join(f'unknown field "{p}"' for p in unknown)
    return (f'{rt.kind} in version "{version}" cannot be handled as a {rt.kind}: '
            f"strict decoding error: {fields}")


def warning_texts(unknown: list[str]) -> list[str]:
    """One ``Warning`` header text per pruned field (``fieldValidation=Warn``)."""
    return [f'unknown field "{p}"' for p in unknown]


def apply_error_message(rt: ResourceType, obj: Obj, unknown: list[str]) -> str:
    """The server-side apply error for undeclared fields (apply is always strict)."""
    meta = obj.get("metadata") or {}
    version = str(obj.get("apiVersion") or rt.api_version()).rpartition("/")[2]
    where = f"{meta.get('namespace', '')}/{meta.get('name', '')}"
    fields = "\n".join(f".{p}: field not declared in schema" for p in unknown)
    return (f"failed to create typed patch object ({where}; {rt.group}/{version}, "
            f"Kind={rt.kind}): {fields}")


def enforce_field_validation(rt: ResourceType, obj: Obj, directive: str | None = None,
                             apply: bool = False) -> tuple[Obj, list[str]]:
    """What kube-apiserver does with undeclared fields of a custom resource on a write.

    ``directive`` is the request's ``fieldValidation`` (None means the server default,
    ``Warn``); ``apply`` marks a server-side apply (always strict). Returns the object to
    store (undeclared fields pruned) and the ``Warning`` header texts to send; raises
    :class:`~.store.StoreError` (400 for ``Strict``, 500 without a reason for apply).
    """
    from .store import StoreError

    pruned, unknown = prune_unknown_fields(rt, obj)
    if not unknown:
        return obj, []
    if apply:
        raise StoreError(500, "", apply_error_message(rt, obj, unknown))
    mode = (directive or "Warn").capitalize()
    if mode == "Strict":
        raise StoreError(400, "BadRequest", strict_error_message(rt, obj, unknown))
    return pruned, warning_texts(unknown) if mode == "Warn" else []


def _walk(value: Any, schema: Obj, path: str, unknown: list[str], prune: bool = False) -> None:
    if isinstance(value, list):
        items = schema.get("items")
        if isinstance(items, dict):
            for i, item in enumerate(value):
                _walk(item, items, f"{path}[{i}]", unknown, prune)
        return
    if not isinstance(value, dict):
        return
    props = schema.get("properties")
    additional = schema.get("additionalProperties")
    preserve = bool(schema.get("x-kubernetes-preserve-unknown-fields"))
    if props is None and not isinstance(additional, dict):
        return  # free-form object (preserve-unknown or untyped)
    for key in list(value):
        child = f"{path}.{key}" if path else str(key)
        if props is not None and key in props:
            _walk(value[key], props[key], child, unknown, prune)
        elif isinstance(additional, dict):
            _walk(value[key], additional, child, unknown, prune)
        elif additional is True or preserve:
            continue
        else:
            unknown.append(child)
            if prune:
                del value[key]
