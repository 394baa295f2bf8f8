"""Writes: create (201), replace (409 on a stale resourceVersion), patch, apply, delete.

``dryRun=All`` validates and answers without persisting (admission plugins such as sidecar
injection do not run on a dry run: not modelled). DELETE answers with the object for the
types kube-apiserver returns objects for (pods, services, service accounts, PVCs, resource
quotas, and the finalizer-bearing namespaces and CRDs) and a ``Status`` Success otherwise.
``propagationPolicy`` is accepted; the store always garbage-collects dependents in the
background (``Orphan`` is not modelled).

Custom resources are checked against their CRD's schema on every write (:mod:`..schema`):
fields the schema does not declare fail the request with ``fieldValidation=Strict`` (400,
``strict decoding error``), are dropped with a ``Warning: 299`` header under ``Warn`` (the
default) and silently under ``Ignore``; server-side apply always fails on them (500, "field
not declared in schema"). Built-in kinds are checked the same way against the schemas of
:mod:`..builtin_schemas`.

Every write of a kind or field the embedded cluster does not model (:mod:`..unmodelled`)
also answers with a ``Warning: 299`` header naming what is ignored.
"""

from __future__ import annotations

import copy
import uuid
from typing import Any

from aiohttp import web

from .. import builtin_schemas, schema, unmodelled
from ..resources import ResourceType
from ..store import StoreError, now_rfc3339
from . import apply as ssa
from .context import ApiContext
from .params import dry_run, read_body
from .patch import PatchError, json_patch, merge_patch, strategic_merge
from .paths import Target
from .responses import (
    bad_request,
    conflict,
    invalid,
    json_response,
    success_status,
    unsupported_media,
)

Obj = dict[str, Any]
_RETURNS_OBJECT = {("", "pods"), ("", "services"), ("", "serviceaccounts"),
                   ("", "persistentvolumeclaims"), ("", "resourcequotas"), ("", "namespaces"),
                   ("apiextensions.k8s.io", "customresourcedefinitions")}
APPLY = "application/apply-patch+yaml"


async def _object_body(request: web.Request, t: Target) -> Obj:
    body = await read_body(request)
    if body is None:
        raise bad_request("the request body is empty")
    kind = body.get("kind")
    if kind and kind != t.rt.kind:
        raise bad_request(f'{kind} in version "{t.version}" cannot be handled as a {t.rt.kind}')
    return body


# ------------------------------------------------------------------ create
async def create(request: web.Request, ctx: ApiContext, t: Target) -> web.Response:
    if t.rt.namespaced and t.namespace is None:
        raise StoreError(404, "NotFound", "the server could not find the requested resource", {})
    body = await _object_body(request, t)
    if (body.get("metadata") or {}).get("resourceVersion"):
        raise bad_request("resourceVersion should not be set on objects to be created")
    if t.rt.key == ("", "secrets"):
        body.setdefault("type", "Opaque")  # kube-apiserver's defaulting
    body, warnings = validate_fields(request, t, body)
    if dry_run(request):
        return with_warnings(json_response(t.present(_dry_create(ctx, t, body)), 201), warnings)
    created = ctx.store.create(t.rt, body, t.namespace)
    return with_warnings(json_response(t.present(created), 201), warnings)


def validate_fields(request: web.Request, t: Target, obj: Obj) -> tuple[Obj, list[str]]:
    """Unknown fields of a custom resource under the request's ``fieldValidation``: the object
    to store and the warnings to send (raises for ``Strict``), with a warning for each
    thing the embedded cluster stores but does not model."""
    if schema.schema_for(t.rt, obj) is None:
        warnings = [builtin_schemas.unchecked_warning(t.rt.kind, t.rt.api_version())]
    else:
        obj, warnings = schema.enforce_field_validation(t.rt, obj,
                                                        request.query.get("fieldValidation"))
    return obj, warnings + not_modelled(t, obj)


def not_modelled(t: Target, obj: Obj) -> list[str]:
    """The warnings for what the embedded cluster ignores of ``obj`` (not for status writes)."""
    return [] if t.sub else unmodelled.warnings(t.rt.group, t.rt.kind, obj, t.namespace)


def _validate_patched(request: web.Request, t: Target, obj: Obj) -> tuple[Obj, list[str]]:
    """As :func:`validate_fields`; a patch's strict error has no "cannot be handled" prefix
    (kube-apiserver's patch handler does not wrap the decoding error)."""
    try:
        return validate_fields(request, t, obj)
    except StoreError as err:
        _, sep, rest = err.message.partition(": strict decoding error: ")
        if err.code == 400 and sep:
            raise StoreError(400, "BadRequest", f"strict decoding error: {rest}") from None
        raise


def with_warnings(response: web.Response, warnings: list[str]) -> web.Response:
    """``Warning: 299 - "<text>"`` headers, one per warning (kubectl prints each)."""
    for text in warnings:
        quoted = text.replace("\\", "\\\\").replace('"', '\\"')
        response.headers.add("Warning", f'299 - "{quoted}"')
    return response


