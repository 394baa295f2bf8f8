"""Envoy as one proxy hop: a sidecar's outbound side, a sidecar's inbound side, a gateway.

Every hop runs the same pipeline, the place later behaviour slots into::

    accept (request id, XFF, XFCC, tracing)  ->  route (a RouteDecision)
      ->  HTTP filters (``FILTERS[kind]``)  ->  router  ->  finish (headers, DC, access log)

A filter is ``f(hop, decision, request, start, deadline, next)`` and returns a Response;
it may answer itself (fault abort, RBAC deny, JWT 401), delay (fault delay: call
``next(request, start + delay)``) or pass on. Outbound and gateway hops run the fault filter
(:mod:`.faults`). The router is where a route's timeout and retries (:mod:`.resilience`:
one ``_attempt`` per try), the route's mirrors (:mod:`.mirror`) and the cluster's circuit
breaker and outlier detection (:mod:`.pool`: every try goes through the sidecar's connection
pool) belong. ``deadline`` is the virtual time at which the downstream gives up; a hop still
busy then logs ``0 DC``.

PeerAuthentication (:mod:`.authn`) decides whether an inbound side takes a connection at all
and whether an outbound side opens mTLS; inbound and gateway hops run ``jwt_authn``
(:mod:`.jwtauthn`) and RBAC (:mod:`.authz`) first. Not modelled yet: TLS origination,
TCP routing, Sidecar resources.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import (
    accesslog,
    authn,
    authz,
    clusters,
    faults,
    flags,
    gateways,
    jwtauthn,
    mirror,
    network,
    pool,
    resilience,
    routing,
    telemetry,
    tracing,
)
from .config import namespace_of
from .flow import Flow, Next, Peer, failed, http_date, millis
from .headers import Headers
from .model import (
    Cluster,
    Endpoint,
    LocalReply,
    Request,
    Response,
    RouteDecision,
    envoy_reason,
)
from .topology import has_sidecar, is_gateway, pod_ip, pod_labels, pod_name, spiffe_id

Obj = dict[str, Any]
HttpFilter = Callable[["Hop", RouteDecision, Request, float, "float | None", Next], Response]
SECURITY: list[HttpFilter] = [jwtauthn.jwt_filter, authz.rbac_filter]
FILTERS: dict[str, list[HttpFilter]] = {"outbound": [faults.fault_filter], "inbound": SECURITY,
                                        "gateway": [*SECURITY, faults.fault_filter]}

CONNECT_FAILURE = LocalReply(
    503, "upstream connect error or disconnect/reset before headers. reset reason: remote "
    "connection failure, transport failure reason: delayed connect error: Connection refused",
    "UF", "upstream_reset_before_response_started{remote_connection_failure|"
    "delayed_connect_error:_Connection_refused}")
NO_HEALTHY_UPSTREAM = LocalReply(503, "no healthy upstream", "UH", "no_healthy_upstream")
NO_CLUSTER = LocalReply(503, "", "NC", "cluster_not_found")
PEER_METADATA = ("x-envoy-peer-metadata", "x-envoy-peer-metadata-id")
DECORATOR = "x-envoy-decorator-operation"


@dataclass
class Hop:
    """One Envoy handling one request."""

    flow: Flow
    proxy: Obj  # the pod whose Envoy this is
    kind: str  # outbound | inbound | gateway
    downstream: Peer
    local: tuple[str, int]  # the address the downstream connected to
    record: accesslog.AccessRecord = field(init=False)
    trace: tracing.Active | None = field(default=None, init=False)  # this hop's span
    decision: RouteDecision | None = field(default=None, init=False)
    request: Request | None = field(default=None, init=False)  # as the hop received it

    @property
    def ip(self) -> str:
        return pod_ip(self.proxy)

    @property
    def namespace(self) -> str:
        return namespace_of(self.proxy)

    # ---------------------------------------------------------------- accept
    def accept(self, request: Request) -> Request:
        req = request.copy()
        req.metadata = {}  # filter state is one Envoy's own
        h = req.headers
        if self.kind == "gateway":
            forwarded = h.get("x-forwarded-for")
            h.set("x-forwarded-for", f"{forwarded}, {self.downstream.ip}" if forwarded
                  else self.downstream.ip)
            h.remove("x-forwarded-client-cert")
            if _is_internal(self.downstream.ip):
                h.set("x-envoy-internal", "true")
            h.set("x-forwarded-proto", req.scheme)
        else:
            h.setdefault("x-forwarded-proto", req.scheme)
        if self.kind == "inbound":
            for name in PEER_METADATA:
                h.remove(name)
            if self.downstream.mtls and self.downstream.pod is not None:
                h.set("x-forwarded-client-cert", self._xfcc())
            if DECORATOR in h and decorates(self):  # Ingress: the caller's operation wins
                req.metadata["decorator_operation"] = h.get(DECORATOR) or ""
                h.remove(DECORATOR)
        h.setdefault("x-request-id", self.flow.state.request_id())
        self.trace = tracing.start(self, h)
        return req

    def _xfcc(self) -> str:
        trust = self.flow.snap.mesh.trust_domain
        client = spiffe_id(self.downstream.pod or {}, trust)
        digest = _digest(client)
        return (f"By={spiffe_id(self.proxy, trust)};Hash={digest};Subject=\"\";"
                f"URI={client}")

    # ------------------------------------------------------------------- run
    def run(self, decision: RouteDecision, request: Request, start: float,
            deadline: float | None) -> Response:
        r = self.record = accesslog.AccessRecord(start)
        self.decision, self.request = decision, request
        h = request.headers
        r.method, r.path, r.authority = request.method, request.path, request.authority
        r.user_agent, r.request_id = h.get("user-agent"), h.get("x-request-id")
        r.forwarded_for, r.route_name = h.get("x-forwarded-for"), decision.route_name
        r.bytes_received = len(request.body)
        r.downstream_local = f"{self.local[0]}:{self.local[1]}"
        r.downstream_remote = f"{self.downstream.ip}:{self.downstream.port}"
        r.server_name = self.downstream.sni if self.downstream.mtls else None
        at = start + self.flow.jitter(0.05, 0.3)
        if decision.local is not None:
            response = self.local_reply(decision.local, request, at)
        else:
            response = _chain(self, decision, request, at, deadline)
        return self.finish(response, request, start, deadline)

    def finish(self, response: Response, request: Request, start: float,
               deadline: float | None) -> Response:
        r = self.record
        end = response.end + (0.0 if response.failure else self.flow.jitter(0.02, 0.2))
        if deadline is not None and (end > deadline or response.failure is not None):
            # the downstream closed the stream before the response was complete
            r.status, r.flags = 0, flags.merge(r.flags, "DC")
            r.details = "downstream_remote_disconnect"
            r.bytes_sent, r.duration_ms = 0, millis(deadline - start)
            r.upstream_service_time = None
            self._log(deadline)
            return failed("timeout", start, deadline - start)
        headers = response.headers.lowered()
        headers.remove("connection")
        if "content-length" in headers:
            headers.remove("transfer-encoding")
        headers.set("date", headers.get("date") or http_date(end))
        headers.set("server", server_name(self))
        if decorates(self):
            decorate_response(self, headers, request)
        r.status, r.flags, r.details = response.status, response.response_flags, response.details
        r.bytes_sent, r.duration_ms = len(response.body), millis(end - start)
        self._log(end)
        return Response(response.status, headers, response.body, start, end - start,
                        response.response_flags, response.details, response.upstream_cluster,
                        response.upstream_host, reason=envoy_reason(response.status))

    def _log(self, when: float) -> None:
        accesslog.write(self.flow.runtime, self.flow.snap.mesh, self.proxy, self.record, when)
        telemetry.observe(self, when)
        if self.request is not None:
            tracing.finish(self, self.request, when)

    def local_reply(self, reply: LocalReply, request: Request, at: float) -> Response:
        headers = Headers()
        if reply.redirect is not None:
            headers.set("location", _redirect_location(reply.redirect, request))
        body = reply.body.encode()
        if body:
            headers.set("content-length", str(len(body)))
            headers.set("content-type", "text/plain")
        elif request.method != "HEAD":
            headers.set("content-length", "0")
        took = self.flow.jitter(0.01, 0.1)
        return Response(reply.status, headers, b"" if request.method == "HEAD" else body, at,
                        took, reply.flags, reply.details)

    def upstream_peer(self, mtls: bool, sni: str) -> Peer:
        return Peer(self.ip, self.flow.state.ephemeral_port(), self.proxy, mtls, sni)


# ------------------------------------------------------------------ entry points
def outbound(flow: Flow, pod: Obj, dst_ip: str, port: int, request: Request, start: float,
             deadline: float | None) -> Response:
    """The sidecar of ``pod`` intercepting a connection its application made to dst:port."""
    me = Peer(pod_ip(pod), flow.state.ephemeral_port(), pod)
    if port not in routing.http_listener_ports(flow.snap):
        return _tcp_outbound(flow, pod, me, dst_ip, port, request, start, deadline)
    hop = Hop(flow, pod, "outbound", me, (dst_ip, port))
    req = hop.accept(request)
    decision = routing.route_outbound(flow.snap, hop.namespace, port, req, pod_labels(pod))
    return hop.run(decision, req, start, deadline)


def inbound(flow: Flow, pod: Obj, port: int, request: Request, client: Peer, start: float,
            deadline: float | None) -> Response:
    """The sidecar of ``pod`` receiving a connection for its application's ``port``."""
    if not authn.accepts(flow.snap, pod, port, client.mtls):  # no filter chain matches
        return failed("reset", start, 0.0005, "Recv failure: Connection reset by peer")
    hop = Hop(flow, pod, "inbound", client, (pod_ip(pod), port))
    req = hop.accept(request)
    return hop.run(RouteDecision(route_name="default"), req, start, deadline)


