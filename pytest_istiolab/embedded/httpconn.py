"""One HTTP/1.1 connection arriving at a pod's port, answered by the mesh model.

Shared by the NodePort listeners (:mod:`listeners`: kube-proxy sends the connection to a
pod behind the Service) and by ``pods/portforward`` (:mod:`api.portforward`: the kubelet
connects to ``localhost:PORT`` inside the pod). Either way the bytes are parsed as HTTP/1.1
requests (keep-alive, Content-Length and chunked request bodies; no HTTP/2, no Upgrade) and
each request goes through :func:`mesh.engine.ingress` to the pod and port the
:class:`Endpoint` names: a gateway pod's Envoy, an injected pod's sidecar, or the
application itself. When nothing answers (no target, or the mesh gives no HTTP response)
the connection is reset without a response.
"""

from __future__ import annotations

import socket
import struct
from http.server import BaseHTTPRequestHandler
from typing import Any, Protocol

from .mesh.engine import ingress
from .mesh.headers import Headers
from .mesh.model import Request, Response, reason_phrase
from .runtime import Runtime

Obj = dict[str, Any]
HOP_BY_HOP = ("connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade")


class Endpoint(Protocol):
    """Where a connection's requests go (the handler's ``server``)."""

    runtime: Runtime
    server_address: Any  # (host, port) the client connected to: the default authority

    def target(self) -> tuple[Obj, int] | None:
        """The pod and port each request goes to (None: nothing there)."""

    def opened(self, conn: socket.socket) -> None:
        """A connection started (tracked so that closing can end it)."""

    def closed(self, conn: socket.socket) -> None:
        """A connection ended."""


def serve_connection(conn: socket.socket, client_address: tuple[str, int],
                     endpoint: Endpoint) -> None:
    """Answer HTTP requests on ``conn`` until the client or the handler ends it (blocking)."""
    try:
        HttpHandler(conn, client_address, endpoint)  # type: ignore[arg-type]
    except OSError:
        pass
    finally:
        try:
            conn.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        conn.close()


class HttpHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 on one connection; ``server`` is an :class:`Endpoint`."""

    protocol_version = "HTTP/1.1"
    timeout = 60  # idle keep-alive connections
    scheme = "http"  # "https" for a handler inside TLS (``listeners``)
    server: Endpoint  # type: ignore[assignment]

    def setup(self) -> None:
        super().setup()
        self.server.opened(self.connection)

    def finish(self) -> None:
        self.server.closed(self.connection)
        try:
            super().finish()
        except OSError:
            pass

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
        request = Request(self.command, self.path, authority, headers, body, self.scheme,
                          self.request_sni())
        response = ingress(self.server.runtime, pod, port, request,
                           client=(self.client_address[0], self.client_address[1]))
        if response.failure is not None:
            self._abort()
            return
        self._write(response)

    def request_sni(self) -> str | None:
        """The TLS server name of the connection (None for plain HTTP)."""
        return None

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
