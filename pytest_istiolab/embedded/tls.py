"""TLS termination at a gateway's HTTPS servers: real handshakes on the NodePort listeners.

What a connection to a gateway port whose Gateway servers are ``protocol: HTTPS`` meets,
as Envoy (Istio 1.26) behaves:

* The ClientHello is **peeked** (Envoy's TLS inspector) and its SNI picks the server
  (:func:`mesh.gateways.tls_server_for`). No server matches (wrong or missing SNI), or the
  server's credential cannot be loaded: no filter chain, the connection is closed with the
  ClientHello unread, so the kernel resets it (curl exit 35 ``Recv failure: Connection
  reset by peer``; ``openssl s_client`` ``write:errno=104``).
* The credential is the Secret ``credentialName`` in the gateway pod's namespace, read as
  istiod does (``pilot/pkg/credentials/kube/secrets.go``): ``cert``/``key`` first, then
  ``tls.crt``/``tls.key``, whatever the Secret's type. For ``MUTUAL`` the CA comes from a
  Secret ``<name>-cacert`` if there is one, else from the same Secret; keys ``cacert`` then
  ``ca.crt``. No CA for MUTUAL: no filter chain, like a missing Secret.
* SDS: every handshake reads the Secret's current version, so a replaced Secret serves the
  new certificate on the next handshake with nothing restarted (istiod pushes within about
  a second on a real mesh; tests poll).
* ``MUTUAL``: a client certificate is required and verified against the CA; without one
  the TLS 1.3 server sends the ``certificate_required`` alert after its Finished (curl exit
  56, ``tlsv13 alert certificate required``), TLS 1.2 a ``handshake_failure``.
* ALPN ``h2`` and ``http/1.1`` are offered, as Istio's gateway HTTPS listeners do; an h2
  client gets HTTP/2 (:mod:`h2conn`), others HTTP/1.1 (:mod:`httpconn`).

Not modelled (a connection to such a server is reset and the log says why):
``PASSTHROUGH``/``ISTIO_MUTUAL``/``OPTIONAL_MUTUAL`` modes and a server without
``credentialName``; a port with only ``protocol: TLS`` servers is not listened on. Nor:
``tls.serverCertificate`` file paths, ``subjectAltNames``/``verifyCertificateSpki`` checks
of client certificates, CRLs, OCSP staples, cipher and version settings.

Key material never leaves the process: a credential is loaded from a private temporary
file (0600, in a 0700 directory) that is deleted right after loading.

:data:`FAULTS` holds test-only breakages (``EmbeddedCluster.break_tls``) that the
self-checks use to prove the lab tests go red: ``ignore-sni`` (the first HTTPS server
serves every name), ``stale-certificate`` (a replaced Secret is never read again),
``optional-client-certificate`` (MUTUAL accepts a client without a certificate).
"""

from __future__ import annotations

import base64
import logging
import os
import shutil
import socket
import ssl
import struct
import tempfile
import threading
from dataclasses import dataclass
from typing import Any

from .mesh import gateways
from .mesh.config import namespace_of, snapshot

Obj = dict[str, Any]
log = logging.getLogger(__name__)
ALPN = ["h2", "http/1.1"]
CLIENT_HELLO_TIMEOUT = 10.0  # seconds to wait for a ClientHello before dropping the connection
MAX_RECORD = 5 + 16384 + 2048
MODES = ("SIMPLE", "MUTUAL")
KNOWN_FAULTS = ("ignore-sni", "stale-certificate", "optional-client-certificate")
FAULTS: set[str] = set()


@dataclass(frozen=True)
class Chosen:
    """What a connection's ClientHello selected: a server and the context for it."""

    server: gateways.BoundServer
    context: ssl.SSLContext
    sni: str | None


