"""Discovery: ``/version``, health, ``/api``, ``/apis``, and the APIResourceLists.

Answers the legacy (unaggregated) discovery shapes; ``kubectl`` asks for aggregated
discovery (``apidiscovery.k8s.io/v2``) first and falls back to these when the response is
plain ``application/json``. A CRD's group/version appears as soon as the CRD is created,
because the store registers the type in the same write. OpenAPI: see :mod:`openapi`.
"""

from __future__ import annotations

from aiohttp import web

from ..resources import ResourceType, version_priority
from ..store import Store
from .context import context_of
from .responses import json_response, not_found_path

VERSION_INFO = {
    "major": "1", "minor": "33", "emulationMajor": "1", "emulationMinor": "33",
    "minCompatibilityMajor": "1", "minCompatibilityMinor": "32", "gitVersion": "v1.33.1",
    "gitCommit": "8adc0f041b8e7ad1d30e29cc59c6ae7a15e19828", "gitTreeState": "clean",
    "buildDate": "2025-05-15T08:19:08Z", "goVersion": "go1.24.2", "compiler": "gc",
    "platform": "linux/amd64",
}

# subresource -> (kind, group, version, verbs) as kube-apiserver lists them
_SUBRESOURCES: dict[str, tuple[str | None, str | None, str | None, list[str]]] = {
    "status": (None, None, None, ["get", "patch", "update"]),
    "scale": ("Scale", "autoscaling", "v1", ["get", "patch", "update"]),
    "exec": ("PodExecOptions", None, None, ["create", "get"]),
    "attach": ("PodAttachOptions", None, None, ["create", "get"]),
    "portforward": ("PodPortForwardOptions", None, None, ["create", "get"]),
    "log": ("Pod", None, None, ["get"]),
    "proxy": ("ServiceProxyOptions", None, None,
              ["create", "delete", "get", "patch", "update"]),
    "finalize": (None, None, None, ["update"]),
}


async def version(request: web.Request) -> web.Response:
    return json_response(VERSION_INFO)


async def health(request: web.Request) -> web.Response:
    return web.Response(text="ok", content_type="text/plain")


async def core_versions(request: web.Request) -> web.Response:
    host = request.host
    return json_response({"kind": "APIVersions", "versions": ["v1"],
                          "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0",
                                                          "serverAddress": host}]})


async def group_list(request: web.Request) -> web.Response:
    store = context_of(request).store
    groups = [_group(name, versions) for name, versions in _groups(store).items()]
    return json_response({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})


def group(store: Store, name: str) -> web.Response:
    versions = _groups(store).get(name)
    if versions is None:
        raise not_found_path()
    return json_response({"kind": "APIGroup", "apiVersion": "v1", **_group(name, versions)})


def resource_list(store: Store, group_name: str, version_name: str) -> web.Response:
    types = [rt for rt in store.types() if rt.group == group_name and version_name in rt.versions]
    if not types:
        raise not_found_path()
    gv = f"{group_name}/{version_name}" if group_name else version_name
    resources: list[dict] = []
    for rt in sorted(types, key=lambda t: t.plural):
        resources.append(_resource(rt))
        resources += [_subresource(rt, sub) for sub in rt.subresources]
    return json_response({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv,
                          "resources": resources})


def _groups(store: Store) -> dict[str, list[str]]:
    """Every non-core group with its versions, preferred first."""
    out: dict[str, set[str]] = {}
    for rt in store.types():
        if rt.group:
            out.setdefault(rt.group, set()).update(rt.versions)
    return {g: sorted(vs, key=version_priority) for g, vs in sorted(out.items())}


def _group(name: str, versions: list[str]) -> dict:
    entries = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
    return {"name": name, "versions": entries, "preferredVersion": dict(entries[0])}


def _resource(rt: ResourceType) -> dict:
    entry: dict = {"name": rt.plural, "singularName": rt.singular, "namespaced": rt.namespaced,
                   "kind": rt.kind, "verbs": list(rt.verbs)}
    if rt.short_names:
        entry["shortNames"] = list(rt.short_names)
    if rt.categories:
        entry["categories"] = list(rt.categories)
    return entry


def _subresource(rt: ResourceType, sub: str) -> dict:
    kind, group_name, version_name, verbs = _SUBRESOURCES.get(sub, (None, None, None, ["get"]))
    entry: dict = {"name": f"{rt.plural}/{sub}", "singularName": "", "namespaced": rt.namespaced,
                   "kind": kind or rt.kind, "verbs": verbs}
    if group_name:
        entry["group"], entry["version"] = group_name, version_name
    return entry
