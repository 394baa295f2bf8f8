"""Traffic mirroring (Envoy's request shadowing) from a VirtualService route.

Scope and limitations
---------------------
Modelled: ``mirror`` (``host``, ``subset``, ``port``) with ``mirrorPercentage.value`` (a
double, default 100 when absent), the deprecated integer ``mirrorPercent`` (also spelled
``mirror_percent``), and the list form ``mirrors: [{destination, percentage}]``. When the
router forwards a request it also sends, at the same virtual time, a copy to each mirror
cluster that the percentage draw selects (the run's seeded generator): fire and forget, the
client only ever sees the primary response, and the copy's answer is dropped. The copy is
the request as the router forwards it, with ``-shadow`` appended to the host part of the
authority (``httpbin:8000`` -> ``httpbin-shadow:8000``) and, as Envoy's async client adds
them, ``x-envoy-internal: true`` and the proxy's address appended to ``x-forwarded-for``.
The copy goes through the mirror cluster's connection pool (an overflow drops it) and
reaches the mirror pod's sidecar over mTLS, so the mirror's app logs it and its sidecar
writes an inbound access-log line; the client's sidecar writes no line for it.
Not modelled: shadowing request bodies separately from headers, tracing spans of the copy.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import clusters, hosts, network, pool
from .config import namespace_of
from .flow import Flow, Peer
from .model import Cluster, Destination, Endpoint, Request, Response, RouteDecision
from .topology import has_sidecar, is_gateway

Obj = dict[str, Any]
Sender = Callable[[Cluster, float], Response | None]


def targets(route: Obj | None, vs_namespace: str) -> list[tuple[Destination, float]]:
    """(destination, percent) of every mirror of ``route``."""
    if not route:
        return []
    out: list[tuple[Destination, float]] = []
    if route.get("mirror"):
        percent = _percent(route)
        out.append((_destination(route["mirror"], vs_namespace), percent))
    for entry in route.get("mirrors") or []:
        dest = entry.get("destination") or {}
        if dest:
            value = (entry.get("percentage") or {}).get("value")
            out.append((_destination(dest, vs_namespace),
                        100.0 if value is None else float(value)))
    return out


def _percent(route: Obj) -> float:
    pct = route.get("mirrorPercentage")
    if pct is not None:
        return float((pct or {}).get("value") or 0.0)
    for key in ("mirrorPercent", "mirror_percent"):
        if route.get(key) is not None:
            return float(route[key])
    return 100.0


def _destination(dest: Obj, vs_namespace: str) -> Destination:
    number = (dest.get("port") or {}).get("number")
    return Destination(hosts.resolve_short(str(dest.get("host", "")), vs_namespace),
                       dest.get("subset") or None, int(number) if number else None)


def shadow_request(request: Request, proxy_ip: str) -> Request:
    """The copy Envoy sends: ``-shadow`` host suffix, internal and forwarded-for headers."""
    copy = request.copy()
    host, sep, port = copy.authority.rpartition(":")
    if sep and port.isdigit():
        copy.authority = f"{host}-shadow:{port}"
    else:
        copy.authority = f"{copy.authority}-shadow"
    forwarded = copy.headers.get("x-forwarded-for")
    copy.headers.set("x-forwarded-for", f"{forwarded}, {proxy_ip}" if forwarded else proxy_ip)
    copy.headers.set("x-envoy-internal", "true")
    return copy


def fire(flow: Flow, proxy: Obj, proxy_ip: str, decision: RouteDecision,
         prepare: Callable[[Endpoint], Request], at: float,
         send: Sender | None = None) -> list[Response]:
    """Send the mirror copies for ``decision``; ``prepare(endpoint)`` is the request as the
    router would forward it to that endpoint. The answers are returned only for tests
    (callers must ignore them); ``send`` overrides how a copy is delivered."""
    vs = decision.virtual_service
    out = []
    for dest, percent in targets(decision.http_route, namespace_of(vs) if vs else "default"):
        if percent <= 0 or (percent < 100 and flow.rng.random() * 100 >= percent):
            continue
        cluster = clusters.resolve(flow.snap, namespace_of(proxy), dest, decision.match_port)
        if not cluster.exists or not cluster.endpoints:
            continue
        answer = (send or _default_sender(flow, proxy, proxy_ip, prepare))(cluster, at)
        if answer is not None:
            out.append(answer)
    return out


def _default_sender(flow: Flow, proxy: Obj, proxy_ip: str,
                    prepare: Callable[[Endpoint], Request]) -> Sender:
    def send(cluster: Cluster, at: float) -> Response | None:
        lane = pool.lane(flow.runtime, proxy, cluster)
        endpoints = lane.healthy(cluster.endpoints, at)
        if not endpoints:
            return None
        endpoint = flow.rng.choice(endpoints)
        request = shadow_request(prepare(endpoint), proxy_ip)
        ticket = lane.admit(at, flow.jitter(*pool.CONNECT_MS))
        if ticket is None:
            return None
        mtls = endpoint.pod is not None and (has_sidecar(endpoint.pod) or is_gateway(endpoint.pod))
        sni = f"outbound_.{cluster.port}_.{cluster.subset or ''}_.{cluster.host}"
        client = Peer(proxy_ip, flow.state.ephemeral_port(), proxy, mtls, sni)
        if endpoint.pod is not None:
            answer = network.to_pod(flow, endpoint.pod, endpoint.port, request, client,
                                    ticket.start, None)
        else:
            answer = network.to_public(flow, endpoint.external_host or "", endpoint.ip,
                                       endpoint.port, request, client, ticket.start)
        lane.finish(ticket, endpoint, answer, len(cluster.endpoints))
        return answer

    return send