# ------------------------------------------------------------------ ClientHello
def peek_client_hello(conn: socket.socket, timeout: float = CLIENT_HELLO_TIMEOUT) -> bytes | None:
    """The first TLS record, read without consuming it (None: not TLS, or nothing came)."""
    conn.settimeout(timeout)
    try:
        head = conn.recv(5, socket.MSG_PEEK | socket.MSG_WAITALL)
        if len(head) < 5 or head[0] != 0x16:
            return None
        length = struct.unpack(">H", head[3:5])[0]
        record = conn.recv(min(5 + length, MAX_RECORD), socket.MSG_PEEK | socket.MSG_WAITALL)
    except OSError:
        return None
    finally:
        conn.settimeout(None)
    return record


def sni_of(record: bytes) -> str | None:
    """The ``server_name`` of a ClientHello record (None when it sends none)."""
    try:
        if record[5] != 0x01:  # handshake type client_hello
            return None
        at = 5 + 4 + 2 + 32
        at += 1 + record[at]                                   # session id
        at += 2 + struct.unpack(">H", record[at:at + 2])[0]    # cipher suites
        at += 1 + record[at]                                   # compression methods
        end = min(len(record), at + 2 + struct.unpack(">H", record[at:at + 2])[0])
        at += 2
        while at + 4 <= end:
            kind, size = struct.unpack(">HH", record[at:at + 4])
            body = record[at + 4:at + 4 + size]
            if kind == 0:  # server_name: list length, name type 0, name length, name
                if len(body) >= 5 and body[2] == 0:
                    name_len = struct.unpack(">H", body[3:5])[0]
                    return body[5:5 + name_len].decode("ascii", "replace").lower()
                return None
            at += 4 + size
    except (IndexError, struct.error):
        return None
    return None


def reset(conn: socket.socket) -> None:
    """Close with RST (what Envoy's close after a peeked, unread ClientHello looks like)."""
    try:
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    try:
        conn.close()
    except OSError:
        pass


# ------------------------------------------------------------------ credentials
def _secret(runtime: Any, namespace: str, name: str) -> Obj | None:
    store = runtime.store
    return store.try_get(store.resource_type("", "secrets"), namespace, name)


def _data(secret: Obj) -> dict[str, bytes]:
    out = {}
    for key, value in (secret.get("data") or {}).items():
        try:
            out[key] = base64.b64decode(value or "")
        except ValueError:
            out[key] = b""
    for key, value in (secret.get("stringData") or {}).items():
        out[key] = str(value).encode()
    return out


def _version(secret: Obj | None) -> str:
    meta = (secret or {}).get("metadata") or {}
    return f"{meta.get('uid', '')}/{meta.get('resourceVersion', '')}"


def server_pair(data: dict[str, bytes]) -> tuple[bytes, bytes] | None:
    """``cert``+``key`` first, then ``tls.crt``+``tls.key`` (istiod's ``ExtractCertInfo``)."""
    for cert, key in (("cert", "key"), ("tls.crt", "tls.key")):
        if cert in data and key in data:
            return (data[cert], data[key]) if data[cert] and data[key] else None
    return None


def root_of(data: dict[str, bytes]) -> bytes | None:
    """``cacert`` first, then ``ca.crt`` (istiod's ``ExtractRoot``)."""
    for key in ("cacert", "ca.crt"):
        if data.get(key):
            return data[key]
    return None


