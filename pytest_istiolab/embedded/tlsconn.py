"""One TCP connection to a gateway's TLS port: handshake, then HTTP/2 or HTTP/1.1 inside.

Shared by the NodePort listeners (:mod:`listeners`) and ``pods/portforward``
(:mod:`api.portforward`, which carries raw TCP, so a port-forward to the gateway's 8443
meets the same TLS as the NodePort). The ClientHello is peeked and matched by :mod:`tls`;
no match: reset; a failed handshake: closed after the alert the handshake sent.
"""

from __future__ import annotations

import socket
import ssl
from typing import Any

from . import tls
from .h2conn import serve_h2
from .httpconn import HttpHandler
from .mesh.state import extension

Obj = dict[str, Any]
ALERT_LINGER = 2.0  # seconds a rejected client may still send before the connection closes


def credentials_of(runtime: Any) -> tls.Credentials:
    """The runtime's one credential cache (SDS state), shared by all TLS entry points."""
    return extension(runtime, "tls-credentials", lambda: tls.Credentials(runtime))


class _Pinned:
    """The endpoint of one TLS connection: the pod and port it reached, and its SNI."""

    def __init__(self, runtime: Any, server_address: Any, target: tuple[Obj, int],
                 sni: str | None, tracker: Any) -> None:
        self.runtime, self.server_address = runtime, server_address
        self._target, self.sni, self._tracker = target, sni, tracker

    def target(self) -> tuple[Obj, int] | None:
        return self._target

    def opened(self, conn: socket.socket) -> None:
        if self._tracker is not None:
            self._tracker.opened(conn)

    def closed(self, conn: socket.socket) -> None:
        if self._tracker is not None:
            self._tracker.closed(conn)


class _TlsHandler(HttpHandler):
    """HTTP/1.1 inside TLS: requests carry scheme ``https`` and the connection's SNI."""

    scheme = "https"

    def request_sni(self) -> str | None:
        return getattr(self.server, "sni", None)


def _close_after_alert(sock: socket.socket) -> None:
    """Close after a failed handshake without a reset: the alert the handshake sent (TLS 1.3
    ``certificate_required`` comes after the server's Finished, while the client already
    sends its request) must reach the client, so send FIN and read what is still coming."""
    try:
        sock.shutdown(socket.SHUT_WR)
        sock.settimeout(ALERT_LINGER)
        while sock.recv(65536):
            pass
    except (OSError, ValueError):
        pass
    finally:
        sock.close()


def serve_tls(conn: socket.socket, client_address: tuple[str, int], runtime: Any,
              target: tuple[Obj, int] | None, server_address: Any,
              tracker: Any = None) -> None:
    """Terminate TLS on ``conn`` for gateway pod/port ``target`` and serve it (blocking)."""
    record = tls.peek_client_hello(conn)
    chosen = None
    if target is not None and record is not None:
        chosen = tls.choose(runtime, credentials_of(runtime), target[0], target[1], record)
    if target is None or chosen is None:
        tls.reset(conn)
        return
    secure = chosen.context.wrap_socket(conn, server_side=True, do_handshake_on_connect=False)
    try:
        secure.settimeout(tls.CLIENT_HELLO_TIMEOUT)
        secure.do_handshake()
        secure.settimeout(None)
    except (ssl.SSLError, OSError):
        _close_after_alert(secure)
        return
    endpoint = _Pinned(runtime, server_address, target, chosen.sni, tracker)
    endpoint.opened(secure)
    try:
        if secure.selected_alpn_protocol() == "h2":
            serve_h2(secure, client_address, runtime, target[0], target[1], chosen.sni)
        else:
            _TlsHandler(secure, client_address, endpoint)  # type: ignore[arg-type]
    except OSError:
        pass
    finally:
        endpoint.closed(secure)
        try:
            secure.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        secure.close()