def _dry_create(ctx: ApiContext, t: Target, body: Obj) -> Obj:
    obj = copy.deepcopy(body)
    meta = obj.setdefault("metadata", {})
    if not meta.get("name") and meta.get("generateName"):
        meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
    if not meta.get("name"):
        raise invalid(t.rt, "", "metadata.name", "Required value: name or generateName is "
                      "required", "FieldValueRequired")
    if t.rt.namespaced:
        ns = t.namespace or meta.get("namespace") or "default"
        ctx.store.get(ctx.store.resource_type("", "namespaces"), None, ns)
        meta["namespace"] = ns
    if ctx.store.try_get(t.rt, t.namespace, meta["name"]) is not None:
        what = f"{t.rt.plural}.{t.rt.group}" if t.rt.group else t.rt.plural
        raise StoreError(409, "AlreadyExists", f'{what} "{meta["name"]}" already exists',
                         {"name": meta["name"], "group": t.rt.group, "kind": t.rt.plural})
    obj["apiVersion"], obj["kind"] = t.rt.api_version(), t.rt.kind
    meta.update(uid=str(uuid.uuid4()), creationTimestamp=now_rfc3339(), generation=1)
    return obj


# ------------------------------------------------------------------ replace
async def update(request: web.Request, ctx: ApiContext, t: Target) -> web.Response:
    body = await _object_body(request, t)
    name = str(t.name)
    body_name = (body.get("metadata") or {}).get("name")
    if body_name and body_name != name:
        raise bad_request(f"the name of the object ({body_name}) does not match the name on "
                          f"the URL ({name})")
    body, warnings = validate_fields(request, t, body)
    if dry_run(request):
        current = ctx.store.get(t.rt, t.namespace, name)
        sent = (body.get("metadata") or {}).get("resourceVersion")
        if sent and sent != current["metadata"]["resourceVersion"]:
            raise conflict(t.rt, name)
        return with_warnings(json_response(t.present(body)), warnings)
    updated = ctx.store.update(t.rt, body, t.namespace, name, t.sub)
    return with_warnings(json_response(t.present(updated)), warnings)


# ------------------------------------------------------------------ patch
async def patch(request: web.Request, ctx: ApiContext, t: Target) -> web.Response:
    ctype = request.headers.get("Content-Type", "").split(";")[0].strip()
    if ctype == APPLY:
        return await _apply(request, ctx, t)
    body = await read_body(request, allow_list=True)
    apply_fn = patch_function(t.rt, ctype, body)
    name = str(t.name)
    warnings: list[str] = []

    def edit(current: Obj) -> Obj:
        patched, warnings[:] = _validate_patched(request, t, _patched(apply_fn, current))
        return merge_result(t, current, patched, name)

    if dry_run(request):
        result = edit(ctx.store.get(t.rt, t.namespace, name))
    else:
        result = ctx.store.mutate(t.rt, t.namespace, name, edit)
    return with_warnings(json_response(t.present(result)), warnings)


def patch_function(rt: ResourceType, ctype: str, body: Any) -> Any:
    if ctype == "application/merge-patch+json":
        return lambda obj: merge_patch(obj, body)
    if ctype == "application/json-patch+json":
        return lambda obj: json_patch(obj, body)
    if ctype == "application/strategic-merge-patch+json":
        if not ssa.is_builtin(rt):
            raise unsupported_media(ctype, "the body of the request was in an unknown format - "
                                    "accepted media types include: application/json-patch+json, "
                                    "application/merge-patch+json, application/apply-patch+yaml")
        return lambda obj: strategic_merge(obj, body)
    raise unsupported_media(ctype)


def _patched(apply_fn: Any, current: Obj) -> Obj:
    try:
        result = apply_fn(copy.deepcopy(current))
    except PatchError as exc:
        raise StoreError(exc.code, "Invalid" if exc.code == 422 else "BadRequest", str(exc),
                         {}) from None
    if not isinstance(result, dict):
        raise StoreError(422, "Invalid", "the patched object is not a JSON object", {})
    return result


def merge_result(t: Target, current: Obj, new: Obj, name: str) -> Obj:
    """Keep what a write through this endpoint may not change; 409 on a stale precondition."""
    sent = (new.get("metadata") or {}).get("resourceVersion")
    if sent and sent != current["metadata"]["resourceVersion"]:
        raise conflict(t.rt, name)
    if t.sub == "status":
        out = copy.deepcopy(current)
        out["status"] = new.get("status", {})
        return out
    if "status" in t.rt.subresources:
        if "status" in current:
            new["status"] = current["status"]
        else:
            new.pop("status", None)
    return new


