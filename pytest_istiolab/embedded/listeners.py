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
changed, Gateway removed). Each connection is served by :mod:`httpconn` (HTTP/1.1, shared
with ``pods/portforward``).

A gateway port whose Gateway servers are all ``protocol: HTTPS`` (443 -> 8443) is a real TLS
listener (:mod:`tls`: SNI picks the server, credentials from Secrets, SIMPLE and MUTUAL, ALPN
h2 served by :mod:`h2conn`, HTTP/1.1 otherwise). kube-proxy picks the pod once per
connection. A port with only ``protocol: TLS`` servers (passthrough) is not modelled and
stays unbound ("connection refused"); the API warns when such a Gateway is applied.
Virtual time is not turned into wall time: a ``/delay/2`` answers at once, carrying
``x-envoy-upstream-service-time: 2000``; measure latency from that header, not a stopwatch.
"""

from __future__ import annotations

import logging
import socket
import threading
from dataclasses import dataclass
from http.server import ThreadingHTTPServer
from typing import Any

from . import tls
from .httpconn import HttpHandler
from .mesh import gateways
from .mesh.config import namespace_of, proxy_view, snapshot, spec_of
from .mesh.topology import has_sidecar, is_gateway, service_pods, target_port
from .runtime import Runtime
from .store import Event
from .tlsconn import credentials_of, serve_tls
from .workloads import app_for

Obj = dict[str, Any]
log = logging.getLogger(__name__)
WATCHED = {("", "services"), ("", "pods"), ("", "endpoints"),
           ("networking.istio.io", "gateways")}


@dataclass(frozen=True)
class Binding:
    """A nodePort and the Service port behind it."""

    namespace: str
    service: str
    port: int  # the Service port
    tls: bool = False  # the gateway terminates TLS there (HTTPS servers)


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
        views = {id(pod): proxy_view(runtime, pod) if is_gateway(pod) else snap for pod in pods}
        for port in spec_of(svc).get("ports") or []:
            node_port = port.get("nodePort")
            serving = [pod for pod in pods
                       if listens(views[id(pod)], pod, target_port(port, pod))]
            if node_port and serving:
                secure = all(is_gateway(pod) and tls.is_tls_port(views[id(pod)], pod,
                                                                 target_port(port, pod))
                             for pod in serving)
                out[int(node_port)] = Binding(namespace_of(svc), svc["metadata"]["name"],
                                              int(port["port"]), secure)
    return out


def listens(snap: Any, pod: Obj, port: int) -> bool:
    """Whether something in ``pod`` accepts connections on ``port`` (see the module doc)."""
    if is_gateway(pod):
        return port == 15021 or port in gateways.listening_ports(
            snap, pod, gateways.HTTP_PROTOCOLS + gateways.TLS_TERMINATING)
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
        self.credentials = credentials_of(runtime)
        self._changed = self._pending = False  # realism: a change waits for its push

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
        self.credentials.close()

    def _on_event(self, event: Event) -> None:
        if event.rtype.key in WATCHED:
            self.reconcile()
            self._reconcile_when_pushed()

    def _reconcile_when_pushed(self) -> None:
        """Under the realism profile a gateway binds a port only once the Gateway reached it:
        look again when the slowest push of this change is due (one look pending at a time;
        a change during the wait gets one more look after it)."""
        realism = self.runtime.realism
        if realism is None:
            return
        with self._lock:
            self._changed = True
            if self._pending:
                return
            self._pending, self._changed = True, False
        self.runtime.later.call(realism.push_delay[1] + 0.05, self._pushed)

    def _pushed(self) -> None:
        with self._lock:
            self._pending = False
            again = self._changed
        if self._unsubscribe is None:
            return  # stopped
        self.reconcile()
        if again:
            self._reconcile_when_pushed()

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
            server = _TlsNodePortServer(sock, self.runtime, binding) \
                if binding.tls else _NodePortServer(sock, self.runtime, binding)
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
        super().__init__(sock.getsockname(), HttpHandler, bind_and_activate=False)
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

    def opened(self, conn: socket.socket) -> None:
        with self.conn_lock:
            self.connections.add(conn)

    def closed(self, conn: socket.socket) -> None:
        with self.conn_lock:
            self.connections.discard(conn)

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


class _TlsNodePortServer(_NodePortServer):
    """A NodePort in front of gateway HTTPS servers: TLS first (:mod:`tlsconn`)."""

    def finish_request(self, request: Any, client_address: Any) -> None:
        serve_tls(request, client_address, self.runtime, self.target(), self.server_address,
                  tracker=self)

    def shutdown_request(self, request: Any) -> None:
        """The connection is closed by :func:`tlsconn.serve_tls` (it may be wrapped by then)."""
