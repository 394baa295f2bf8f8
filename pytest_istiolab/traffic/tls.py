"""HTTPS to the ingress gateway as Lab 6 does it: ``curl --resolve ... --cacert ...``.

:func:`https_get` runs the manual's command with the test host's **curl** when there is one::

    curl -v -HHost:H --resolve "H:$SECURE_INGRESS_PORT:$INGRESS_HOST" --cacert CA \\
        [--cert C --key K] "https://H:$SECURE_INGRESS_PORT/path"

and reads its verbose output semantically (catalogue D-15: line formats differ between curl
and OpenSSL versions): the exit code, the negotiated protocol, the server certificate's
subject and issuer, the status line, headers and body. Without curl, the same request goes
through Python's ``ssl`` and httpx (HTTP/2 through the ``h2`` package) with the same inputs,
and the result maps its failures onto curl's exit codes (35 handshake, 56 receive, 60
verification). Python's hostname check rejects CN-only certificates (D-14), so the fallback
verifies the chain with ``ssl`` and matches the CN itself, as curl does.
"""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

CURL_TIMEOUT = 30.0
HANDSHAKE_FAILED = 35   # CURLE_SSL_CONNECT_ERROR
RECV_ERROR = 56         # CURLE_RECV_ERROR
PEER_FAILED = 60        # CURLE_PEER_FAILED_VERIFICATION


@dataclass
class HttpsResult:
    """One HTTPS request: what curl (or the fallback) reported."""

    exit_code: int
    stderr: str = ""
    http_version: str = ""      # "2" or "1.1"
    status: int | None = None   # None: no HTTP response
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names
    body: str = ""
    subject: str = ""           # "CN=httpbin.example.com, O=httpbin organization"
    issuer: str = ""
    alpn: str = ""              # "h2" when the server accepted it
    client: str = "curl"

    @property
    def error(self) -> str:
        """curl's last ``curl: (N) ...`` line (or the fallback's error)."""
        lines = [ln for ln in self.stderr.splitlines() if ln.startswith("curl: (")]
        return lines[-1] if lines else self.stderr.strip().splitlines()[-1:][0] \
            if self.stderr.strip() else ""

    def describe(self) -> str:
        return (f"{self.client} exit {self.exit_code}, status {self.status}, HTTP/"
                f"{self.http_version or '-'}, certificate {self.subject or '-'} issued by "
                f"{self.issuer or '-'}: {self.error or 'no error'}")


def has_curl() -> bool:
    return shutil.which("curl") is not None


def https_get(host: str, port: int, address: str, path: str, cacert: Path, *,
              cert: Path | None = None, key: Path | None = None,
              use_curl: bool | None = None, timeout: float = CURL_TIMEOUT) -> HttpsResult:
    """GET ``https://host:port/path`` with ``host`` resolved to ``address`` (curl --resolve)."""
    if use_curl is None:
        use_curl = has_curl()
    if use_curl:
        return _curl(host, port, address, path, cacert, cert, key, timeout)
    return _python(host, port, address, path, cacert, cert, key, timeout)


def curl_argv(host: str, port: int, address: str, path: str, cacert: Path,
              cert: Path | None = None, key: Path | None = None) -> list[str]:
    """The manual's command line (plus ``-sS`` so only errors and ``-v`` reach stderr)."""
    argv = ["curl", "-sS", "-v", f"-HHost:{host}", "--resolve", f"{host}:{port}:{address}",
            "--cacert", str(cacert)]
    if cert is not None:
        argv += ["--cert", str(cert)]
    if key is not None:
        argv += ["--key", str(key)]
    return [*argv, f"https://{host}:{port}{path}"]


def _curl(host: str, port: int, address: str, path: str, cacert: Path, cert: Path | None,
          key: Path | None, timeout: float) -> HttpsResult:
    argv = curl_argv(host, port, address, path, cacert, cert, key)
    argv[1:1] = ["--max-time", f"{timeout:g}"]
    try:
        done = subprocess.run(argv, capture_output=True, timeout=timeout + 5)
    except subprocess.TimeoutExpired:
        return HttpsResult(28, "curl did not finish", client="curl")
    stderr = done.stderr.decode("utf-8", "replace")
    return parse_verbose(done.returncode, stderr, done.stdout.decode("utf-8", "replace"))


