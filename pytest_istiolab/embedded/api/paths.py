"""URL layout of the Kubernetes REST API, parsed into a :class:`Target`.

```
/api/{v}/namespaces/{ns}/{plural}[/{name}[/{sub}]]
/api/{v}/{plural}[/{name}[/{sub}]]                 cluster-scoped, or all namespaces
/apis/{g}/{v}/namespaces/{ns}/{plural}[/{name}[/{sub}]]
/apis/{g}/{v}/{plural}[/{name}[/{sub}]]
```
``/api/v1/namespaces/{name}/status`` and ``/finalize`` are subresources of the namespace.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..resources import ResourceType
from ..store import Store, StoreError
from .responses import not_found_path

NAMESPACE_SUBRESOURCES = ("status", "finalize")


@dataclass(frozen=True)
class Target:
    rt: ResourceType
    version: str
    namespace: str | None  # None: cluster-scoped, or a list across all namespaces
    name: str | None
    sub: str | None

    @property
    def api_version(self) -> str:
        return self.rt.api_version(self.version)

    def present(self, obj: dict) -> dict:
        """``obj`` as the requested version shows it (a CRD serves several versions)."""
        if self.version != self.rt.preferred_version:
            obj["apiVersion"] = self.api_version
        return obj


def split_group_version(core: bool, segments: list[str]) -> tuple[str, str, list[str]] | None:
    """``(group, version, rest)`` from the segments after ``/api`` or ``/apis``."""
    if core:
        return ("", segments[0], segments[1:]) if segments else None
    return (segments[0], segments[1], segments[2:]) if len(segments) >= 2 else None


def parse_target(store: Store, group: str, version: str, rest: list[str]) -> Target:
    ns, plural, name, sub = _layout(rest)
    rt = store.find_type(group, version, plural)
    if rt is None:
        raise not_found_path()
    if ns is not None and not rt.namespaced:
        raise not_found_path()
    if sub is not None and sub not in rt.subresources:
        raise not_found_path()
    if ns is None and name is not None and rt.namespaced:
        raise not_found_path()
    return Target(rt, version, ns, name, sub)


def _layout(rest: list[str]) -> tuple[str | None, str, str | None, str | None]:
    n = len(rest)
    if any(not part for part in rest) or n == 0 or n > 5:
        raise not_found_path()
    if rest[0] == "namespaces" and n >= 3 and not (n == 3 and rest[2] in NAMESPACE_SUBRESOURCES):
        if n == 3:
            return rest[1], rest[2], None, None
        return rest[1], rest[2], rest[3], rest[4] if n == 5 else None
    if n > 3:
        raise not_found_path()
    return None, rest[0], rest[1] if n >= 2 else None, rest[2] if n == 3 else None


def ensure_name(target: Target) -> str:
    if not target.name:
        raise StoreError(405, "MethodNotAllowed",
                         "the server does not allow this method on the requested resource", {})
    return target.name
