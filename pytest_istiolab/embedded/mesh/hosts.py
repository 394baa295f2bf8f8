"""Host names: Istio's short-name rules, wildcard matching, and DNS as a pod sees it.

Two different rules live here and must not be mixed up:

* Istio config (VirtualService hosts and destinations, DestinationRule hosts): a name
  without a dot is qualified in the object's namespace; a name with a dot is taken as
  written (``reviews.default`` is *not* the reviews service). ``resolve_short``.
* What a client writes (DNS, ``Host`` header): the pod's resolv.conf search path
  (``<ns>.svc.cluster.local svc.cluster.local cluster.local``, ndots 5), so ``reviews``,
  ``reviews.default``, ``reviews.default.svc`` and the FQDN all reach the service.
  ``dns_lookup`` and ``service_for_name``.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from ..runtime import CLUSTER_DOMAIN
from . import internet
from .config import Snapshot, namespace_of
from .topology import pod_ip, service_pods

Obj = dict[str, Any]


def is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def resolve_short(host: str, namespace: str) -> str:
    """Istio's ResolveShortnameToFQDN: qualify dot-less names in ``namespace``."""
    host = host.strip().lower()
    if host == "*" or is_ip(host) or "." in host:
        return host
    return f"{host}.{namespace}.svc.{CLUSTER_DOMAIN}"


def split_namespaced(host: str, default_ns: str) -> tuple[str, str]:
    """A Gateway server host ``ns/host`` (``./host``, ``*/host``) -> (namespace filter, host)."""
    if "/" in host:
        ns, _, name = host.partition("/")
        return (default_ns if ns == "." else ns), name
    return "*", host


def host_matches(pattern: str, host: str) -> bool:
    """Does config host ``pattern`` (``*``, ``*.example.com`` or exact) cover ``host``?"""
    pattern, host = pattern.lower(), host.lower()
    if pattern == "*":
        return True
    if pattern.startswith("*."):
        suffix = pattern[1:]
        if host.startswith("*."):
            return host[1:].endswith(suffix)
        return host.endswith(suffix) and len(host) > len(suffix)
    return pattern == host


def specificity(pattern: str) -> tuple[int, int]:
    """Sort key, most specific first: exact names, then longer wildcards, then ``*``."""
    if pattern == "*":
        return (2, 0)
    if pattern.startswith("*"):
        return (1, -len(pattern))
    return (0, -len(pattern))


def intersect(a: str, b: str) -> str | None:
    """The hosts two config host patterns have in common, as one pattern (or None)."""
    if host_matches(a, b):
        return b
    if host_matches(b, a):
        return a
    return None


def search_names(name: str, namespace: str) -> list[str]:
    """The names a pod's resolver tries for ``name`` (search path, ndots 5)."""
    name = name.lower()
    if name.endswith("."):
        return [name.rstrip(".")]
    searches = [f"{namespace}.svc.{CLUSTER_DOMAIN}", f"svc.{CLUSTER_DOMAIN}", CLUSTER_DOMAIN]
    expanded = [f"{name}.{s}" for s in searches]
    return expanded + [name] if name.count(".") < 5 else [name, *expanded]


def service_for_name(snap: Snapshot, name: str, namespace: str) -> Obj | None:
    """The Service a client in ``namespace`` means by ``name`` (short, partial or FQDN)."""
    for candidate in search_names(name, namespace):
        svc = snap.services_by_fqdn.get(candidate)
        if svc is not None:
            return svc
    return None


def dns_lookup(snap: Snapshot, name: str, namespace: str) -> list[str] | None:
    """Addresses a pod in ``namespace`` gets for ``name``; None for NXDOMAIN.

    Services resolve to their ClusterIP (headless ones to their ready pod IPs); public
    names only if :mod:`internet` models them. ServiceEntry hosts are not in DNS (Istio's
    DNS capture is off by default), exactly as on a real 1.26 cluster.
    """
    name = name.strip().lower()
    if is_ip(name):
        return [name]
    if name in ("localhost", "localhost."):
        return ["127.0.0.1"]
    svc = service_for_name(snap, name, namespace)
    if svc is not None:
        ip = (svc.get("spec") or {}).get("clusterIP")
        if ip and ip != "None":
            return [str(ip)]
        ips = [pod_ip(p) for p in service_pods(snap, svc)]
        return ips or None
    public = internet.lookup(name)
    return list(public.addresses) if public else None


RESERVED_TLDS = ("invalid", "test", "example", "localhost")  # RFC 2606: never in public DNS


def not_modelled_name(snap: Snapshot, name: str) -> str | None:
    """Why ``name`` fails to resolve here when a real cluster's DNS could answer it: a public
    name (dotted, not under the cluster domain or a namespace) the model does not know.
    None when the failure is what a real cluster would show too."""
    name = name.strip().lower().rstrip(".")
    if not name or is_ip(name) or "." not in name or internet.lookup(name) is not None:
        return None
    last = name.rsplit(".", 1)[1]
    in_cluster = {"svc", "local", "cluster", *RESERVED_TLDS}
    in_cluster |= {namespace_of(o) for o in (*snap.services, *snap.pods)}
    if last in in_cluster or not last.isalpha():
        return None
    known = ", ".join(sorted(internet.PUBLIC_HOSTS))
    return (f"not modelled by the embedded cluster: its DNS answers only for cluster Services "
            f"and the public hosts it models ({known})")
