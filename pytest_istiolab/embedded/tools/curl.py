"""``curl`` run inside a container: the request leaves from the pod, through its sidecar.

Modelled options: ``-s -S -v -i -I -L -k -f --fail-with-body -G``, ``-o FILE`` (one per
URL), ``-w FORMAT`` (``%{http_code}``, ``%{time_total}``, ``%{exitcode}``, ``%{remote_ip}``,
``%{size_download}``, ``%{url_effective}``, ``%header{name}`` … and ``\\n``), ``-H``, ``-X``,
``-d/--data/--data-raw/--data-binary/--data-urlencode`` (``@file`` from the container's
files), ``-m/--max-time`` (virtual time, one budget per URL), ``--resolve``, ``-b/-c``
cookie jars, ``-A``, ``-e``, ``-u``, ``-D``, ``--max-redirs``, several URLs.
Accepted without effect: ``--connect-timeout`` (connecting takes no virtual time; an
unreachable address is refused at once), ``-k``, ``--cacert/--cert/--key``, ``--http1.1``.
Plain HTTP only: an ``https://`` URL fails with exit 1 and says TLS is not modelled here.
A failure that is a modelling gap (HTTPS, a public host the model does not know) prints its
error line even under ``-s`` without ``-S``: the emulator's scope is never silent.
Exit codes and messages are curl 8's: 1, 2, 3, 6, 7, 22, 28, 47, 52, 56.
"""

from __future__ import annotations

import base64
import posixpath
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urljoin

from ..mesh.config import snapshot
from ..mesh.engine import request_from_pod
from ..mesh.headers import Headers
from ..mesh.hosts import not_modelled_name
from ..mesh.state import mesh_state
from ..runtime import ExecResult, Runtime
from .cookies import CookieJar
from .curl_args import CurlOptions, UsageError, parse
from .curl_output import (
    FAILURE_CODES,
    Transfer,
    error_text,
    head_text,
    looks_like_url_error,
    progress_meter,
    verbose_request,
    verbose_response,
    write_out,
)
from .vfs import ContainerFiles, files_of

Obj = dict[str, Any]
REDIRECTS = (301, 302, 303, 307, 308)
GAP = "not modelled by the embedded cluster"


