"""API discovery as ``kubectl api-resources`` sees it."""

from __future__ import annotations

from dataclasses import dataclass

from .kube import Kube


@dataclass(frozen=True)
class ApiResource:
    """One row of ``kubectl api-resources``."""

    name: str
    short_names: tuple[str, ...]
    api_version: str  # the group's preferred version
    namespaced: bool
    kind: str


def api_resources(kube: Kube, group_suffix: str = "") -> list[ApiResource]:
    """Resources of every API group whose name ends with ``group_suffix`` (preferred versions)."""
    groups = kube.raw_get("/apis").get("groups", [])
    out: list[ApiResource] = []
    for group in groups:
        if not group["name"].endswith(group_suffix):
            continue
        gv = group["preferredVersion"]["groupVersion"]
        for res in kube.raw_get(f"/apis/{gv}").get("resources", []):
            if "/" in res["name"]:
                continue  # subresource
            out.append(ApiResource(res["name"], tuple(res.get("shortNames") or ()), gv,
                                   bool(res["namespaced"]), res["kind"]))
    return out
