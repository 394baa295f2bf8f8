"""Real loopback sockets behind the cluster's NodePorts: ingress traffic is real HTTP on the wire.

For every Service of type NodePort or LoadBalancer, each ``nodePort`` whose target port
something listens on gets a listener on ``127.0.0.1:<nodePort>`` (the node's address). A
request arriving there goes, like kube-proxy would send it, to a ready pod behind the
Service, on the port's targetPort, and from there through the mesh model
(:func:`mesh.engine.ingress`): a gateway pod's Envoy, or an injected pod's sidecar, or the
application itself.

"Something listens" means: a gateway pod's Envoy has a plain-HTTP Gateway server mapped to
that port (so the ingress gateway's 8080 is refused until a Gateway exists, as on a real
cluster) or it is the status port 15021; an injected pod (its sidecar takes every port);
an application the workload models listen on that port. Listeners follow the store:
they open when that becomes true and close when it stops (Service deleted, nodePort
changed, Gateway removed). HTTP/1.1 with keep-alive, Content-Length and chunked request
bodies; no HTTP/2, no Upgrade.

Scope: TLS is not served yet (Lab 6 brings it): a port whose Gateway servers are all HTTPS
(443 -> 8443) stays unbound, so clients get "connection refused".
Virtual time is not turned into wall time: a ``/delay/2`` answers at once, carrying
``x-envoy-upstream-service-time: 2000``; measure latency from that header, not a stopwatch.
"""

from __future__ import annotations

import logging
import socket
import struct
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .mesh import gateways
from .mesh.config import namespace_of, snapshot, spec_of
from .mesh.engine import ingress
from .mesh.headers import Headers
from .mesh.model import Request, Response, reason_phrase
from .mesh.topology import has_sidecar, is_gateway, service_pods, target_port
from .runtime import Runtime
from .store import Event
from .workloads import app_for

Obj = dict[str, Any]
log = logging.getLogger(__name__)
WATCHED = {("", "services"), ("", "pods"), ("", "endpoints"),
           ("networking.istio.io", "gateways")}
HOP_BY_HOP = ("connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade")


@dataclass(frozen=True)
class Binding:
    """A nodePort and the Service port behind it."""

    namespace: str
    service: str
    port: int  # the Service port


def _service_node_ports(runtime: Runtime) -> set[int]:
    return {int(p["nodePort"]) for svc in runtime.store.by_kind("", "services")
            for p in (svc.get("spec") or {}).get("ports") or [] if p.get("nodePort")}


def desired_bindings(runtime: Runtime) -> dict[int, Binding]:
    """nodePort -> Binding for every NodePort whose target something listens on."""
    snap = snapshot(runtime)
    out: dict[int, Binding] = {}
    for svc in snap.services:
        if spec_of(svc).get("type") not in ("NodePort", "LoadBalancer"):
            continue
        pods = service_pods(snap, svc)
        for port in spec_of(svc).get("ports") or []:
            node_port = port.get("nodePort")
            if node_port and any(_listens(snap, pod, target_port(port, pod)) for pod in pods):
                out[int(node_port)] = Binding(namespace_of(svc), svc["metadata"]["name"],
                                              int(port["port"]))
    return out


def _listens(snap: Any, pod: Obj, port: int) -> bool:
    if is_gateway(pod):
        return port == 15021 or port in gateways.listening_ports(
            snap, pod, gateways.HTTP_PROTOCOLS)
    return has_sidecar(pod) or app_for(pod, port) is not None


class ListenerManager:
    """Keeps one HTTP listener per served nodePort, following the store."""

    def __init__(self, runtime: Runtime, host: str | None = None) -> None:
        self.runtime = runtime
        self.host = host or runtime.node_ip
        self._servers: dict[int, _NodePortServer] = {}
        self._lock = threading.RLock()
        self._unsubscribe: Any = None
        self.errors: dict[int, str] = {}

    @property
    def ports(self) -> dict[int, Binding]:
        with self._lock:
            return {p: s.binding for p, s in self._servers.items()}

    def start(self) -> ListenerManager:
        self._unsubscribe = self.runtime.store.subscribe(self._on_event)
        self.reconcile()
        return self

    def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        with self._lock:
            servers, self._servers = list(self._servers.values()), {}
        for server in servers:
            server.close()
        self.runtime.node_ports.close()

    def _on_event(self, event: Event) -> None:
        if event.rtype.key in WATCHED:
            self.reconcile()

    def reconcile(self) -> None:
        wanted = desired_bindings(self.runtime)
        holds = self.runtime.node_ports
        with self._lock:
            for port, server in list(self._servers.items()):
                if wanted.get(port) != server.binding:
                    del self._servers[port]
                    server.close()
                    holds.give_back(port)
            for port, binding in wanted.items():
                if port not in self._servers:
                    self._open(port, binding)
            holds.keep_only(_service_node_ports(self.runtime) | set(self._servers))

    def _open(self, port: int, binding: Binding) -> None:
        sock = self.runtime.node_ports.lend(port)
        if sock is None:
            self.errors[port] = (f"cannot listen on {self.host}:{port}: another process on this "
                                 "host holds the port")
            log.warning(self.errors[port])
            return
        try:
            server = _NodePortServer(sock, self.runtime, binding)
        except OSError as problem:
            sock.close()
            self.errors[port] = f"cannot listen on {self.host}:{port}: {problem}"
            log.warning(self.errors[port])
            return
        self.errors.pop(port, None)
        self._servers[port] = server
        server.serve_in_background()


