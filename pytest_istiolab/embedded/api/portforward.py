"""``pods/portforward`` over a websocket, the way the kubelet serves it to the python client.

``GET .../pods/{pod}/portforward?ports=8080,15000`` upgrades to a websocket
(``v4.channel.k8s.io`` or ``portforward.k8s.io``). Port *i* of ``ports`` uses channel ``2i``
for data and ``2i+1`` for errors; the server first sends on each of them the 3 bytes
``[channel, port & 0xff, port >> 8]``. Bytes the client writes on a data channel are one TCP
connection to ``localhost:PORT`` inside the pod: here they are served as HTTP/1.1 by
:mod:`..httpconn` (the same handler the NodePort listeners use), and the answers go back on
the data channel. A port nothing in the pod listens on (see :func:`..listeners.listens`)
gets the kubelet's "failed to connect to localhost:PORT" on its error channel. A gateway
pod's TLS port (HTTPS Gateway servers) gets the bytes as they are, TLS and all, and
:func:`..tlsconn.serve_tls` terminates them as on the NodePort (HTTP/2 or HTTP/1.1
inside). The websocket ends when every port's connection has ended (or the client closes it).

``kubectl port-forward`` (>= 1.31) asks for the ``SPDY/3.1+portforward.k8s.io`` subprotocol
instead and names its ports inside SPDY streams: :mod:`.portforward_spdy` serves that tunnel.

Not modelled: anything else on the forwarded port (other raw TCP, cleartext HTTP/2) and plain
SPDY (kubectl < 1.31, or ``KUBECTL_PORT_FORWARD_WEBSOCKETS=false``): that gets a 400 that
says so and names the NodePort alternative (kubectl prints it after ``error upgrading
connection``), never "at least one port must be specified".
"""

from __future__ import annotations

import asyncio
import socket
import threading
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from ..httpconn import serve_connection
from ..listeners import listens
from ..mesh.config import snapshot
from ..mesh.topology import is_gateway
from ..runtime import Runtime
from ..tls import is_tls_port
from ..tlsconn import serve_tls
from .context import ApiContext
from .paths import Target
from .responses import bad_request

Obj = dict[str, Any]
PROTOCOLS = ("v4.channel.k8s.io", "portforward.k8s.io")
KUBECTL_TUNNEL = "SPDY/3.1+portforward.k8s.io"  # kubectl >= 1.31: SPDY inside a websocket
SESSION_MAX_SECONDS = 3600.0


def requested_ports(request: web.Request, pod: str = "POD") -> list[int]:
    """The ``ports`` query (repeated or comma separated), validated like kube-apiserver."""
    out: list[int] = []
    for value in request.query.getall("ports", []):
        for part in value.split(","):
            try:
                port = int(part)
            except ValueError:
                raise bad_request(f"invalid port {part!r} in ports") from None
            if not 0 < port < 65536:
                raise bad_request(f"port {port} must be between 1 and 65535")
            out.append(port)
    if not out and _is_kubectl(request):
        raise bad_request(kubectl_not_modelled(pod))
    if not out:
        raise bad_request("at least one port must be specified (query parameter ports)")
    return out


def _is_kubectl(request: web.Request) -> bool:
    """kubectl names the ports inside its SPDY streams, never in the query."""
    protocols = request.headers.get("Sec-WebSocket-Protocol", "")
    upgrade = request.headers.get("Upgrade", "").lower()
    return KUBECTL_TUNNEL in protocols or upgrade.startswith("spdy/")


def kubectl_not_modelled(pod: str) -> str:
    return (f"plain SPDY port-forwarding (kubectl < 1.31, or kubectl with "
            f"KUBECTL_PORT_FORWARD_WEBSOCKETS=false) is not modelled by the embedded cluster; "
            f"kubectl >= 1.31 tunnels it in a websocket ({KUBECTL_TUNNEL}), which it serves. "
            f"Or reach the pod through "
            f"a NodePort on 127.0.0.1 instead: kubectl expose pod {pod} --type=NodePort "
            "--port=PORT, then kubectl get svc "
            f"{pod} -o jsonpath='{{.spec.ports[0].nodePort}}' (gateways already have one); "
            "or the kubernetes Python client's portforward (v4.channel.k8s.io, ?ports=PORT)")


@dataclass
class _PodPort:
    """The HTTP endpoint a forwarded connection talks to: one port of one pod."""

    runtime: Runtime
    pod: Obj
    port: int
    server_address: tuple[str, int] = ("127.0.0.1", 0)
    conns: set[socket.socket] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.server_address = ("localhost", self.port)

    def target(self) -> tuple[Obj, int] | None:
        return self.pod, self.port

    def opened(self, conn: socket.socket) -> None:
        self.conns.add(conn)

    def closed(self, conn: socket.socket) -> None:
        self.conns.discard(conn)


