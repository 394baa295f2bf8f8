"""``meta.k8s.io/v1`` Tables: what ``kubectl get`` asks for with
``Accept: application/json;as=Table;v=v1;g=meta.k8s.io`` so it prints real columns.

Built-in kinds use :mod:`printers` / :mod:`printers_misc`; other built-ins get NAME /
CREATED AT (kube-apiserver's default convertor, also what CRDs themselves print). Custom
resources use their CRD's ``additionalPrinterColumns`` for the requested version (JSONPath
subset: ``.a.b``, ``[n]``, ``[*]``, ``[?(@.k=="v")]``), else NAME / AGE. Rows carry the
object as ``includeObject`` asks: ``Metadata`` (default, PartialObjectMetadata), ``Object``
or ``None``.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

from aiohttp import web

from . import printers as p
from . import printers_misc as pm
from .context import ApiContext
from .paths import Target
from .timefmt import age

Obj = dict[str, Any]

PRINTERS: dict[tuple[str, str], tuple[list[p.Column], p.RowFn]] = {
    ("", "pods"): (p.POD_COLUMNS, p.pod_row),
    ("", "services"): (p.SERVICE_COLUMNS, p.service_row),
    ("apps", "deployments"): (p.DEPLOYMENT_COLUMNS, p.deployment_row),
    ("apps", "replicasets"): (p.REPLICASET_COLUMNS, p.replicaset_row),
    ("apps", "statefulsets"): (p.STATEFULSET_COLUMNS, p.statefulset_row),
    ("apps", "daemonsets"): (p.DAEMONSET_COLUMNS, p.daemonset_row),
    ("", "namespaces"): (pm.NAMESPACE_COLUMNS, pm.namespace_row),
    ("", "nodes"): (pm.NODE_COLUMNS, pm.node_row),
    ("", "configmaps"): (pm.CONFIGMAP_COLUMNS, pm.configmap_row),
    ("", "secrets"): (pm.SECRET_COLUMNS, pm.secret_row),
    ("", "serviceaccounts"): (pm.SERVICEACCOUNT_COLUMNS, pm.serviceaccount_row),
    ("", "events"): (pm.EVENT_COLUMNS, pm.event_row),
    ("", "endpoints"): (pm.ENDPOINTS_COLUMNS, pm.endpoints_row),
    ("autoscaling", "horizontalpodautoscalers"): (pm.HPA_COLUMNS, pm.hpa_row),
    ("policy", "poddisruptionbudgets"): (pm.PDB_COLUMNS, pm.pdb_row),
}
CRD_KEY = ("apiextensions.k8s.io", "customresourcedefinitions")


def table(ctx: ApiContext, request: web.Request, t: Target, objs: list[Obj],
          list_meta: Obj | None) -> Obj:
    columns, row_fn = printer(ctx, t)
    include = request.query.get("includeObject", "Metadata")
    now = time.time()  # the store stamps creationTimestamp with wall-clock time
    rows = []
    for obj in objs:
        row: Obj = {"cells": row_fn(obj, now)}
        if include == "Object":
            row["object"] = obj
        elif include != "None":
            row["object"] = partial_metadata(obj)
        rows.append(row)
    meta = list_meta if list_meta is not None else {
        "resourceVersion": (objs[0].get("metadata") or {}).get("resourceVersion", "") if objs
        else ""}
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": meta,
            "columnDefinitions": [_column(name, kind, prio) for name, kind, prio in columns],
            "rows": rows}


def partial_metadata(obj: Obj) -> Obj:
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
            "metadata": obj.get("metadata") or {}}


def _column(name: str, kind: str, priority: int) -> Obj:
    col = {"name": name, "type": kind, "format": "name" if name == "Name" else "",
           "description": f"{name} of the object", "priority": priority}
    return col


def printer(ctx: ApiContext, t: Target) -> tuple[list[p.Column], p.RowFn]:
    if t.rt.key in PRINTERS:
        return PRINTERS[t.rt.key]
    crd = ctx.store.try_get(ctx.store.resource_type(*CRD_KEY), None,
                            f"{t.rt.plural}.{t.rt.group}") if t.rt.group else None
    if crd is None:
        return _default_columns()
    return _crd_printer(crd, t.version)


def _default_columns() -> tuple[list[p.Column], p.RowFn]:
    def row(obj: Obj, now: float) -> list[Any]:
        meta = obj.get("metadata") or {}
        return [meta.get("name"), meta.get("creationTimestamp")]
    return [("Name", "string", 0), ("Created At", "date", 0)], row


def _crd_printer(crd: Obj, version: str) -> tuple[list[p.Column], p.RowFn]:
    entry: Obj = next((v for v in (crd.get("spec") or {}).get("versions") or []
                  if v.get("name") == version), {})
    specs = entry.get("additionalPrinterColumns")
    if specs is None:
        specs = [{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}]
    columns: list[p.Column] = [("Name", "string", 0)]
    columns += [(s.get("name", ""), s.get("type", "string"), int(s.get("priority", 0)))
                for s in specs]

    def row(obj: Obj, now: float) -> list[Any]:
        cells: list[Any] = [(obj.get("metadata") or {}).get("name")]
        for spec in specs:
            found = jsonpath(obj, spec.get("jsonPath", ""))
            cells.append(None if not found else _cell(spec.get("type", "string"), found[0], now))
        return cells
    return columns, row


def _cell(kind: str, value: Any, now: float) -> Any:
    if kind == "date":
        return age(value, now) if isinstance(value, str) else None
    if kind in ("integer", "number", "boolean"):
        return value
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


_TOKEN = re.compile(r"\.([A-Za-z0-9_\-]+)|\[(\d+|\*)\]|\[\?\(@\.([\w.\-]+)\s*==\s*['\"]([^'\"]*)"
                    r"['\"]\)\]|\['([^']+)'\]")


def jsonpath(obj: Any, path: str) -> list[Any]:
    """Values at a JSONPath (the subset CRDs' printer columns use); missing -> ``[]``."""
    text = path.strip().removeprefix("{").removesuffix("}").removeprefix("$")
    current = [obj]
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            return []
        current = _step(current, m)
        pos = m.end()
    return current


def _step(values: list[Any], m: re.Match[str]) -> list[Any]:
    field, index, fkey, fval, quoted = m.groups()
    out: list[Any] = []
    for v in values:
        if (field or quoted) and isinstance(v, dict) and (field or quoted) in v:
            out.append(v[field or quoted])
        elif index == "*" and isinstance(v, list):
            out += v
        elif index and index != "*" and isinstance(v, list) and int(index) < len(v):
            out.append(v[int(index)])
        elif fkey and isinstance(v, list):
            out += [e for e in v if _matches(e, fkey, fval)]
    return out


def _matches(elem: Any, key: str, value: str) -> bool:
    found = jsonpath(elem, "." + key)
    return bool(found) and _cell("string", found[0], 0.0) == value