class _NodePortServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, sock: socket.socket, runtime: Runtime, binding: Binding) -> None:
        """Serve on ``sock``, a socket already bound to the NodePort (held by the runtime)."""
        self.runtime, self.binding = runtime, binding
        self.connections: set[socket.socket] = set()
        self.conn_lock = threading.Lock()
        super().__init__(sock.getsockname(), _Handler, bind_and_activate=False)
        self.socket.close()
        self.socket = sock
        self.server_address = sock.getsockname()
        self.server_activate()
        self._thread: threading.Thread | None = None

    def serve_in_background(self) -> None:
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"nodeport-{self.server_address[1]}", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.shutdown()
        self.server_close()
        with self.conn_lock:
            for conn in list(self.connections):
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def target(self) -> tuple[Obj, int] | None:
        """A ready pod behind the binding's Service (kube-proxy's random pick) and its port."""
        snap = snapshot(self.runtime)
        svc = snap.services_by_fqdn.get(
            f"{self.binding.service}.{self.binding.namespace}.svc.cluster.local")
        if svc is None:
            return None
        port = next((p for p in spec_of(svc).get("ports") or []
                     if int(p.get("port", 0)) == self.binding.port), None)
        pods = service_pods(snap, svc)
        if port is None or not pods:
            return None
        pod = self.runtime.rng.choice(pods)
        return pod, target_port(port, pod)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 60  # idle keep-alive connections
    server: _NodePortServer

    def setup(self) -> None:
        super().setup()
        with self.server.conn_lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        with self.server.conn_lock:
            self.server.connections.discard(self.connection)
        super().finish()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        return

    def handle_one_request(self) -> None:
        try:
            self.raw_requestline = self.rfile.readline(65537)
        except OSError:
            self.close_connection = True
            return
        if not self.raw_requestline or len(self.raw_requestline) > 65536:
            self.close_connection = True
            return
        if not self.parse_request():
            return
        self._serve()

    def _serve(self) -> None:
        body = self._read_body()
        target = self.server.target()
        if target is None:
            self._abort()
            return
        pod, port = target
        headers = Headers((k, v) for k, v in self.headers.items()
                          if k.lower() != "host" and k.lower() not in HOP_BY_HOP)
        host, port_number = self.server.server_address[:2]
        authority = self.headers.get("Host") or f"{host!s}:{port_number}"
        request = Request(self.command, self.path, authority, headers, body)
        response = ingress(self.server.runtime, pod, port, request,
                           client=(self.client_address[0], self.client_address[1]))
        if response.failure is not None:
            self._abort()
            return
        self._write(response)

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _write(self, response: Response) -> None:
        status = response.status
        reason = response.reason or reason_phrase(status)
        headers = response.headers.copy()
        no_body = self.command == "HEAD" or status in (204, 304) or 100 <= status < 200
        if "content-length" not in headers and "transfer-encoding" not in headers:
            if self.command == "HEAD":
                headers.add("transfer-encoding", "chunked")
            elif not no_body:
                headers.add("content-length", str(len(response.body)))
        if self.close_connection or self.request_version == "HTTP/1.0":
            headers.set("connection", "close")
            self.close_connection = True
        head = f"HTTP/1.1 {status} {reason}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers)
        data = head.encode("latin-1") + b"\r\n" + (b"" if no_body else response.body)
        self.wfile.write(data)
        self.wfile.flush()

    def _abort(self) -> None:
        """Reset the connection: no HTTP response (nothing behind the port answers)."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
        except OSError:
            pass