async def _apply(request: web.Request, ctx: ApiContext, t: Target) -> web.Response:
    manager = request.query.get("fieldManager", "")
    if not manager:
        raise StoreError(422, "Invalid", 'PatchOptions.meta.k8s.io "" is invalid: fieldManager: '
                         "Required value: is required for apply patch",
                         {"group": "meta.k8s.io", "kind": "PatchOptions", "causes": [
                             {"reason": "FieldValueRequired", "message": "Required value: is "
                              "required for apply patch", "field": "fieldManager"}]})
    config = await read_body(request, yaml_ok=True)
    if not config:
        raise bad_request("the apply configuration is empty")
    name = str(t.name)
    if (config.get("metadata") or {}).get("name", name) != name:
        raise bad_request("the name of the object does not match the name on the URL")
    config = ssa.clean_config(config)
    meta = {**(config.get("metadata") or {}), "name": name}
    if t.namespace:
        meta["namespace"] = t.namespace
    # apply is strict whatever fieldValidation says
    schema.enforce_field_validation(t.rt, {**config, "metadata": meta}, apply=True)
    current = ctx.store.try_get(t.rt, t.namespace, name)
    if current is None:
        return await _apply_create(request, ctx, t, config, manager)
    previous = ctx.applied.get((current["metadata"]["uid"], manager))

    def edit(live: Obj) -> Obj:
        applied = ssa.apply_config(t.rt, live, config, previous)
        return merge_result(t, live, applied, name)

    if dry_run(request):
        result = edit(current)
        return with_warnings(json_response(t.present(result)), not_modelled(t, result))
    result = ctx.store.mutate(t.rt, t.namespace, name, edit)
    ctx.applied[(result["metadata"]["uid"], manager)] = config
    return with_warnings(json_response(t.present(result)), not_modelled(t, result))


async def _apply_create(request: web.Request, ctx: ApiContext, t: Target, config: Obj,
                        manager: str) -> web.Response:
    if t.sub:
        raise StoreError(404, "NotFound", f'{t.rt.plural} "{t.name}" not found',
                         {"name": t.name, "group": t.rt.group, "kind": t.rt.plural})
    body = copy.deepcopy(config)
    body.setdefault("metadata", {})["name"] = t.name
    if dry_run(request):
        dry = _dry_create(ctx, t, body)
        return with_warnings(json_response(t.present(dry), 201), not_modelled(t, dry))
    created = ctx.store.create(t.rt, body, t.namespace)
    ctx.applied[(created["metadata"]["uid"], manager)] = config
    return with_warnings(json_response(t.present(created), 201), not_modelled(t, created))


# ------------------------------------------------------------------ delete
async def delete(request: web.Request, ctx: ApiContext, t: Target) -> web.Response:
    options = await read_body(request) or {}
    name = str(t.name)
    current = ctx.store.get(t.rt, t.namespace, name)
    _check_preconditions(t, current, options.get("preconditions") or {})
    if dry_run(request, options):
        return json_response(_deleted_body(t, current))
    gone = ctx.store.delete(t.rt, t.namespace, name)
    _forget(ctx, gone)
    return json_response(_deleted_body(t, gone))


def _check_preconditions(t: Target, current: Obj, pre: Obj) -> None:
    meta = current["metadata"]
    if pre.get("uid") and pre["uid"] != meta.get("uid"):
        raise StoreError(409, "Conflict", f"Precondition failed: UID in precondition: "
                         f"{pre['uid']}, UID in object meta: {meta.get('uid')}",
                         {"name": meta.get("name"), "kind": t.rt.plural})
    if pre.get("resourceVersion") and pre["resourceVersion"] != meta.get("resourceVersion"):
        raise conflict(t.rt, str(meta.get("name")))


def _deleted_body(t: Target, obj: Obj) -> Obj:
    if t.rt.key in _RETURNS_OBJECT:
        obj["metadata"].setdefault("deletionTimestamp", now_rfc3339())
        return t.present(obj)
    return success_status(t.rt, obj)


def _forget(ctx: ApiContext, obj: Obj) -> None:
    uid = (obj.get("metadata") or {}).get("uid")
    for key in [k for k in ctx.applied if k[0] == uid]:
        del ctx.applied[key]


async def delete_collection(request: web.Request, ctx: ApiContext, t: Target) -> web.Response:
    options = await read_body(request) or {}
    items, _ = ctx.store.list(t.rt, t.namespace, request.query.get("labelSelector"),
                              request.query.get("fieldSelector"))
    deleted = []
    for obj in items:
        meta = obj["metadata"]
        if not dry_run(request, options):
            try:
                obj = ctx.store.delete(t.rt, meta.get("namespace"), meta["name"])
            except StoreError:
                continue
            _forget(ctx, obj)
        deleted.append(t.present(obj))
    return json_response({"kind": t.rt.list_kind, "apiVersion": t.api_version,
                          "metadata": {"resourceVersion": str(ctx.store.resource_version)},
                          "items": deleted})