def gateway(flow: Flow, pod: Obj, port: int, request: Request, client: Peer, start: float,
            deadline: float | None) -> Response:
    """A gateway pod's Envoy receiving a connection on ``port`` (a pod port, e.g. 8080)."""
    if port == 15021:
        return _health(request, start)
    if port not in gateways.listening_ports(flow.snap, pod):
        return failed("connect", start, message="Could not connect to server")
    hop = Hop(flow, pod, "gateway", client, (pod_ip(pod), port))
    req = hop.accept(request)
    decision = gateways.route_gateway(flow.snap, pod, port, req)
    return hop.run(decision, req, start, deadline)


# ----------------------------------------------------------------------- routers
def _chain(hop: Hop, decision: RouteDecision, request: Request, at: float,
           deadline: float | None) -> Response:
    filters = FILTERS[hop.kind]
    terminal = _app_router if hop.kind == "inbound" else _cluster_router

    def step(index: int) -> Next:
        def call(req: Request, t: float) -> Response:
            if index == len(filters):
                return terminal(hop, decision, req, t, deadline)
            return filters[index](hop, decision, req, t, deadline, step(index + 1))
        return call

    return step(0)(request, at)


def _cluster_router(hop: Hop, decision: RouteDecision, request: Request, at: float,
                    deadline: float | None) -> Response:
    """Outbound and gateway router: destination -> cluster -> endpoint -> upstream."""
    flow, r = hop.flow, hop.record
    if decision.passthrough:
        ip, port = hop.local
        r.upstream_cluster, r.upstream_host = "PassthroughCluster", f"{ip}:{port}"
        client = hop.upstream_peer(False, "-")
        r.upstream_local = f"{client.ip}:{client.port}"
        upstream = network.connect(flow, ip, port, _upstream_request(hop, decision, request, None),
                                   client, at, deadline)
        return _upstream_answer(hop, upstream, at, request)
    dest = routing.pick_destination(decision.destinations, flow.rng)
    cluster = clusters.resolve(flow.snap, hop.namespace, dest, decision.match_port)
    if not cluster.exists:
        return hop.local_reply(NO_CLUSTER, request, at)
    r.upstream_cluster = cluster.name
    lane = pool.lane(flow.runtime, hop.proxy, cluster)
    healthy = lane.healthy(cluster.endpoints, at)
    if not healthy:
        return hop.local_reply(NO_HEALTHY_UPSTREAM, request, at)
    mirror.fire(flow, hop.proxy, hop.ip, decision,
                lambda ep: _upstream_request(hop, decision, request, ep), at)
    tried: list[Endpoint] = []

    def attempt(attempt_try: resilience.Try) -> Response:
        return _attempt(hop, decision, cluster, request, attempt_try, tried, lane, healthy)

    answer = resilience.forward(hop, decision.http_route, request, at, deadline, attempt,
                                counters=lane.counters)
    answer.upstream_cluster = cluster.name
    _apply_header_ops(answer.headers, ((decision.http_route or {}).get("headers") or {})
                      .get("response") or {})
    return answer


