"""SPDY/3.1 framing, as much of it as ``kubectl port-forward`` uses (a server's view).

Frames (draft-mbelshe-httpbis-spdy-00 §2.2): an 8-byte header, control frames with version 3
and a type (SYN_STREAM 1, SYN_REPLY 2, RST_STREAM 3, SETTINGS 4, PING 6, GOAWAY 7, HEADERS 8,
WINDOW_UPDATE 9), data frames with a 31-bit stream id; flag FIN is 1. Header blocks are a
count and length-prefixed name/value pairs, zlib-compressed with the protocol's dictionary,
one compression context per direction. Not modelled: flow control (WINDOW_UPDATE is read and
ignored, as moby/spdystream does), server push, priorities.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS, PING, GOAWAY, HEADERS = 1, 2, 3, 4, 6, 7, 8
FLAG_FIN = 0x01
MAX_DATA = 32 * 1024
_WORDS = (
    "options head post put delete trace accept accept-charset accept-encoding accept-language "
    "accept-ranges age allow authorization cache-control connection content-base "
    "content-encoding content-language content-length content-location content-md5 "
    "content-range content-type date etag expect expires from host if-match "
    "if-modified-since if-none-match if-range if-unmodified-since last-modified location "
    "max-forwards pragma proxy-authenticate proxy-authorization range referer retry-after "
    "server te trailer transfer-encoding upgrade user-agent vary via warning "
    "www-authenticate method get status").split() + [
    "200 OK", "version", "HTTP/1.1", "url", "public", "set-cookie", "keep-alive", "origin"]
_TAIL = (
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504"
    "505203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request401 "
    "Unauthorized403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented503 "
    "Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, "
    "Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,image/jpg,image/gif,"
    "application/xml,application/xhtml+xml,text/plain,text/javascript,publicprivatemax-age="
    "gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.")
DICTIONARY = b"".join(len(w).to_bytes(4, "big") + w.encode() for w in _WORDS) + _TAIL.encode()
DICTIONARY_ADLER32 = 0xE3C6A7C2  # what both ends check before they inflate a header block


@dataclass(frozen=True)
class Frame:
    control: bool
    kind: int  # control frame type; 0 for data
    flags: int
    stream_id: int
    payload: bytes  # after the stream id for SYN_*/RST/HEADERS/data; whole for the rest


def split(buffer: bytearray) -> list[Frame]:
    """Take every complete frame off the front of ``buffer``."""
    frames: list[Frame] = []
    while len(buffer) >= 8:
        length = int.from_bytes(buffer[5:8], "big")
        if len(buffer) < 8 + length:
            break
        first, flags = int.from_bytes(buffer[0:4], "big"), buffer[4]
        body = bytes(buffer[8:8 + length])
        del buffer[:8 + length]
        if not first & 0x80000000:
            frames.append(Frame(False, 0, flags, first & 0x7FFFFFFF, body))
            continue
        kind = first & 0xFFFF
        if kind in (SYN_STREAM, SYN_REPLY, RST_STREAM, HEADERS) and len(body) >= 4:
            stream = int.from_bytes(body[0:4], "big") & 0x7FFFFFFF
            skip = 10 if kind == SYN_STREAM else 4
            frames.append(Frame(True, kind, flags, stream, body[skip:]))
        else:
            frames.append(Frame(True, kind, flags, 0, body))
    return frames


class HeaderCodec:
    """The two zlib contexts of one connection (ours compresses, the peer's inflates)."""

    def __init__(self) -> None:
        self._inflate = zlib.decompressobj(zdict=DICTIONARY)
        self._deflate = zlib.compressobj(zdict=DICTIONARY)

    def decode(self, block: bytes) -> dict[str, str]:
        raw = self._inflate.decompress(block)
        count, at, out = int.from_bytes(raw[0:4], "big"), 4, {}
        for _ in range(count):
            n = int.from_bytes(raw[at:at + 4], "big")
            name = raw[at + 4:at + 4 + n].decode("latin-1").lower()
            at += 4 + n
            v = int.from_bytes(raw[at:at + 4], "big")
            out[name] = raw[at + 4:at + 4 + v].decode("latin-1")
            at += 4 + v
        return out

    def encode(self, headers: dict[str, str]) -> bytes:
        raw = len(headers).to_bytes(4, "big")
        for name, value in headers.items():
            for part in (name.lower().encode(), value.encode()):
                raw += len(part).to_bytes(4, "big") + part
        return self._deflate.compress(raw) + self._deflate.flush(zlib.Z_SYNC_FLUSH)


def control(kind: int, flags: int, body: bytes) -> bytes:
    return ((0x8003 << 16) | kind).to_bytes(4, "big") + bytes([flags]) + \
        len(body).to_bytes(3, "big") + body


def syn_reply(codec: HeaderCodec, stream_id: int) -> bytes:
    return control(SYN_REPLY, 0, stream_id.to_bytes(4, "big") + codec.encode({}))


def data(stream_id: int, payload: bytes, fin: bool = False) -> bytes:
    return stream_id.to_bytes(4, "big") + bytes([FLAG_FIN if fin else 0]) + \
        len(payload).to_bytes(3, "big") + payload