class Curl:
    """One invocation of curl in one container."""

    def __init__(self, runtime: Runtime, pod: Obj, container: str, version: str,
                 stdin: bytes) -> None:
        self.runtime, self.pod, self.container = runtime, pod, container
        self.version, self.stdin = version, stdin
        self.files: ContainerFiles = files_of(runtime, pod, container)
        self.writes: list[tuple[int, bytes]] = []  # (1 stdout | 2 stderr, data) in order
        self.jar = CookieJar()

    def run(self, argv: list[str]) -> ExecResult:
        try:
            opts = parse(argv[1:])
        except UsageError as problem:
            return ExecResult(2, b"", str(problem).encode())
        self._load_cookies(opts)
        code = 0
        for index, url in enumerate(opts.urls):
            output = opts.outputs[index] if index < len(opts.outputs) else None
            transfer = self.transfer(opts, url)
            self._emit(opts, transfer, output)
            code = transfer.exit_code
        if opts.cookie_jar:
            self.files.write(opts.cookie_jar, self.jar.dump().encode())
        return ExecResult.written(code, self.writes)

    # --------------------------------------------------------------- transfer
    def transfer(self, opts: CurlOptions, raw_url: str) -> Transfer:
        body = self._body(opts)
        method = opts.method or ("HEAD" if opts.head else "POST" if body is not None and
                                 not opts.get else "GET")
        if opts.get and body is not None:
            raw_url += ("&" if "?" in raw_url else "?") + body.decode()
            body = None
        url = raw_url
        redirects, elapsed = 0, 0.0
        limit = int(opts.max_redirs) if opts.max_redirs else 50
        while True:
            t = self._one(opts, method, url, body)
            t.redirects, t.total = redirects, t.total + elapsed
            r = t.response
            location = r.headers.get("location") if r is not None and not t.exit_code else None
            if not (opts.follow and location and r is not None and r.status in REDIRECTS):
                return self._check_fail(opts, t)
            if redirects >= limit:
                t.exit_code, t.error = 47, error_text(47, max=limit)
                return t
            if opts.verbose:
                self.stderr((verbose_request(t, r.remote_ip) + verbose_response(t)).encode())
            redirects, elapsed = redirects + 1, t.total
            url = urljoin(t.url, location)
            if r.status in (301, 302, 303) and method == "POST" and not opts.method:
                method, body = "GET", None

    def _one(self, opts: CurlOptions, method: str, raw_url: str, body: bytes | None) -> Transfer:
        parsed = parse_url(raw_url)
        if isinstance(parsed, UrlError):
            return Transfer(raw_url, method, "", 0, exit_code=parsed.code, error=parsed.message)
        scheme, host, port, path = parsed.scheme, parsed.host, parsed.port, parsed.path
        t = Transfer(parsed.effective, method, host, port, scheme, path=path,
                     uploaded=len(body or b""))
        t.sent = self._headers(opts, t, parsed.auth, body)
        state = mesh_state(self.runtime)
        t.local_ip = str((self.pod.get("status") or {}).get("podIP") or "")
        t.local_port = state.ephemeral_port()
        timeout = float(opts.max_time) if opts.max_time else None
        response = request_from_pod(
            self.runtime, self.pod, method, f"{scheme}://{host}:{port}{path}", t.sent,
            body or b"", timeout=timeout, connect_to=self._resolved(opts, host, port),
            container=self.container)
        t.response = response
        t.total = response.duration + state.jitter(0.1, 0.6)
        if response.failure is not None:
            t.exit_code = FAILURE_CODES.get(response.failure.kind, 56)
            t.error = error_text(t.exit_code, host=host, port=port,
                                 ms=int(t.total * 1000), received=0)
            gap = not_modelled_name(snapshot(self.runtime), host) if t.exit_code == 6 else None
            if gap:
                t.error += f" ({gap})"
            if t.exit_code == 28 and timeout is not None:
                t.total = timeout + state.jitter(0.2, 1.5)
                t.error = error_text(28, ms=int(t.total * 1000), received=0)
        elif opts.cookie is not None or opts.cookie_jar:
            for value in response.headers.get_all("set-cookie"):
                self.jar.receive(value, host, path.split("?")[0], response.end)
        return t

    def _check_fail(self, opts: CurlOptions, t: Transfer) -> Transfer:
        if (opts.fail or opts.fail_with_body) and not t.exit_code and t.status >= 400:
            t.exit_code, t.error = 22, error_text(22, status=t.status)
        return t

    # ----------------------------------------------------------------- request
    def _headers(self, opts: CurlOptions, t: Transfer, auth: str | None,
                 body: bytes | None) -> Headers:
        custom, removed = Headers(), set()
        for line in opts.headers:
            name, sep, value = line.partition(":")
            if not sep and name.endswith(";"):
                custom.add(name[:-1].strip(), "")
            elif sep and not value.strip():
                removed.add(name.strip().lower())
            elif sep:
                custom.add(name.strip(), value.strip())
        default_port = {"http": 80, "https": 443}[t.scheme]
        host = t.host if t.port == default_port else f"{t.host}:{t.port}"
        sent = Headers([("Host", custom.get("host") or host)])
        if auth or opts.user:
            token = base64.b64encode((auth or opts.user or "").encode()).decode()
            sent.add("Authorization", f"Basic {token}")
        sent.add("User-Agent", opts.user_agent or f"curl/{self.version}")
        sent.add("Accept", "*/*")
        if opts.referer:
            sent.add("Referer", opts.referer)
        cookie = self._cookie_header(opts, t)
        if cookie:
            sent.add("Cookie", cookie)
        for name, value in custom:
            if name.lower() == "host":
                continue
            if name.lower() in ("user-agent", "accept", "referer", "cookie"):
                sent.remove(name)
            sent.add(name, value)
        if body is not None:
            sent.add("Content-Length", str(len(body)))
            if "content-type" not in custom:
                sent.add("Content-Type", "application/x-www-form-urlencoded")
        for name in removed:
            sent.remove(name)
        return sent

    def _body(self, opts: CurlOptions) -> bytes | None:
        if not opts.data:
            return None
        parts = []
        for kind, value in opts.data:
            if kind == "data_urlencode":
                parts.append(self._urlencoded(value))
            elif kind != "data_raw" and value.startswith("@"):
                content = self._file(value[1:])
                parts.append(content if kind == "data_binary" else
                             content.replace(b"\r", b"").replace(b"\n", b""))
            else:
                parts.append(value.encode())
        return b"&".join(parts)

    def _urlencoded(self, value: str) -> bytes:
        if value.startswith("@"):
            return quote(self._file(value[1:]).decode(), safe="").encode()
        name, sep, content = value.partition("=")
        if sep:
            encoded = quote(content, safe="")
            return (f"{name}={encoded}" if name else encoded).encode()
        name, sep, path = value.partition("@")
        if sep and name:
            return f"{name}={quote(self._file(path).decode(), safe='')}".encode()
        return quote(value, safe="").encode()

    def _file(self, name: str) -> bytes:
        if name == "-":
            return self.stdin
        content = self.files.read(name)
        if content is None:
            self.stderr(f"Warning: Couldn't read data from file \"{name}\", this makes an "
                        "empty POST.\n".encode())
            return b""
        return content

    def _resolved(self, opts: CurlOptions, host: str, port: int) -> str | None:
        for entry in opts.resolve:
            name, _, rest = entry.lstrip("+").partition(":")
            entry_port, _, address = rest.partition(":")
            if name.lower() == host and entry_port == str(port) and address:
                return address.split(",")[0].strip("[]")
        return None

    # ----------------------------------------------------------------- cookies
    def _load_cookies(self, opts: CurlOptions) -> None:
        if opts.cookie and "=" not in opts.cookie:
            content = self.files.read(opts.cookie)
            if content is not None:
                self.jar.load(content.decode("utf-8", "replace"))

    def _cookie_header(self, opts: CurlOptions, t: Transfer) -> str | None:
        literal = opts.cookie if opts.cookie and "=" in opts.cookie else None
        stored = self.jar.header(t.host, t.path.split("?")[0], self.runtime.clock.now())
        return "; ".join(c for c in (literal, stored) if c) or None

    # ------------------------------------------------------------------ output
    def stdout(self, data: bytes) -> None:
        self.writes.append((1, data))

    def stderr(self, data: bytes) -> None:
        self.writes.append((2, data))

    def _emit(self, opts: CurlOptions, t: Transfer, output: str | None) -> None:
        r = t.response
        if opts.verbose and r is not None:
            self.stderr(verbose_request(t, r.remote_ip or "").encode())
            self.stderr(verbose_response(t).encode())
        if not opts.silent and not opts.no_progress:
            self.stderr(progress_meter(t).encode())
        content = b""
        if r is not None and r.failure is None and (t.exit_code != 22 or opts.fail_with_body):
            if opts.dump_header:
                self._write(opts.dump_header, head_text(r).encode())
            head = head_text(r).encode() if (opts.include or opts.head) else b""
            content = head + (b"" if t.method == "HEAD" else r.body)
        if output is not None:
            if t.exit_code in (0, 22) or content:
                self._write(output, content)
        else:
            self.stdout(content)
        gap = GAP in (t.error or "")  # a modelling gap is said even under -s
        if t.exit_code and (not opts.silent or opts.show_error or gap):
            self.stderr(f"curl: ({t.exit_code}) {t.error}\n".encode())
        if opts.write_out is not None:
            fmt = opts.write_out
            if fmt.startswith("@"):
                fmt = (self.files.read(fmt[1:]) or b"").decode()
            self.stdout(write_out(fmt, t).encode())

    def _write(self, name: str, data: bytes) -> None:
        if name == "-":
            self.stdout(data)
        else:
            self.files.write(name, data)


