"""One HTTP/2 connection (ALPN ``h2`` after a TLS handshake), answered by the mesh model.

The server side of the ``h2`` package: each stream's request (``:method``, ``:path``,
``:authority``, headers, body) goes through :func:`mesh.engine.ingress` to the connection's
pod and port, like :mod:`httpconn` does for HTTP/1.1; the response goes back on the stream
with lower-case header names (HTTP/2 has no others) and without the connection-specific
headers HTTP/2 forbids. A request the mesh gives no HTTP response to gets its stream reset
(``RST_STREAM``), the HTTP/2 counterpart of the reset connection of :mod:`httpconn`.
Streams are answered one after the other, in the order they end (enough for curl, httpx
and the labs); flow control is honoured both ways.
"""

from __future__ import annotations

import socket
from typing import Any

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions

from .httpconn import HOP_BY_HOP
from .mesh.engine import ingress
from .mesh.headers import Headers
from .mesh.model import Request, Response

Obj = dict[str, Any]
READ_SIZE = 65536
IDLE_TIMEOUT = 60.0
FORBIDDEN = set(HOP_BY_HOP) | {"te", "host"}


class _Stream:
    def __init__(self, headers: list[tuple[str, str]]) -> None:
        self.headers = headers
        self.body = bytearray()


def serve_h2(conn: socket.socket, client: tuple[str, int], runtime: Any, pod: Obj, port: int,
             sni: str | None) -> None:
    """Serve HTTP/2 on ``conn`` (a TLS socket) until the client goes away (blocking)."""
    h2c = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False,
                                                               header_encoding="utf-8"))
    h2c.initiate_connection()
    conn.settimeout(IDLE_TIMEOUT)
    streams: dict[int, _Stream] = {}
    try:
        conn.sendall(h2c.data_to_send())
        while True:
            data = conn.recv(READ_SIZE)
            if not data:
                return
            try:
                events = h2c.receive_data(data)
            except h2.exceptions.ProtocolError:
                conn.sendall(h2c.data_to_send())
                return
            for event in events:
                if isinstance(event, h2.events.RequestReceived):
                    streams[event.stream_id] = _Stream(
                        [(_text(k), _text(v)) for k, v in event.headers or []])
                    if event.stream_ended is not None:
                        _answer(h2c, conn, streams.pop(event.stream_id), event.stream_id,
                                client, runtime, pod, port, sni)
                elif isinstance(event, h2.events.DataReceived):
                    stream = streams.get(event.stream_id)
                    if stream is not None:
                        stream.body += event.data
                    h2c.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                elif isinstance(event, h2.events.StreamEnded):
                    stream = streams.pop(event.stream_id, None)
                    if stream is not None:
                        _answer(h2c, conn, stream, event.stream_id, client, runtime, pod, port,
                                sni)
                elif isinstance(event, h2.events.StreamReset):
                    streams.pop(event.stream_id, None)
                elif isinstance(event, h2.events.ConnectionTerminated):
                    conn.sendall(h2c.data_to_send())
                    return
            conn.sendall(h2c.data_to_send())
    except OSError:
        return


def _text(value: str | bytes) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _answer(h2c: h2.connection.H2Connection, conn: socket.socket, stream: _Stream,
            stream_id: int, client: tuple[str, int], runtime: Any, pod: Obj, port: int,
            sni: str | None) -> None:
    pseudo = {k: v for k, v in stream.headers if k.startswith(":")}
    headers = Headers((k, v) for k, v in stream.headers
                      if not k.startswith(":") and k.lower() not in FORBIDDEN)
    authority = pseudo.get(":authority") or dict(stream.headers).get("host") or ""
    request = Request(pseudo.get(":method", "GET"), pseudo.get(":path", "/"), authority,
                      headers, bytes(stream.body), "https", sni)
    response = ingress(runtime, pod, port, request, client=client)
    if response.failure is not None:
        h2c.reset_stream(stream_id, error_code=h2.errors.ErrorCodes.CONNECT_ERROR)
        return
    _send(h2c, conn, stream_id, request, response)


def _send(h2c: h2.connection.H2Connection, conn: socket.socket, stream_id: int,
          request: Request, response: Response) -> None:
    no_body = request.method == "HEAD" or response.status in (204, 304)
    body = b"" if no_body else response.body
    out = [(":status", str(response.status))]
    out += [(k.lower(), v) for k, v in response.headers if k.lower() not in FORBIDDEN]
    if not any(k == "content-length" for k, _ in out) and not no_body:
        out.append(("content-length", str(len(body))))
    h2c.send_headers(stream_id, out, end_stream=not body)
    view = memoryview(body)
    while view:
        window = min(h2c.local_flow_control_window(stream_id), h2c.max_outbound_frame_size)
        if window <= 0:
            conn.sendall(h2c.data_to_send())
            data = conn.recv(READ_SIZE)
            if not data:
                return
            h2c.receive_data(data)  # WINDOW_UPDATE (other events of this rare case dropped)
            continue
        chunk, view = view[:window], view[window:]
        h2c.send_data(stream_id, bytes(chunk), end_stream=not view)
    conn.sendall(h2c.data_to_send())
