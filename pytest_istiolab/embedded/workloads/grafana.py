"""The Grafana addon (``grafana/grafana:11.3.1`` of ``samples/addons/grafana.yaml``) on 3000.

Scope and limitations
---------------------
Anonymous access as the addon configures it (``GF_AUTH_ANONYMOUS_ENABLED``, role Admin): no
login, no users, no API keys. Served (Grafana 11.3's paths and JSON shapes):

* ``GET /api/health``: ``{"commit", "database": "ok", "version": "11.3.1"}`` pretty-printed
  (the build commit is not known to the model and is empty);
* ``GET /api/search``: the provisioned folders and dashboards; ``query`` (case-insensitive
  substring of the title), ``tag`` (repeatable; every tag must match, folders have none),
  ``type`` (``dash-db`` | ``dash-folder``), ``dashboardUIDs``, ``folderUIDs``, ``starred``
  (nothing is starred), ``limit`` (default 1000) and ``page``; folders first, then by title;
* ``GET /api/dashboards/uid/<uid>``: ``{"dashboard", "meta"}`` of a provisioned dashboard;
* ``GET /api/folders``, ``/api/datasources``, ``/api/datasources/uid/<uid>``,
  ``/api/datasources/name/<name>``, ``/api/datasources/<id>``;
* the datasource proxy ``/api/datasources/proxy/uid/<uid>/<path>`` (and the deprecated
  ``/api/datasources/proxy/<id>/<path>``): method, path, query string and body are sent to
  the datasource's ``url`` from this pod through the mesh, and the answer comes back as it is
  (a refused connection is 502, with a JSON message of the model's wording);
* any other path outside ``/api`` and ``/public``: the single-page app's HTML (200).

What is provisioned comes from :mod:`.grafana_provisioning` (the mounted ConfigMaps, read at
each request). Not modelled, answered 501 naming the path: the query API ``/api/ds/query``
(what Grafana's own panels call; the suite sends panel queries through the datasource proxy,
substituting template variables as Grafana's frontend does), saving or deleting dashboards,
annotations, alerting, users, orgs, plugins, rendering, live.
"""

from __future__ import annotations

import json
import re
import threading
from typing import Any

from ..mesh.config import namespace_of
from ..mesh.flow import http_date
from ..mesh.headers import Headers
from .base import AppContext, AppRequest, AppResponse
from .grafana_provisioning import Dashboard, Datasource, Folder, Provisioned, provision, slugify

Obj = dict[str, Any]
VERSION = "11.3.1"
_CACHE: dict[tuple[Any, ...], Provisioned] = {}
_CACHE_LOCK = threading.Lock()
JSON = "application/json"


def _json(value: Any, status: int = 200, indent: int | None = None) -> AppResponse:
    body = json.dumps(value, indent=indent).encode()
    return AppResponse(status, Headers([("Content-Type", JSON),
                                        ("Content-Length", str(len(body)))]), body)


def _message(status: int, message: str) -> AppResponse:
    return _json({"message": message}, status)


