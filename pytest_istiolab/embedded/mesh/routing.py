"""Sidecar (``mesh``) routing: which virtual host and route an outbound request takes.

A sidecar has one HTTP route table per port that some Service or ServiceEntry declares.
Its virtual hosts are the Services on that port (reachable by ``name`` from the same
namespace, ``name.ns``, ``name.ns.svc``, the FQDN and the ClusterIP), ServiceEntry hosts,
and VirtualService hosts bound to ``mesh``. A VirtualService replaces the default route of
its host; its ``http`` routes are tried in order and the first match wins; no match is a
404 with flag NR. A host in no virtual host goes to ``allow_any`` (PassthroughCluster) or,
with ``outboundTrafficPolicy: REGISTRY_ONLY``, to ``block_all`` (502, empty body).
Several VirtualServices for one host: the oldest wins (Istio merges only at gateways).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from . import hosts
from .config import Snapshot, creation_key, namespace_of, service_fqdn, spec_of
from .matching import MatchContext, route_matches, vs_gateways
from .model import Destination, LocalReply, Request, RouteDecision
from .topology import is_http_port, service_port, service_ports

Obj = dict[str, Any]

NO_ROUTE = LocalReply(404, "", "NR", "route_not_found")
BLOCK_ALL = LocalReply(502, "", "-", "direct_response")


@dataclass
class VirtualHost:
    fqdn: str
    virtual_service: Obj | None = None
    service: Obj | None = None
    service_entry: Obj | None = None
    entry_host: str | None = None  # the ServiceEntry host pattern that matched


# ------------------------------------------------------------------------ listeners
def http_listener_ports(snap: Snapshot) -> set[int]:
    """Ports on which a sidecar has an outbound HTTP listener (``0.0.0.0_<port>``)."""
    ports = {int(p["port"]) for s in snap.services for p in service_ports(s)
             if p.get("port") and is_http_port(p)}
    for se in snap.service_entries:
        for p in spec_of(se).get("ports") or []:
            if str(p.get("protocol", "")).upper() in ("HTTP", "HTTP2", "GRPC", ""):
                ports.add(int(p["number"]))
    return ports


# ----------------------------------------------------------------------- mesh routing
def route_outbound(snap: Snapshot, client_ns: str, port: int, request: Request,
                   source_labels: dict[str, str] | None = None) -> RouteDecision:
    """The decision of a sidecar in ``client_ns`` for a request sent to ``<address>:port``."""
    vhost = mesh_virtual_host(snap, client_ns, request, port)
    if vhost is None:
        if snap.mesh.outbound_policy == "REGISTRY_ONLY":
            return RouteDecision(route_name="block_all", local=BLOCK_ALL)
        return RouteDecision(route_name="allow_any", passthrough=True)
    if vhost.virtual_service is None:
        host = vhost.entry_host or vhost.fqdn
        return RouteDecision(route_name="default", destinations=[Destination(host, None, port)],
                             match_port=port)
    ctx = MatchContext(request.path_only, request.method, request.authority, request.headers,
                       request.query, request.scheme, port, "mesh", source_labels or {},
                       client_ns)
    return decide(vhost.virtual_service, ctx)


def mesh_virtual_host(snap: Snapshot, client_ns: str, request: Request,
                      port: int) -> VirtualHost | None:
    host, authority_port = request.host, request.authority_port
    if authority_port is not None and authority_port != port:
        return None  # "name:other-port" is not a domain of this port's route table
    known = _service_for_host(snap, client_ns, host)
    if known is None and hosts.is_ip(host):
        return None  # a pod or outside address: no virtual host, only the catch-all
    fqdn = service_fqdn(known) if known is not None else host
    service = known if known is not None and service_port(known, port) is not None else None
    entry, entry_host = _service_entry_for(snap, fqdn, port)
    # a VirtualService for a registered host applies on that host's ports only
    registered_elsewhere = (known is not None or _service_entry_for(snap, fqdn, None)[0]
                            is not None) and service is None and entry is None
    vs = None if registered_elsewhere else _mesh_virtual_service(snap, fqdn)
    if vs is not None:
        return VirtualHost(fqdn, vs, service, entry, entry_host)
    if service is not None:
        return VirtualHost(fqdn, None, service)
    if entry is not None:
        return VirtualHost(fqdn, None, None, entry, entry_host)
    return None


def _service_for_host(snap: Snapshot, client_ns: str, host: str) -> Obj | None:
    if hosts.is_ip(host):
        return snap.services_by_ip.get(host)
    return hosts.service_for_name(snap, host, client_ns)


def _service_entry_for(snap: Snapshot, fqdn: str,
                       port: int | None) -> tuple[Obj | None, str | None]:
    """The most specific ServiceEntry host covering ``fqdn`` (on ``port``, or any port)."""
    found: list[tuple[tuple[int, int], tuple[str, str, str], Obj, str]] = []
    for se in snap.service_entries:
        spec = spec_of(se)
        numbers = [int(p.get("number", 0)) for p in spec.get("ports") or []]
        if port is not None and port not in numbers:
            continue
        for pattern in spec.get("hosts") or []:
            pattern = str(pattern).lower()
            if hosts.host_matches(pattern, fqdn):
                found.append((hosts.specificity(pattern), creation_key(se), se, pattern))
    if not found:
        return None, None
    found.sort(key=lambda f: (f[0], f[1]))
    return found[0][2], found[0][3]


def _mesh_virtual_service(snap: Snapshot, fqdn: str) -> Obj | None:
    found = []
    for vs in snap.virtual_services:
        if "mesh" not in vs_gateways(vs):
            continue
        for raw in spec_of(vs).get("hosts") or []:
            pattern = hosts.resolve_short(str(raw), namespace_of(vs))
            if pattern != "*" and hosts.host_matches(pattern, fqdn):
                found.append((hosts.specificity(pattern), creation_key(vs), vs))
    if not found:
        return None
    found.sort(key=lambda f: (f[0], f[1]))
    return found[0][2]


# ----------------------------------------------------------------------- VS routes
def decide(vs: Obj, ctx: MatchContext) -> RouteDecision:
    """The first ``http`` route of ``vs`` matching ``ctx``, as a decision (404 NR if none)."""
    route = first_matching_route(vs, ctx)
    if route is None:
        return RouteDecision(local=NO_ROUTE, virtual_service=vs, match_port=ctx.port)
    return decision_for(vs, route, ctx.port)


def first_matching_route(vs: Obj, ctx: MatchContext) -> Obj | None:
    ns = namespace_of(vs)
    for route in spec_of(vs).get("http") or []:
        if route_matches(route, ctx, ns):
            return dict(route)
    return None


def decision_for(vs: Obj, route: Obj, port: int | None) -> RouteDecision:
    decision = RouteDecision(route_name=str(route.get("name") or "-"), http_route=route,
                             virtual_service=vs, match_port=port)
    if route.get("directResponse"):
        direct = route["directResponse"]
        body = str((direct.get("body") or {}).get("string") or "")
        decision.local = LocalReply(int(direct.get("status", 200)), body, "-", "direct_response")
    elif route.get("redirect"):
        decision.local = _redirect_reply(route["redirect"])
    else:
        decision.destinations = destinations_of(route, namespace_of(vs))
    return decision


def destinations_of(route: Obj, vs_namespace: str) -> list[Destination]:
    entries = [r for r in route.get("route") or [] if r.get("destination")]
    explicit = any("weight" in r for r in entries)
    out = []
    for entry in entries:
        dest = entry["destination"]
        weight = int(entry.get("weight", 0)) if explicit else (100 if len(entries) == 1 else 1)
        number = (dest.get("port") or {}).get("number")
        out.append(Destination(hosts.resolve_short(str(dest.get("host", "")), vs_namespace),
                               dest.get("subset") or None, int(number) if number else None,
                               weight))
    return out


def _redirect_reply(redirect: Obj) -> LocalReply:
    """The Location is completed against the request by the proxy (proxy.local_reply)."""
    return LocalReply(int(redirect.get("redirectCode") or 301), "", "-", "direct_response",
                      dict(redirect))


def pick_destination(destinations: list[Destination], rng: random.Random) -> Destination:
    """Weighted random choice, as Envoy's weighted_clusters (zero weights never chosen)."""
    live = [d for d in destinations if d.weight > 0] or destinations[:1]
    total = sum(d.weight for d in live)
    if len(live) == 1 or total <= 0:
        return live[0]
    point = rng.random() * total
    for dest in live:
        point -= dest.weight
        if point < 0:
            return dest
    return live[-1]
