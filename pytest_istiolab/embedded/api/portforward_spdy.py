"""``kubectl port-forward`` (>= 1.31): SPDY/3.1 port-forward streams inside a websocket.

kubectl asks for the ``SPDY/3.1+portforward.k8s.io`` websocket subprotocol and writes SPDY
frames (:mod:`.spdy`) in binary messages. For each local connection it opens two streams
with headers ``streamType`` (``error`` | ``data``), ``port`` and ``requestID``, and waits for
each SYN_REPLY. The data stream's bytes are one TCP connection to ``localhost:PORT`` in the
pod, served like :mod:`.portforward`'s (HTTP/1.1, or TLS on a gateway's HTTPS port); when the
pod side ends, both streams get FIN. A port nothing listens on gets the kubelet's error text
on the error stream. PING is answered; SETTINGS, WINDOW_UPDATE and HEADERS are read and
ignored; RST_STREAM ends that connection; the websocket ends the session.
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
from ..tls import is_tls_port
from ..tlsconn import serve_tls
from . import spdy
from .context import ApiContext

Obj = dict[str, Any]


@dataclass
class _Forward:
    """One local connection of kubectl: its error stream, its data stream, the pod socket."""

    port: int
    error_id: int = 0
    data_id: int = 0
    sock: socket.socket | None = None
    pump: asyncio.Task[None] | None = None


@dataclass
class Tunnel:
    ws: web.WebSocketResponse
    ctx: ApiContext
    pod: Obj
    codec: spdy.HeaderCodec = field(default_factory=spdy.HeaderCodec)
    forwards: dict[str, _Forward] = field(default_factory=dict)  # by requestID
    by_stream: dict[int, _Forward] = field(default_factory=dict)

    async def run(self) -> None:
        buffer = bytearray()
        try:
            async for msg in self.ws:
                if msg.type != WSMsgType.BINARY:
                    continue
                buffer += bytes(msg.data)
                for frame in spdy.split(buffer):
                    await self._frame(frame)
        finally:
            for fwd in self.forwards.values():
                self._close(fwd)

    async def _send(self, raw: bytes) -> None:
        if self.ws.closed:
            return
        try:
            await self.ws.send_bytes(raw)
        except ConnectionResetError:  # kubectl went away mid-write (aiohttp's closing transport)
            pass

    async def _frame(self, frame: spdy.Frame) -> None:
        if not frame.control:
            await self._data(frame)
        elif frame.kind == spdy.SYN_STREAM:
            await self._open(frame)
        elif frame.kind == spdy.PING:
            await self._send(spdy.control(spdy.PING, 0, frame.payload))
        elif frame.kind == spdy.RST_STREAM:
            fwd = self.by_stream.get(frame.stream_id)
            if fwd is not None:
                self._close(fwd)

    async def _open(self, frame: spdy.Frame) -> None:
        headers = self.codec.decode(frame.payload)
        await self._send(spdy.syn_reply(self.codec, frame.stream_id))
        port = int(headers.get("port") or 0)
        fwd = self.forwards.setdefault(headers.get("requestid", ""), _Forward(port))
        self.by_stream[frame.stream_id] = fwd
        if headers.get("streamtype") == "error":
            fwd.error_id = frame.stream_id
            return
        fwd.data_id = frame.stream_id
        await self._connect(fwd)

    async def _connect(self, fwd: _Forward) -> None:
        from .portforward import _PodPort, connect_error

        snap = snapshot(self.ctx.runtime)
        if not listens(snap, self.pod, fwd.port):
            if fwd.error_id:
                await self._send(spdy.data(fwd.error_id, connect_error(self.pod, fwd.port)
                                           .encode(), fin=True))
            await self._send(spdy.data(fwd.data_id, b"", fin=True))
            return
        ours, theirs = socket.socketpair()
        ours.setblocking(False)
        fwd.sock = ours
        endpoint = _PodPort(self.ctx.runtime, self.pod, fwd.port)
        if is_gateway(self.pod) and is_tls_port(snap, self.pod, fwd.port):
            serve: Any = serve_tls
            args: tuple[Any, ...] = (theirs, ("127.0.0.1", 0), self.ctx.runtime,
                                     (self.pod, fwd.port), endpoint.server_address, endpoint)
        else:
            serve, args = serve_connection, (theirs, ("127.0.0.1", 0), endpoint)
        threading.Thread(target=serve, args=args, name=f"portforward-spdy-{fwd.port}",
                         daemon=True).start()
        fwd.pump = asyncio.ensure_future(self._pump(fwd, ours))

    async def _pump(self, fwd: _Forward, sock: socket.socket) -> None:
        """The pod's bytes back on the data stream; at its end, FIN on both streams."""
        while True:
            try:
                chunk = await self.ctx.loop.sock_recv(sock, spdy.MAX_DATA)
            except OSError:
                chunk = b""
            if not chunk:
                break
            await self._send(spdy.data(fwd.data_id, chunk))
        await self._send(spdy.data(fwd.data_id, b"", fin=True))
        if fwd.error_id:
            await self._send(spdy.data(fwd.error_id, b"", fin=True))

    async def _data(self, frame: spdy.Frame) -> None:
        fwd = self.by_stream.get(frame.stream_id)
        if fwd is None or fwd.sock is None or frame.stream_id != fwd.data_id:
            return
        try:
            if frame.payload:
                await self.ctx.loop.sock_sendall(fwd.sock, frame.payload)
            if frame.flags & spdy.FLAG_FIN:
                fwd.sock.shutdown(socket.SHUT_WR)
        except OSError:
            self._close(fwd)

    def _close(self, fwd: _Forward) -> None:
        if fwd.sock is not None:
            fwd.sock.close()
            fwd.sock = None


async def serve(ws: web.WebSocketResponse, ctx: ApiContext, pod: Obj) -> None:
    await Tunnel(ws, ctx, pod).run()