@dataclass(frozen=True)
class ParsedUrl:
    scheme: str
    host: str
    port: int
    path: str  # with the query
    auth: str | None
    effective: str  # %{url_effective}


@dataclass(frozen=True)
class UrlError:
    code: int
    message: str


def parse_url(raw: str) -> ParsedUrl | UrlError:
    """curl's URL handling: default scheme http, port checks, dot segments, no fragment."""
    problem = looks_like_url_error(raw)
    if problem:
        return UrlError(3, error_text(3, detail=problem))
    url = raw if "://" in raw else f"http://{raw}"
    scheme, _, rest = url.partition("://")
    scheme = scheme.lower()
    if scheme != "http":
        note = (" (not modelled by the embedded cluster: curl in a pod speaks plain HTTP "
                "only; HTTPS from pods is not modelled)") if scheme == "https" else ""
        return UrlError(1, error_text(1, scheme=scheme) + note)
    rest = rest.split("#", 1)[0]
    cut = min([i for i in (rest.find("/"), rest.find("?")) if i >= 0] or [len(rest)])
    authority, path = rest[:cut], rest[cut:]
    userinfo, _, hostport = authority.rpartition("@")
    host, port_text = _split_host(hostport)
    if not host:
        return UrlError(3, error_text(3, detail="No host part in the URL"))
    if port_text is not None and (not port_text.isdigit() or int(port_text) > 65535):
        return UrlError(3, error_text(
            3, detail="Port number was not a decimal number between 0 and 65535"))
    port = int(port_text) if port_text else 80
    path = _normalize("/" + path if path.startswith("?") or not path else path)
    shown = f"{host}:{port_text}" if port_text else host
    return ParsedUrl(scheme, host.lower(), port, path, userinfo or None,
                     f"{scheme}://{shown}{path}")


def _split_host(hostport: str) -> tuple[str, str | None]:
    if hostport.startswith("["):
        end = hostport.find("]")
        rest = hostport[end + 1:]
        return hostport[1:end], (rest[1:] if rest.startswith(":") else None)
    host, sep, port = hostport.partition(":")
    return host, (port if sep else None)


def _normalize(path: str) -> str:
    route, sep, query = path.partition("?")
    if "/." in route:
        trailing = route.endswith("/") or route.endswith("/.") or route.endswith("/..")
        route = posixpath.normpath(route)
        if trailing and route != "/":
            route += "/"
    return route + sep + query
