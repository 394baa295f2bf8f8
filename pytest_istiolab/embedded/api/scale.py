"""The ``scale`` subresource: an ``autoscaling/v1`` Scale view of Deployments, ReplicaSets
and StatefulSets (``kubectl scale`` patches it). Writes change ``spec.replicas`` only."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ..store import StoreError
from .context import ApiContext
from .params import dry_run, read_body
from .patch import PatchError, json_patch, merge_patch
from .paths import Target
from .responses import bad_request, conflict, json_response, method_not_allowed, unsupported_media

Obj = dict[str, Any]


def to_scale(obj: Obj) -> Obj:
    meta = obj.get("metadata") or {}
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    return {
        "kind": "Scale", "apiVersion": "autoscaling/v1",
        "metadata": {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion",
                                          "creationTimestamp") if k in meta},
        "spec": {"replicas": int(spec.get("replicas", 1))},
        "status": {"replicas": int(status.get("replicas", 0)),
                   "selector": selector_string(spec.get("selector") or {})},
    }


def selector_string(selector: Obj) -> str:
    """A LabelSelector as the query string kube-apiserver prints (``app=x,tier in (a,b)``)."""
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if op == "In":
            parts.append(f"{key} in ({','.join(values)})")
        elif op == "NotIn":
            parts.append(f"{key} notin ({','.join(values)})")
        elif op == "Exists":
            parts.append(str(key))
        elif op == "DoesNotExist":
            parts.append(f"!{key}")
    return ",".join(parts)


async def serve(request: web.Request, ctx: ApiContext, t: Target) -> web.Response:
    name = str(t.name)
    if request.method == "GET":
        return json_response(to_scale(ctx.store.get(t.rt, t.namespace, name)))
    if request.method == "PUT":
        body = await read_body(request) or {}
        return _write(request, ctx, t, lambda scale: body)
    if request.method == "PATCH":
        ctype = request.headers.get("Content-Type", "").split(";")[0].strip()
        body = await read_body(request, allow_list=True, yaml_ok=ctype.endswith("yaml"))
        if ctype == "application/json-patch+json":
            return _write(request, ctx, t, lambda scale: json_patch(scale, body))
        if ctype in ("application/merge-patch+json", "application/strategic-merge-patch+json",
                     "application/apply-patch+yaml"):
            return _write(request, ctx, t, lambda scale: merge_patch(scale, body))
        raise unsupported_media(ctype)
    raise method_not_allowed(request.method, f"{t.rt.plural}/scale")


def _write(request: web.Request, ctx: ApiContext, t: Target, change: Any) -> web.Response:
    name = str(t.name)

    def edit(obj: Obj) -> Obj:
        scale = to_scale(obj)
        try:
            wanted = change(scale)
        except PatchError as exc:
            raise StoreError(exc.code, "Invalid", str(exc), {}) from None
        sent = (wanted.get("metadata") or {}).get("resourceVersion")
        if sent and sent != obj["metadata"]["resourceVersion"]:
            raise conflict(t.rt, name)
        replicas = (wanted.get("spec") or {}).get("replicas")
        if not isinstance(replicas, int) or replicas < 0:
            raise bad_request(f"invalid replicas for scale: {replicas!r}")
        obj.setdefault("spec", {})["replicas"] = replicas
        return obj

    if dry_run(request):
        return json_response(to_scale(edit(ctx.store.get(t.rt, t.namespace, name))))
    return json_response(to_scale(ctx.store.mutate(t.rt, t.namespace, name, edit)))