def _attempt(hop: Hop, decision: RouteDecision, cluster: Cluster, request: Request,
             attempt: resilience.Try, tried: list[Endpoint], lane: pool.Lane,
             healthy: list[Endpoint]) -> Response:
    """One try of the router: an endpoint (another one than before, if any), the connection
    pool (503 UO when it overflows), one upstream call."""
    flow, r, at = hop.flow, hop.record, attempt.start
    endpoint = resilience.pick_endpoint(healthy, tried, flow.rng)
    ticket = lane.admit(at, flow.jitter(*pool.CONNECT_MS))
    if ticket is None:
        overflow = hop.local_reply(pool.OVERFLOW, request, at)
        overflow.headers.set(*pool.OVERLOADED_HEADER)
        return overflow
    upstream_request = _upstream_request(hop, decision, request, endpoint)
    upstream_request.headers.set("x-envoy-attempt-count", str(attempt.number))
    if attempt.expected_timeout_ms is not None:
        upstream_request.headers.set("x-envoy-expected-rq-timeout-ms",
                                     str(attempt.expected_timeout_ms))
    mtls = authn.client_tls(flow.snap, cluster, endpoint)
    sni = f"outbound_.{cluster.port}_.{cluster.subset or ''}_.{cluster.host}"
    client = hop.upstream_peer(mtls, sni)
    r.upstream_host, r.upstream_local = f"{endpoint.ip}:{endpoint.port}", \
        f"{client.ip}:{client.port}"
    if endpoint.pod is not None:
        upstream = network.to_pod(flow, endpoint.pod, endpoint.port, upstream_request, client,
                                  ticket.start, attempt.until)
    else:
        upstream = network.to_public(flow, endpoint.external_host or "", endpoint.ip,
                                     endpoint.port, upstream_request, client, ticket.start)
    lane.finish(ticket, endpoint, upstream, len(cluster.endpoints))
    return _upstream_answer(hop, upstream, at, request)


