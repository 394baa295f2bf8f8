"""API discovery as ``kubectl api-resources`` sees it."""

from __future__ import annotations

from dataclasses import dataclass

from pytest_istiolab.kube.client import Kube


@dataclass(frozen=True)
class ApiResource:
    """One row of ``kubectl api-resources``."""

    name: str
    short_names: tuple[str, ...]
    api_version: str  # the group's preferred version
    namespaced: bool
    kind: str


def api_resources(kube: Kube, group_suffix: str = "") -> list[ApiResource]:
    """Resources of every API group whose name ends with ``group_suffix``.

    Like kubectl: each resource once, at the group's preferred version when it is served
    there, else at the next version that serves it (e.g. envoyfilters at v1alpha3).
    """
    groups = kube.raw_get("/apis").get("groups", [])
    out: list[ApiResource] = []
    for group in groups:
        if not group["name"].endswith(group_suffix):
            continue
        preferred = group["preferredVersion"]["groupVersion"]
        versions = [preferred] + [v["groupVersion"] for v in group["versions"]
                                  if v["groupVersion"] != preferred]
        seen: set[str] = set()
        for gv in versions:
            for res in kube.raw_get(f"/apis/{gv}").get("resources", []):
                if "/" in res["name"] or res["name"] in seen:
                    continue  # a subresource, or served at a preferred version already
                seen.add(res["name"])
                out.append(ApiResource(res["name"], tuple(res.get("shortNames") or ()), gv,
                                       bool(res["namespaced"]), res["kind"]))
    return out