def parse_verbose(exit_code: int, stderr: str, body: str) -> HttpsResult:
    """Read ``curl -v`` output: certificate, ALPN, status line and response headers."""
    result = HttpsResult(exit_code, stderr, body=body)
    for raw in stderr.splitlines():
        line = raw.strip()
        if line.startswith("*  subject: "):
            result.subject = _curl_dn(line.removeprefix("*  subject: "))
        elif line.startswith("*  issuer: "):
            result.issuer = _curl_dn(line.removeprefix("*  issuer: "))
        elif "server accepted" in line and "h2" in line:
            result.alpn = "h2"
        elif line.startswith("< HTTP/"):
            version, _, rest = line[len("< HTTP/"):].partition(" ")
            result.http_version = version
            code = rest.split(" ", 1)[0]
            result.status = int(code) if code.isdigit() else None
            result.headers = {}
        elif line.startswith("< ") and ":" in line and result.status is not None:
            name, _, value = line[2:].partition(":")
            result.headers[name.strip().lower()] = value.strip()
    return result


def _curl_dn(text: str) -> str:
    """curl prints ``CN=a; O=b`` (OpenSSL 1.1) or ``CN=a, O=b``: one form, ``, `` joined."""
    return ", ".join(p.strip() for p in text.replace(";", ",").split(",") if p.strip())


# ------------------------------------------------------------------ python fallback
def _rdns(peer: dict[str, Any], field_name: str) -> list[tuple[str, str]]:
    """``getpeercert()``'s subject or issuer as (attribute, value) pairs, in order."""
    value = peer.get(field_name) or ()
    return [(str(k), str(v)) for rdn in value for k, v in rdn]


def _dn(pairs: list[tuple[str, str]]) -> str:
    short = {"commonName": "CN", "organizationName": "O"}
    return ", ".join(f"{short.get(k, k)}={v}" for k, v in pairs)


def _python(host: str, port: int, address: str, path: str, cacert: Path, cert: Path | None,
            key: Path | None, timeout: float) -> HttpsResult:
    ctx = ssl.create_default_context(cafile=str(cacert))
    ctx.check_hostname = False  # CN-only certificates (D-14): matched below, as curl does
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    if cert is not None:
        ctx.load_cert_chain(str(cert), str(key) if key else None)
    result = HttpsResult(0, client="python")
    try:
        raw = socket.create_connection((address, port), timeout=timeout)
    except OSError as err:
        return HttpsResult(7, f"connect failed: {err}", client="python")
    try:
        tls = ctx.wrap_socket(raw, server_hostname=host)
    except ssl.SSLCertVerificationError as err:
        raw.close()
        code = HANDSHAKE_FAILED if "signature" in str(err) else PEER_FAILED
        return HttpsResult(code, f"ssl: {err}", client="python")
    except (ssl.SSLError, OSError) as err:
        raw.close()
        return HttpsResult(HANDSHAKE_FAILED, f"ssl: {err}", client="python")
    peer: dict[str, Any] = dict(tls.getpeercert() or {})
    subject = _rdns(peer, "subject")
    result.subject, result.issuer = _dn(subject), _dn(_rdns(peer, "issuer"))
    result.alpn = tls.selected_alpn_protocol() or ""
    common = [v for k, v in subject if k == "commonName"]
    tls.close()
    if host.lower() not in [c.lower() for c in common]:
        result.exit_code, result.stderr = PEER_FAILED, f"certificate subject does not match {host}"
        return result
    try:
        with httpx.Client(verify=ctx, http2=result.alpn == "h2", trust_env=False,
                          timeout=timeout) as client:
            response = client.get(f"https://{address}:{port}{path}",
                                  headers={"Host": host}, extensions={"sni_hostname": host})
    except httpx.HTTPError as err:
        result.exit_code, result.stderr = RECV_ERROR, f"receive failed: {err!r}"
        return result
    result.status = response.status_code
    result.http_version = "2" if response.http_version == "HTTP/2" else "1.1"
    result.headers = {k.lower(): v for k, v in response.headers.items()}
    result.body = response.text
    return result