def _app_router(hop: Hop, decision: RouteDecision, request: Request, at: float,
                deadline: float | None) -> Response:
    """Inbound router: the ``inbound|<port>||`` cluster is the application on ``port``."""
    port, r = hop.local[1], hop.record
    local = Peer("127.0.0.6", hop.flow.state.ephemeral_port())
    r.upstream_cluster, r.upstream_host = f"inbound|{port}||", f"{hop.ip}:{port}"
    r.upstream_local = f"{local.ip}:{local.port}"
    upstream = network.to_app(hop.flow, hop.proxy, port, request, local, at)
    return _upstream_answer(hop, upstream, at, request)


def _upstream_answer(hop: Hop, upstream: Response, at: float, request: Request) -> Response:
    if upstream.failure is not None:
        if upstream.failure.kind == "timeout":
            return upstream  # the downstream went away first; finish() logs DC
        reply = hop.local_reply(authn.FAILURES.get(upstream.failure.kind, CONNECT_FAILURE),
                                request, upstream.end)
        reply.start, reply.duration = at, upstream.end - at + reply.duration
        return reply
    headers = upstream.headers.copy()
    took = millis(upstream.duration)
    headers.set("x-envoy-upstream-service-time", str(took))
    hop.record.upstream_service_time = str(took)
    return Response(upstream.status, headers, upstream.body, at, upstream.end - at,
                    "-", "via_upstream", hop.record.upstream_cluster or "-",
                    hop.record.upstream_host or "-")


def _upstream_request(hop: Hop, decision: RouteDecision, request: Request,
                      endpoint: Endpoint | None) -> Request:
    """The request as the router sends it upstream (``endpoint`` None: original destination)."""
    req = request.copy()
    if hop.kind == "gateway" and req.scheme == "https":  # TLS ended at the gateway
        req.scheme, req.sni = "http", None
    route = decision.http_route or {}
    rewrite = route.get("rewrite") or {}
    if rewrite.get("uri") is not None:
        req.headers.setdefault("x-envoy-original-path", req.path)
        req.path = _rewrite_path(req, route, str(rewrite["uri"]), decision)
    if rewrite.get("authority"):
        req.authority = str(rewrite["authority"])
    _apply_header_ops(req.headers, (route.get("headers") or {}).get("request") or {})
    req.headers.set("x-envoy-attempt-count", "1")
    if not decision.passthrough and decorates(hop):  # Egress: the route's decorator goes up
        req.headers.set(DECORATOR, tracing.operation(hop, decision, request))
    if endpoint is None or endpoint.pod is None or not (has_sidecar(endpoint.pod) or
                                                        is_gateway(endpoint.pod)):
        req = _with_metadata(hop, req)
    return req


def server_name(hop: Hop) -> str:
    """The ``server`` header each HCM overwrites (pilot ``util.GetProxyHeadersFromProxyConfig``
    @1.26): ``istio-envoy`` on sidecar inbound and gateway listeners; the sidecar outbound HCM
    leaves ``server_name`` unset, so Envoy's default ``envoy`` (kept by Istio for backwards
    compatibility). ``defaultConfig.proxyHeaders.server`` is not modelled."""
    return "envoy" if hop.kind == "outbound" else "istio-envoy"


