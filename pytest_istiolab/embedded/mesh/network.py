"""Where a TCP connection to ``ip:port`` lands, with no proxy on the client's side.

* a pod IP: that pod. A gateway pod's Envoy listens itself; an injected pod's iptables hand
  every inbound connection to its sidecar; otherwise the application gets it directly;
* a ClusterIP: kube-proxy picks a ready endpoint at random (none: connection refused);
* a modelled public address (``internet``): that host, seen from the cluster's egress IP;
* anything else: connection refused (unreachable addresses are not modelled further).

Where a connection lands is a fact of the network now, not of anyone's configuration: under the
realism profile a proxy may still route by an older config (:mod:`.config`) whose endpoints
include a pod a rollout has since removed; a connection to that address is refused (the proxy
answers 503 ``UF`` and retries another endpoint as its retry policy allows), it never reaches
the pod that is gone. kube-proxy's own rule sync is not delayed.

An application that listens on nothing modelled on that port refuses the connection.
The Envoys that take a connection (a gateway, a sidecar's inbound side) and an
application's own outbound requests are reached through ``flow.hops``, so this module
never imports the proxies or the engine that call it.
"""

from __future__ import annotations

from ..workloads import app_for, external
from ..workloads.base import AppContext, AppRequest
from . import internet
from .config import Snapshot, snapshot
from .flow import Flow, Peer, failed
from .headers import Headers
from .model import Request, Response
from .topology import has_sidecar, is_gateway, service_endpoints

PROXY_PORTS = (15000, 15001, 15004, 15006, 15020, 15021, 15090)


def connect(flow: Flow, ip: str, port: int, request: Request, client: Peer, start: float,
            deadline: float | None) -> Response:
    snap = _live(flow)
    pod = snap.pods_by_ip.get(ip)
    if pod is not None:
        return to_pod(flow, pod, port, request, client, start, deadline)
    service = snap.services_by_ip.get(ip)
    if service is not None:
        endpoints = service_endpoints(snap, service, port)
        if not endpoints:
            return failed("connect", start, message="Could not connect to server")
        chosen = flow.rng.choice(endpoints)
        assert chosen.pod is not None
        return to_pod(flow, chosen.pod, chosen.port, request, client, start, deadline)
    public = internet.host_at(ip)
    if public is not None and port in public.ports:
        return to_public(flow, public.name, ip, port, request, client, start)
    return failed("connect", start, message="Could not connect to server")


def _live(flow: Flow) -> Snapshot:
    """The cluster as it is now (the flow's own view may be a proxy's older config)."""
    return flow.snap if flow.runtime.realism is None else snapshot(flow.runtime)


def _still_there(flow: Flow, pod: dict) -> bool:
    """Whether the pod an (older) config names still runs at its address."""
    live = _live(flow).pods_by_ip.get((pod.get("status") or {}).get("podIP") or "")
    return live is not None and live["metadata"].get("uid") == pod["metadata"].get("uid")


def to_pod(flow: Flow, pod: dict, port: int, request: Request, client: Peer, start: float,
           deadline: float | None) -> Response:
    if flow.runtime.realism is not None and not _still_there(flow, pod):
        return failed("connect", start, message="Could not connect to server")
    if is_gateway(pod):
        return flow.hops.gateway(flow, pod, port, request, client, start, deadline)
    if has_sidecar(pod) and port not in PROXY_PORTS:
        return flow.hops.inbound(flow, pod, port, request, client, start, deadline)
    if client.mtls:  # a TLS ClientHello to a plaintext server: the handshake fails
        return failed("tls", start, 0.0005, "wrong version number")
    return to_app(flow, pod, port, request, client, start)


def to_app(flow: Flow, pod: dict, port: int, request: Request, remote: Peer,
           start: float) -> Response:
    """The application listening on ``port`` handles the request; refused if none does."""
    found = app_for(pod, port)
    if found is None:
        return failed("connect", start, message="Could not connect to server")
    container, app = found
    ctx = AppContext(flow.runtime, pod, container, start, _caller(flow, pod), flow.jitter)
    app_request = AppRequest(request.method, request.path, request.authority,
                             request.headers.copy(), request.body, remote.ip, remote.port, port)
    answer = app.handle(ctx, app_request)
    body = b"" if request.method == "HEAD" else answer.body
    return Response(answer.status, answer.headers, body, start, ctx.now - start,
                    details="via_upstream")


def to_public(flow: Flow, name: str, ip: str, port: int, request: Request, client: Peer,
              start: float) -> Response:
    seen_from = Peer(internet.CLUSTER_EGRESS_IP, client.port)
    answer, took = external.handle(name, request, seen_from, start, flow.state)
    body = b"" if request.method == "HEAD" else answer.body
    return Response(answer.status, answer.headers, body, start, took, remote_ip=ip,
                    remote_port=port)


def _caller(flow: Flow, pod: dict):  # type: ignore[no-untyped-def]
    """Outbound calls of an application: through the mesh, from its pod."""
    send = flow.hops.app_send

    def call(method: str, url: str, headers: Headers, body: bytes, start: float,
             timeout: float | None) -> Response:
        return send(flow.runtime, pod, method, url, headers, body, start, timeout)

    return call