class Credentials:
    """SSL contexts for gateway servers, rebuilt when their Secrets change (SDS)."""

    def __init__(self, runtime: Any) -> None:
        self.runtime = runtime
        self._lock = threading.Lock()
        self._cache: dict[tuple[str, ...], ssl.SSLContext | None] = {}
        self._first: dict[tuple[str, str, str], tuple[str, ...]] = {}
        self.problems: dict[str, str] = {}  # "ns/name" -> why the credential is unusable
        self._dir: str | None = None

    def close(self) -> None:
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def context(self, namespace: str, name: str, mode: str) -> ssl.SSLContext | None:
        """The server context for credential ``namespace/name`` in ``mode`` (None: unusable)."""
        main = _secret(self.runtime, namespace, name)
        ca_secret = _secret(self.runtime, namespace, f"{name}-cacert") if mode == "MUTUAL" \
            else None
        key: tuple[str, ...] = (namespace, name, mode, _version(main), _version(ca_secret))
        with self._lock:
            if "stale-certificate" in FAULTS:
                key = self._first.setdefault((namespace, name, mode), key)
            if key not in self._cache:
                self._cache[key] = self._build(namespace, name, mode, main, ca_secret)
            return self._cache[key]

    def _build(self, namespace: str, name: str, mode: str, main: Obj | None,
               ca_secret: Obj | None) -> ssl.SSLContext | None:
        ref = f"{namespace}/{name}"
        if main is None:
            return self._unusable(ref, f"secret {ref} not found")
        data = _data(main)
        pair = server_pair(data)
        if pair is None:
            return self._unusable(ref, "found secret, but didn't have expected keys (cert and "
                                  "key) or (tls.crt and tls.key), or they were empty; found: "
                                  + ", ".join(sorted(data)))
        ca = None
        if mode == "MUTUAL":
            ca = root_of(_data(ca_secret)) if ca_secret is not None else root_of(data)
            if ca is None:
                return self._unusable(ref, "found secret, but didn't have expected keys cacert "
                                      "or ca.crt; found: " + ", ".join(sorted(data)))
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.set_alpn_protocols(ALPN)
        try:
            self._load(ctx, *pair)
            if ca is not None:
                ctx.load_verify_locations(cadata=ca.decode("ascii", "replace"))
                ctx.verify_mode = ssl.CERT_OPTIONAL if "optional-client-certificate" in FAULTS \
                    else ssl.CERT_REQUIRED
        except (ssl.SSLError, ValueError, OSError) as problem:
            return self._unusable(ref, f"the certificate or key of {ref} cannot be loaded "
                                  f"({type(problem).__name__})")
        self.problems.pop(ref, None)
        return ctx

    def _unusable(self, ref: str, why: str) -> ssl.SSLContext | None:
        """Record why ``ref`` cannot be used (logged once per reason); always None."""
        if ref not in why:
            why = f"{ref}: {why}"
        if self.problems.get(ref) != why:
            log.warning("gateway credential %s", why)
        self.problems[ref] = why
        return None

    def _load(self, ctx: ssl.SSLContext, cert: bytes, key: bytes) -> None:
        if self._dir is None:
            self._dir = tempfile.mkdtemp(prefix="istiolab-sds-")  # 0700
        fd, path = tempfile.mkstemp(dir=self._dir, suffix=".pem")  # 0600
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(cert.rstrip(b"\n") + b"\n" + key)
            ctx.load_cert_chain(path)
        finally:
            os.unlink(path)


# ------------------------------------------------------------------ selection
def is_tls_port(snap: Any, pod: Obj, port: int) -> bool:
    """Whether the gateway ``pod`` terminates TLS on ``port`` (its servers there are HTTPS)."""
    servers = gateways.servers_on(snap, pod, port)
    return bool(servers) and all(s.protocol in gateways.TLS_TERMINATING for s in servers)


def choose(runtime: Any, credentials: Credentials, pod: Obj, port: int,
           record: bytes) -> Chosen | None:
    """The server and context a ClientHello gets on gateway ``pod``'s ``port`` (None: reset)."""
    snap = snapshot(runtime)
    sni = sni_of(record)
    if "ignore-sni" in FAULTS:
        servers = [s for s in gateways.servers_on(snap, pod, port)
                   if s.protocol in gateways.TLS_TERMINATING]
        server = servers[0] if servers else None
    else:
        server = gateways.tls_server_for(snap, pod, port, sni)
    if server is None:
        return None
    tls = server.server.get("tls") or {}
    mode = str(tls.get("mode") or "SIMPLE").upper()
    name = tls.get("credentialName")
    if mode not in MODES or not name:
        log.warning("gateway server %s on port %d: tls mode %s%s is not modelled by the embedded "
                    "cluster; the connection is reset", server.key, port, mode,
                    "" if name else " without credentialName")
        return None
    context = credentials.context(namespace_of(pod), str(name), mode)
    if context is None:
        return None
    if "ignore-sni" in FAULTS:
        sni = next(iter(gateways.server_hosts(server)), sni)
    return Chosen(server, context, sni)
