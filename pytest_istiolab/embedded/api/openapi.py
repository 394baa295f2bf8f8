"""OpenAPI v3: what ``kubectl`` asks before it validates fields and when it explains a kind.

``kubectl create/apply`` (``--validate=true``, the default) ask ``/openapi/v3`` whether the
PATCH operation of the object's kind takes the ``fieldValidation`` query parameter; when it
does, kubectl leaves validation to the server instead of downloading schemas. Each group
version's document therefore lists, per resource, a PATCH operation tagged with its
``x-kubernetes-group-version-kind`` and that parameter. ``kubectl explain`` reads the
kind's schema from the same document's ``components.schemas`` (:mod:`.openapi_schemas`:
built-in kinds from the kubernetes client's models, custom resources from their CRD).

Not modelled: every other path and operation. The validation itself happens on writes
(custom resources only, :mod:`.writes`). ``/openapi/v2`` is 404.
"""

from __future__ import annotations

import hashlib
import json

from aiohttp import web

from ..resources import ResourceType
from ..store import Store
from .context import context_of
from .openapi_schemas import builtin_schemas, custom_schemas
from .responses import json_response, not_found_path, status_response


def _gv_path(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


def _by_group_version(store: Store) -> dict[str, list[tuple[ResourceType, str]]]:
    out: dict[str, list[tuple[ResourceType, str]]] = {}
    for rt in store.types():
        for version in rt.versions:
            out.setdefault(_gv_path(rt.group, version), []).append((rt, version))
    return out


def _document(entries: list[tuple[ResourceType, str]]) -> dict:
    paths: dict[str, dict] = {}
    for rt, version in sorted(entries, key=lambda e: e[0].plural):
        prefix = "/" + _gv_path(rt.group, version)
        scope = "/namespaces/{namespace}" if rt.namespaced else ""
        operation = {
            "operationId": f"patch{rt.kind}",
            "x-kubernetes-action": "patch",
            "x-kubernetes-group-version-kind": {"group": rt.group, "version": version,
                                                "kind": rt.kind},
            "parameters": [{"name": name, "in": "query", "schema": {"type": "string"}}
                           for name in ("dryRun", "fieldManager", "fieldValidation", "force")],
            "responses": {"200": {"description": "OK"}},
        }
        paths[f"{prefix}{scope}/{rt.plural}/{{name}}"] = {"patch": operation}
    schemas = {**builtin_schemas(entries), **custom_schemas(entries)}
    return {"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": "v1.33.1"},
            "paths": paths, "components": {"schemas": schemas}}


def _hash(entries: list[tuple[ResourceType, str]]) -> str:
    text = json.dumps(sorted(f"{rt.group}/{v}/{rt.plural}/{rt.kind}" for rt, v in entries))
    return hashlib.sha256(text.encode()).hexdigest()[:32].upper()


async def index(request: web.Request) -> web.Response:
    groups = _by_group_version(context_of(request).store)
    return json_response({"paths": {
        path: {"serverRelativeURL": f"/openapi/v3/{path}?hash={_hash(entries)}"}
        for path, entries in sorted(groups.items())}})


async def group_version(request: web.Request) -> web.Response:
    entries = _by_group_version(context_of(request).store).get(request.match_info["tail"])
    if not entries:
        return status_response(not_found_path())
    return json_response(_document(entries))


async def v2(request: web.Request) -> web.Response:
    return status_response(not_found_path(
        "the embedded cluster serves no OpenAPI v2 document"))