class Grafana:
    def __init__(self, pod: Obj, container: Obj) -> None:
        self.pod, self.container = pod, container

    def handle(self, ctx: AppContext, req: AppRequest) -> AppResponse:
        ctx.spend(0.5, 2)
        response = self._route(ctx, req)
        response.headers = Headers([*response.headers.items(), ("Date", http_date(ctx.now)),
                                    ("Cache-Control", "no-store"),
                                    ("X-Content-Type-Options", "nosniff")])
        return response

    def _provisioned(self, ctx: AppContext) -> Provisioned:
        """What the mounted files provision now (cached while no ConfigMap changes)."""
        ns = namespace_of(self.pod)
        configmaps = {c["metadata"]["name"]: c
                      for c in ctx.runtime.store.by_kind("", "configmaps", ns)}
        key = (str(self.pod["metadata"].get("uid")), ctx.env("GF_PATHS_PROVISIONING"),
               tuple(sorted((n, str(c["metadata"].get("resourceVersion")))
                            for n, c in configmaps.items())))
        with _CACHE_LOCK:
            found = _CACHE.get(key)
        if found is None:
            found = provision(self.pod, self.container, configmaps, key[1])
            with _CACHE_LOCK:
                _CACHE.clear()  # one entry per cluster is plenty; never grows
                _CACHE[key] = found
        return found

    def _route(self, ctx: AppContext, req: AppRequest) -> AppResponse:
        path = req.path_only
        if not (path == "/api" or path.startswith("/api/")):
            if path.startswith("/public/"):
                return _message(404, "Not found")
            return _index()
        proxied = re.fullmatch(r"/api/datasources/proxy/(uid/)?([^/]+)(/.*)?", path)
        if proxied:
            return self._proxy(ctx, req, bool(proxied.group(1)), proxied.group(2),
                               proxied.group(3) or "/")
        if req.method not in ("GET", "HEAD"):
            return _not_modelled(req)
        if path == "/api/health":
            return _json({"commit": "", "database": "ok", "version": VERSION}, indent=2)
        state = self._provisioned(ctx)
        if path == "/api/search":
            return _json(_search(state, req.query, self._when()))
        found = re.fullmatch(r"/api/dashboards/uid/([^/]+)", path)
        if found:
            return self._dashboard(state, found.group(1))
        if path == "/api/folders":
            return _json([{"id": f.id, "uid": f.uid, "title": f.title} for f in state.folders])
        if path == "/api/datasources":
            return _json([_datasource(d) for d in state.datasources])
        found = re.fullmatch(r"/api/datasources/(uid/|name/)?([^/]+)", path)
        if found:
            ds = _find_datasource(state, found.group(1) or "", found.group(2))
            return _json(_datasource(ds)) if ds else _message(404, "Data source not found")
        return _not_modelled(req)

    def _when(self) -> str:
        raw = (self.pod.get("status") or {}).get("startTime") or \
            self.pod["metadata"].get("creationTimestamp") or "1970-01-01T00:00:00Z"
        return str(raw)

    def _dashboard(self, state: Provisioned, uid: str) -> AppResponse:
        dash = next((d for d in state.dashboards if d.uid == uid), None)
        if dash is None:
            return _message(404, "Dashboard not found")
        folder = dash.folder
        meta = {"type": "db", "canSave": True, "canEdit": True, "canAdmin": True,
                "canStar": True, "canDelete": True, "slug": slugify(dash.title),
                "url": _dash_url(dash), "expires": "0001-01-01T00:00:00Z",
                "created": self._when(), "updated": self._when(), "updatedBy": "Anonymous",
                "createdBy": "Anonymous", "version": 1, "hasAcl": False, "isFolder": False,
                "folderId": folder.id if folder else 0, "folderUid": folder.uid if folder else "",
                "folderTitle": folder.title if folder else "General",
                "folderUrl": _folder_url(folder) if folder else "",
                "provisioned": True, "provisionedExternalId": dash.file}
        return _json({"meta": meta, "dashboard": {**dash.model, "id": dash.id, "uid": dash.uid,
                                                  "version": 1}})

    def _proxy(self, ctx: AppContext, req: AppRequest, by_uid: bool, key: str,
               rest: str) -> AppResponse:
        state = self._provisioned(ctx)
        ds = _find_datasource(state, "uid/" if by_uid else "", key)
        if ds is None:
            return _message(404, "Unable to find datasource")
        if ds.access != "proxy" or not ds.url:
            return _message(400, f"data source {ds.name} has no url to proxy to")
        query = req.path.partition("?")[2]
        url = ds.url.rstrip("/") + rest + (f"?{query}" if query else "")
        headers = Headers([(k, v) for k, v in req.headers.items()
                           if k.lower() in ("content-type", "accept")])
        answer = ctx.call(req.method, url, headers, req.body, timeout=30.0)
        if answer.failure is not None or answer.status == 0:
            return _message(502, f"Bad Gateway: the data source {ds.name} at {ds.url} did not "
                                 "answer")
        kept = [(k, v) for k, v in answer.headers.items()
                if k.lower() in ("content-type", "content-encoding")]
        kept.append(("Content-Length", str(len(answer.body))))
        return AppResponse(answer.status, Headers(kept), answer.body)


