"""REST dispatch for ``/api/...`` and ``/apis/...``: parse the URL, route by verb.

Reads (get, list with selectors and ``limit``/``continue``) live here; writes in
:mod:`writes`; watch, logs, exec and tables in their own modules. Objects of a custom
resource leave the server with the ``apiVersion`` of the version the client asked for.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from aiohttp import web

from ..realism import is_suite_client
from ..store import StoreError
from . import discovery, logs, nodeproxy, portforward, scale, tables, watch, writes, wsexec
from .context import ApiContext, context_of
from .params import flag, int_param, wants_table
from .paths import Target, parse_target, split_group_version
from .responses import bad_request, json_response, method_not_allowed, not_found_path, not_modelled

Obj = dict[str, Any]


async def handle_core(request: web.Request) -> web.StreamResponse:
    return await _handle(request, core=True)


async def handle_groups(request: web.Request) -> web.StreamResponse:
    return await _handle(request, core=False)


async def _handle(request: web.Request, core: bool) -> web.StreamResponse:
    ctx = context_of(request)
    segments = [s for s in request.match_info["tail"].split("/") if s != ""]
    if not core and len(segments) == 1:
        _only_get(request, "group")
        return discovery.group(ctx.store, segments[0])
    parsed = split_group_version(core, segments)
    if parsed is None:
        raise not_found_path()
    group, version, rest = parsed
    if not rest:
        _only_get(request, "resource list")
        return discovery.resource_list(ctx.store, group, version)
    if core and len(rest) >= 3 and rest[0] == "nodes" and rest[2] == "proxy" and rest[1]:
        return await nodeproxy.serve(request, ctx, rest[1], "/".join(rest[3:]))
    target = parse_target(ctx.store, group, version, rest)
    return await route(request, ctx, target)


def _only_get(request: web.Request, what: str) -> None:
    if request.method != "GET":
        raise method_not_allowed(request.method, what)


async def route(request: web.Request, ctx: ApiContext, t: Target) -> web.StreamResponse:
    method, sub = request.method, t.sub
    if sub == "exec" and method in ("GET", "POST"):
        return await wsexec.serve(request, ctx, t)
    if sub == "portforward" and method in ("GET", "POST") and t.rt.plural == "pods":
        return await portforward.serve(request, ctx, t)
    if sub in ("attach", "portforward", "proxy"):
        raise not_modelled(f"{t.rt.plural}/{sub} (exec and port-forward work over websockets, "
                           "and Services "
                           "are reachable through their NodePorts on 127.0.0.1)")
    if sub == "log":
        _only_get(request, "pods/log")
        return await logs.serve(request, ctx, t)
    if sub == "scale":
        return await scale.serve(request, ctx, t)
    if sub == "exec" or (sub == "finalize" and method != "PUT"):
        raise method_not_allowed(method, f"{t.rt.plural}/{sub}")
    if method == "GET":
        return await _get(request, ctx, t)
    fault = _write_fault(request, ctx)
    if fault is not None:
        return fault
    if method == "POST" and t.name is None:
        return await writes.create(request, ctx, t)
    if method == "PUT" and t.name is not None:
        return await writes.update(request, ctx, t)
    if method == "PATCH" and t.name is not None:
        return await writes.patch(request, ctx, t)
    if method == "DELETE":
        if t.name is None:
            return await writes.delete_collection(request, ctx, t)
        return await writes.delete(request, ctx, t)
    raise method_not_allowed(method, t.rt.plural)


def _write_fault(request: web.Request, ctx: ApiContext) -> web.Response | None:
    """Realism profile: now and then a write of the suite's client fails before it is made,
    with 429 and ``Retry-After`` (the API priority and fairness answer) or a 500."""
    realism = ctx.runtime.realism
    if realism is None or not is_suite_client(request.headers.get("User-Agent", "")):
        return None
    code = realism.write_fault()
    if code == 429:
        body = StoreError(429, "TooManyRequests", "Too many requests, please try again later.",
                          {"retryAfterSeconds": realism.retry_after}).status()
        response = json_response(body, status=429)
        response.headers["Retry-After"] = str(realism.retry_after)
        return response
    if code == 500:
        failure = StoreError(500, "InternalError",
                             "Internal error occurred: etcdserver: request timed out")
        return json_response(failure.status(), status=500)
    return None


async def _get(request: web.Request, ctx: ApiContext, t: Target) -> web.StreamResponse:
    if t.name is None and flag(request, "watch"):
        return await watch.serve(request, ctx, t)
    if t.name is not None:
        obj = t.present(ctx.store.get(t.rt, t.namespace, t.name))
        if wants_table(request):
            return json_response(tables.table(ctx, request, t, [obj], None))
        return json_response(obj)
    return json_response(list_body(request, ctx, t))


def list_body(request: web.Request, ctx: ApiContext, t: Target) -> Obj:
    items, rv = ctx.store.list(t.rt, t.namespace, request.query.get("labelSelector"),
                               request.query.get("fieldSelector"))
    page, cont, remaining = paginate(items, int_param(request, "limit"),
                                     request.query.get("continue"), rv)
    meta: Obj = {"resourceVersion": str(rv)}
    if cont:
        meta.update({"continue": cont, "remainingItemCount": remaining})
    page = [t.present(o) for o in page]
    if wants_table(request):
        return tables.table(ctx, request, t, page, meta)
    return {"kind": t.rt.list_kind, "apiVersion": t.api_version, "metadata": meta, "items": page}


def paginate(items: list[Obj], limit: int | None, token: str | None, rv: int
             ) -> tuple[list[Obj], str | None, int]:
    """Continue tokens name the last key returned; a later page resumes after it."""
    start = 0
    if token:
        try:
            after = tuple(json.loads(base64.urlsafe_b64decode(token.encode())).get("after"))
        except (ValueError, TypeError):
            raise bad_request("continue key is not valid: incorrect encoded start") from None
        start = next((i for i, o in enumerate(items) if _key(o) > after), len(items))
    if not limit or limit <= 0 or start + limit >= len(items):
        return items[start:], None, 0
    page = items[start:start + limit]
    cont = base64.urlsafe_b64encode(json.dumps({"rv": rv, "after": list(_key(page[-1]))})
                                    .encode()).decode()
    return page, cont, len(items) - start - limit


def _key(obj: Obj) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return (meta.get("namespace") or "", meta.get("name") or "")