def decorates(hop: Hop) -> bool:
    """Whether the HCM has tracing configured, so Envoy applies route decorators: a Telemetry
    or default tracing provider for this proxy, else the legacy ``enableTracing`` (default
    true), as pilot's ``configureTracingFromTelemetry`` decides."""
    if tracing.tracer(hop.flow.snap, hop.proxy, hop.kind != "inbound") is not None:
        return True
    return hop.flow.snap.mesh.raw.get("enableTracing", True) is not False


def decorate_response(hop: Hop, headers: Headers, request: Request) -> None:
    """Envoy's decorator header on the way back: an Ingress (sidecar inbound) HCM tells the
    client its route's operation unless the request named one; an Egress HCM (sidecar
    outbound, gateway) uses and removes it."""
    if hop.kind != "inbound":
        headers.remove(DECORATOR)
        return
    operation = tracing.operation(hop, hop.decision, request)
    if not request.metadata.get("decorator_operation") and operation != "ingress":
        headers.set(DECORATOR, operation)


def _apply_header_ops(headers: Headers, ops: Obj) -> None:
    """A VirtualService ``headers.request``/``headers.response`` block: set, add, remove."""
    for name, value in (ops.get("set") or {}).items():
        headers.set(name, str(value))
    for name, value in (ops.get("add") or {}).items():
        headers.add(name, str(value))
    for name in ops.get("remove") or []:
        headers.remove(name)


def _rewrite_path(req: Request, route: Obj, uri: str, decision: RouteDecision) -> str:
    path, _, query = req.path.partition("?")
    prefix = next((str((m.get("uri") or {}).get("prefix")) for m in route.get("match") or []
                   if (m.get("uri") or {}).get("prefix") and path.startswith(
                       str(m["uri"]["prefix"]))), None)
    new = uri + path[len(prefix):] if prefix is not None else uri
    return new + (f"?{query}" if query else "")


def _with_metadata(hop: Hop, request: Request) -> Request:
    """Istio's metadata-exchange headers, seen by upstreams that have no sidecar to strip them."""
    req = request.copy()
    role = "router" if hop.kind == "gateway" else "sidecar"
    ns = hop.namespace
    req.headers.set("x-envoy-peer-metadata", base64.b64encode(
        f"NAME={pod_name(hop.proxy)};NAMESPACE={ns};CLUSTER_ID=Kubernetes".encode()).decode())
    req.headers.set("x-envoy-peer-metadata-id",
                    f"{role}~{hop.ip}~{pod_name(hop.proxy)}.{ns}~{ns}.svc.cluster.local")
    return req


def _tcp_outbound(flow: Flow, pod: Obj, me: Peer, dst_ip: str, port: int, request: Request,
                  start: float, deadline: float | None) -> Response:
    """No HTTP listener on ``port``: plain TCP to PassthroughCluster or BlackHoleCluster."""
    record = accesslog.AccessRecord(start, protocol=None, downstream_local=f"{dst_ip}:{port}",
                                    downstream_remote=f"{me.ip}:{me.port}")
    if flow.snap.mesh.outbound_policy == "REGISTRY_ONLY":
        record.flags, record.upstream_cluster = "UH", "BlackHoleCluster"
        accesslog.write(flow.runtime, flow.snap.mesh, pod, record, start)
        return failed("reset", start, 0.0005, "Recv failure: Connection reset by peer")
    client = Peer(me.ip, flow.state.ephemeral_port(), pod)
    response = network.connect(flow, dst_ip, port, request, client, start, deadline)
    record.upstream_cluster, record.upstream_host = "PassthroughCluster", f"{dst_ip}:{port}"
    record.upstream_local = f"{client.ip}:{client.port}"
    record.bytes_received, record.bytes_sent = wire_size(request), len(response.body)
    record.duration_ms = millis(response.duration)
    accesslog.write(flow.runtime, flow.snap.mesh, pod, record, response.end)
    return response


def _health(request: Request, start: float) -> Response:
    if request.path_only == "/healthz/ready":
        return Response(200, Headers([("date", http_date(start)), ("server", "envoy"),
                                      ("content-length", "0")]), b"", start, 0.0002)
    return Response(404, Headers([("content-length", "0")]), b"", start, 0.0002)


def _redirect_location(redirect: Obj, request: Request) -> str:
    scheme = redirect.get("scheme") or request.scheme
    authority = redirect.get("authority") or request.authority
    return f"{scheme}://{authority}{redirect.get('uri') or request.path}"


def _is_internal(ip: str) -> bool:
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return address.is_private or address.is_loopback


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def wire_size(request: Request) -> int:
    head = f"{request.method} {request.path} HTTP/1.1\r\nHost: {request.authority}\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in request.headers) + "\r\n"
    return len(head.encode()) + len(request.body)