def _index() -> AppResponse:
    body = (b"<!DOCTYPE html>\n<html lang=\"en-US\">\n<head><meta charset=\"utf-8\">"
            b"<title>Grafana</title><base href=\"/\" /></head>\n<body class=\"theme-dark\">"
            b"<div id=\"reactRoot\"></div></body>\n</html>\n")
    return AppResponse(200, Headers([("Content-Type", "text/html; charset=UTF-8"),
                                     ("Content-Length", str(len(body)))]), body)


def _not_modelled(req: AppRequest) -> AppResponse:
    return _message(501, f"{req.method} {req.path_only} is not modelled by the embedded Grafana "
                         "(modelled: /api/health, /api/search, /api/dashboards/uid/<uid>, "
                         "/api/folders, /api/datasources and the datasource proxy)")


def _find_datasource(state: Provisioned, how: str, key: str) -> Datasource | None:
    for ds in state.datasources:
        if (how == "uid/" and ds.uid == key) or (how == "name/" and ds.name == key) or \
                (how == "" and str(ds.id) == key):
            return ds
    return None


def _datasource(ds: Datasource) -> Obj:
    return {"id": ds.id, "uid": ds.uid, "orgId": 1, "name": ds.name, "type": ds.type,
            "typeName": ds.type.capitalize(),
            "typeLogoUrl": f"public/app/plugins/datasource/{ds.type}/img/{ds.type}_logo.svg",
            "access": ds.access, "url": ds.url, "user": "", "database": "",
            "basicAuth": False, "isDefault": ds.is_default, "jsonData": ds.json_data,
            "readOnly": not ds.editable}


def _dash_url(dash: Dashboard) -> str:
    return f"/d/{dash.uid}/{slugify(dash.title)}"


def _folder_url(folder: Folder) -> str:
    return f"/dashboards/f/{folder.uid}/{slugify(folder.title)}"


def _search(state: Provisioned, query: list[tuple[str, str]], when: str) -> list[Obj]:
    params: dict[str, list[str]] = {}
    for k, v in query:
        params.setdefault(k, []).append(v)
    text = (params.get("query") or [""])[0].lower()
    tags = [t for t in params.get("tag", []) if t]
    kind = (params.get("type") or [""])[0]
    uids = {u for v in params.get("dashboardUIDs", []) for u in v.split(",") if u}
    folder_uids = {u for v in params.get("folderUIDs", []) for u in v.split(",") if u}
    starred = (params.get("starred") or ["false"])[0].lower() == "true"
    hits: list[Obj] = []
    if starred:
        return hits
    if kind in ("", "dash-folder") and not tags and not folder_uids:
        hits += [_folder_hit(f) for f in state.folders if text in f.title.lower()
                 and (not uids or f.uid in uids)]
    if kind in ("", "dash-db"):
        hits += [_dash_hit(d) for d in state.dashboards if text in d.title.lower()
                 and all(t in d.tags for t in tags) and (not uids or d.uid in uids)
                 and (not folder_uids or (d.folder.uid if d.folder else "general")
                      in folder_uids)]
    hits.sort(key=lambda h: (h["type"] != "dash-folder", h["title"].lower()))
    limit = _int((params.get("limit") or ["1000"])[0], 1000)
    page = max(_int((params.get("page") or ["1"])[0], 1), 1)
    return hits[(page - 1) * limit: page * limit]


def _int(raw: str, default: int) -> int:
    return int(raw) if raw.isdigit() and int(raw) > 0 else default


def _folder_hit(folder: Folder) -> Obj:
    slug = slugify(folder.title)
    return {"id": folder.id, "uid": folder.uid, "title": folder.title, "uri": f"db/{slug}",
            "url": _folder_url(folder), "slug": "", "type": "dash-folder", "tags": [],
            "isStarred": False, "sortMeta": 0}


def _dash_hit(dash: Dashboard) -> Obj:
    hit: Obj = {"id": dash.id, "uid": dash.uid, "title": dash.title,
                "uri": f"db/{slugify(dash.title)}", "url": _dash_url(dash), "slug": "",
                "type": "dash-db", "tags": list(dash.tags), "isStarred": False, "sortMeta": 0}
    if dash.folder is not None:
        hit.update({"folderId": dash.folder.id, "folderUid": dash.folder.uid,
                    "folderTitle": dash.folder.title, "folderUrl": _folder_url(dash.folder)})
    return hit
