"""Gateway routing: which Gateway servers a gateway pod listens with, and where a request goes.

* A Gateway applies to every gateway pod whose labels contain its ``selector`` (Gateways in
  any namespace; Istio's default).
* A server's ``port.number`` is matched against the Services that select the gateway pods:
  equal to a Service ``port`` -> the pod listens on that port's ``targetPort``; equal to a
  ``targetPort`` -> on that number; otherwise on the number itself. So ``bookinfo-gateway``
  (8080 on 1.26) and the lab gateways (80, Service port 80 -> 8080) share the pod's 8080
  listener (catalogue D-24); nothing listens where no server maps.
* All HTTP servers on one listener share one route table. Each contributes, for every
  VirtualService bound to its Gateway, the intersection of the server hosts with the
  VirtualService hosts as a virtual host. The request's host (port ignored) picks the most
  specific virtual host; the routes of every VirtualService in it are merged, oldest
  VirtualService first, and the first match wins (``match.port`` compares with the server's
  port number, ``match.gateways`` with the Gateway). No virtual host or no match: 404 NR.
* HTTPS servers (``protocol: HTTPS``) terminate TLS (``embedded/tls.py`` serves the
  handshake): each is its own filter chain, chosen by the ClientHello's SNI among the
  server's hosts (exact names first, then the longest wildcard, then ``*``, which also takes
  a ClientHello without SNI); its requests use only that server's routes, as Envoy gives
  each HTTPS server its own route configuration.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import hosts
from .config import Snapshot, creation_key, name_of, namespace_of, spec_of
from .matching import MatchContext, route_matches, vs_gateways
from .model import Request, RouteDecision
from .routing import NO_ROUTE, decision_for
from .topology import pod_labels, selects, service_ports, services_selecting, target_port

Obj = dict[str, Any]
HTTP_PROTOCOLS = ("HTTP", "HTTP2", "GRPC")
TLS_TERMINATING = ("HTTPS",)


@dataclass(frozen=True)
class BoundServer:
    gateway: Obj
    server: Obj

    @property
    def key(self) -> str:
        return f"{namespace_of(self.gateway)}/{name_of(self.gateway)}"

    @property
    def number(self) -> int:
        return int((self.server.get("port") or {}).get("number", 0))

    @property
    def protocol(self) -> str:
        return str((self.server.get("port") or {}).get("protocol", "HTTP")).upper()


def gateways_for(snap: Snapshot, pod: Obj) -> list[Obj]:
    labels = pod_labels(pod)
    return [g for g in snap.gateways if selects(spec_of(g).get("selector"), labels)]


def listen_port(snap: Snapshot, pod: Obj, number: int) -> int:
    """The pod port a Gateway server port number becomes (D-24)."""
    services = services_selecting(snap, pod)
    for svc in services:
        for port in service_ports(svc):
            if int(port.get("port", 0)) == number:
                return target_port(port, pod)
    return number


def servers_on(snap: Snapshot, pod: Obj, port: int) -> list[BoundServer]:
    """The Gateway servers the gateway ``pod`` serves on its ``port``."""
    out = []
    for gateway in sorted(gateways_for(snap, pod), key=creation_key):
        for server in spec_of(gateway).get("servers") or []:
            bound = BoundServer(gateway, server)
            if listen_port(snap, pod, bound.number) == port:
                out.append(bound)
    return out


def listening_ports(snap: Snapshot, pod: Obj, protocols: tuple[str, ...] | None = None) -> set[int]:
    """Pod ports the gateway's Envoy listens on (optionally only for some server protocols)."""
    return {listen_port(snap, pod, bound.number)
            for g in gateways_for(snap, pod) for s in spec_of(g).get("servers") or []
            for bound in [BoundServer(g, s)] if protocols is None or bound.protocol in protocols}


def server_hosts(bound: BoundServer) -> list[str]:
    """The server's hosts without their namespace part (``ns/host`` -> ``host``)."""
    return [hosts.split_namespaced(str(h), namespace_of(bound.gateway))[1].lower()
            for h in bound.server.get("hosts") or []]


def tls_server_for(snap: Snapshot, pod: Obj, port: int, sni: str | None) -> BoundServer | None:
    """The HTTPS server on ``port`` whose hosts match the SNI (None: no filter chain)."""
    best: tuple[tuple[int, int], BoundServer] | None = None
    for bound in servers_on(snap, pod, port):
        if bound.protocol not in TLS_TERMINATING:
            continue
        for host in server_hosts(bound):
            if host != "*" and (sni is None or not hosts.host_matches(host, sni)):
                continue
            rank = hosts.specificity(host)
            if best is None or rank < best[0]:
                best = (rank, bound)
    return best[1] if best else None


def route_gateway(snap: Snapshot, pod: Obj, port: int, request: Request) -> RouteDecision:
    """The decision of gateway ``pod`` for a request on its ``port`` (HTTP, or HTTPS once the
    TLS listener terminated it: ``request.scheme == "https"``, ``request.sni``)."""
    if request.scheme == "https":
        chosen_server = tls_server_for(snap, pod, port, request.sni)
        servers = [chosen_server] if chosen_server is not None else []
    else:
        servers = [s for s in servers_on(snap, pod, port) if s.protocol in HTTP_PROTOCOLS]
    entries = _virtual_host_entries(snap, servers)
    if not entries:
        return RouteDecision(local=NO_ROUTE)
    host = request.host
    domains = sorted({d for d, _, _ in entries if hosts.host_matches(d, host)},
                     key=hosts.specificity)
    if not domains:
        return RouteDecision(local=NO_ROUTE)
    chosen = [(vs, server) for d, vs, server in entries if d == domains[0]]
    chosen.sort(key=lambda e: creation_key(e[0]))
    for vs, server in chosen:
        ctx = MatchContext(request.path_only, request.method, request.authority,
                           request.headers, request.query, request.scheme, server.number,
                           server.key, pod_labels(pod), namespace_of(pod))
        for route in spec_of(vs).get("http") or []:
            if route_matches(route, ctx, namespace_of(vs)):
                return decision_for(vs, dict(route), server.number)
    return RouteDecision(local=NO_ROUTE)


def _virtual_host_entries(snap: Snapshot,
                          servers: list[BoundServer]) -> list[tuple[str, Obj, BoundServer]]:
    """(domain, VirtualService, server) for every VirtualService host a server exposes."""
    entries = []
    seen: set[tuple[str, str, str]] = set()
    for server in servers:
        for vs in snap.virtual_services:
            if server.key not in vs_gateways(vs):
                continue
            for domain in _shared_hosts(server, vs):
                key = (domain, f"{namespace_of(vs)}/{name_of(vs)}", server.key)
                if key not in seen:
                    seen.add(key)
                    entries.append((domain, vs, server))
    return entries


def _shared_hosts(server: BoundServer, vs: Obj) -> list[str]:
    vs_ns = namespace_of(vs)
    out = []
    for raw_server_host in server.server.get("hosts") or []:
        ns_filter, server_host = hosts.split_namespaced(str(raw_server_host),
                                                        namespace_of(server.gateway))
        if ns_filter not in ("*", vs_ns):
            continue
        for raw in spec_of(vs).get("hosts") or []:
            common = hosts.intersect(server_host.lower(), hosts.resolve_short(str(raw), vs_ns))
            if common is not None and common not in out:
                out.append(common)
    return out