def connect_error(pod: Obj, port: int) -> str:
    """The kubelet's (containerd's) words for a port nothing listens on."""
    meta = pod.get("metadata") or {}
    uid = meta.get("uid", "")
    return (f"error forwarding port {port} to pod {meta.get('name', '')}, uid {uid}: failed to "
            f"execute portforward in network namespace \"/var/run/netns/cni-{uid}\": failed to "
            f"connect to localhost:{port} inside namespace \"{uid}\", IPv4: dial tcp4 "
            f"127.0.0.1:{port}: connect: connection refused IPv6 dial tcp6 [::1]:{port}: "
            "connect: connection refused ")


async def serve(request: web.Request, ctx: ApiContext, t: Target) -> web.StreamResponse:
    pod = ctx.store.get(t.rt, t.namespace, str(t.name))
    tunnel = KUBECTL_TUNNEL in request.headers.get("Sec-WebSocket-Protocol", "")
    ports = [] if tunnel else requested_ports(request, str(t.name))
    phase = (pod.get("status") or {}).get("phase")
    if phase != "Running":
        raise bad_request(f"unable to forward port because pod is not running. Current status="
                          f"{phase or 'Unknown'}")
    if tunnel and request.headers.get("Upgrade", "").lower() == "websocket":
        return await _kubectl_tunnel(request, ctx, pod)
    if request.headers.get("Upgrade", "").lower() != "websocket":
        raise bad_request("port-forward needs a websocket upgrade (v4.channel.k8s.io); SPDY "
                          "(kubectl port-forward) is not modelled by the embedded cluster")
    ws = web.WebSocketResponse(protocols=PROTOCOLS, max_msg_size=0, autoping=True)
    await ws.prepare(request)
    ctx.websockets.add(ws)
    try:
        await ctx.until_closing(_session(ws, ctx, pod, ports), SESSION_MAX_SECONDS)
    finally:
        ctx.websockets.discard(ws)
        if not ws.closed:
            await ws.close()
    return ws


async def _kubectl_tunnel(request: web.Request, ctx: ApiContext, pod: Obj
                          ) -> web.StreamResponse:
    from . import portforward_spdy

    ws = web.WebSocketResponse(protocols=(KUBECTL_TUNNEL,), max_msg_size=0, autoping=True)
    await ws.prepare(request)
    ctx.websockets.add(ws)
    try:
        await ctx.until_closing(portforward_spdy.serve(ws, ctx, pod), SESSION_MAX_SECONDS)
    finally:
        ctx.websockets.discard(ws)
        if not ws.closed:
            await ws.close()
    return ws


async def _session(ws: web.WebSocketResponse, ctx: ApiContext, pod: Obj,
                   ports: list[int]) -> None:
    for i, port in enumerate(ports):
        for channel in (2 * i, 2 * i + 1):
            await ws.send_bytes(bytes([channel, port & 0xFF, port >> 8]))
    snap = snapshot(ctx.runtime)
    sockets: dict[int, socket.socket] = {}
    pumps: list[asyncio.Task[None]] = []
    for i, port in enumerate(ports):
        if not listens(snap, pod, port):
            await ws.send_bytes(bytes([2 * i + 1]) + connect_error(pod, port).encode())
            continue
        ours, theirs = socket.socketpair()
        ours.setblocking(False)
        sockets[2 * i] = ours
        endpoint = _PodPort(ctx.runtime, pod, port)
        if is_gateway(pod) and is_tls_port(snap, pod, port):  # raw TCP: TLS as on the NodePort
            serve: Any = serve_tls
            args: tuple[Any, ...] = (theirs, ("127.0.0.1", 0), ctx.runtime, (pod, port),
                                     endpoint.server_address, endpoint)
        else:
            serve, args = serve_connection, (theirs, ("127.0.0.1", 0), endpoint)
        threading.Thread(target=serve, args=args, name=f"portforward-{port}",
                         daemon=True).start()
        pumps.append(asyncio.ensure_future(_pump_out(ws, ctx, ours, 2 * i)))
    reader = asyncio.ensure_future(_pump_in(ws, ctx, sockets))
    try:
        if pumps:
            await asyncio.gather(*pumps)
    finally:
        reader.cancel()
        for sock in sockets.values():
            sock.close()


async def _pump_out(ws: web.WebSocketResponse, ctx: ApiContext, sock: socket.socket,
                    channel: int) -> None:
    """The pod's answers, back to the client on the data channel, until the pod side ends."""
    while True:
        try:
            data = await ctx.loop.sock_recv(sock, 65536)
        except OSError:
            return
        if not data or ws.closed:
            return
        await ws.send_bytes(bytes([channel]) + data)


async def _pump_in(ws: web.WebSocketResponse, ctx: ApiContext,
                   sockets: dict[int, socket.socket]) -> None:
    """The client's bytes, to the pod's connection; client gone: end every connection."""
    try:
        async for msg in ws:
            if msg.type != WSMsgType.BINARY or not msg.data:
                continue
            frame = bytes(msg.data)
            sock = sockets.get(frame[0])
            if sock is not None and len(frame) > 1:
                try:
                    await ctx.loop.sock_sendall(sock, frame[1:])
                except OSError:
                    sockets.pop(frame[0], None)
    finally:
        for sock in sockets.values():
            try:
                sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass
