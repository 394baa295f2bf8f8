"""``fortio`` exec'd in a container (the ``fortio/fortio`` image, modelled as fortio 1.69.5).

Scope and limitations
---------------------
Commands: ``fortio load [flags] URL`` (see :mod:`.fortio_load` for the simulation and
:mod:`.fortio_output` for what it prints: the summary on stderr, ``-json -`` on stdout),
``fortio curl URL`` and ``fortio load -curl URL`` (response headers on stderr and body on
stdout, exit 1 unless 200, as fortio's fast client), ``fortio version`` and ``fortio help``.
Flags are parsed as Go's ``flag`` package does (``-f v``, ``-f=v``, ``--f``, stops at the
first argument). Modelled flags: ``-c -qps -n -t -loglevel -quiet -json -curl -p -r -timeout
-H -abort-on -allow-initial-errors -nocatchup -keepalive -log-errors -labels -runid``.
A flag fortio does not have gets Go's ``flag provided but not defined`` and the usage (exit
2); a fortio flag the embedded cluster does not model, another command (``server``,
``grpcping`` …), an ``https://``, ``tcp://`` or ``udp://`` target, or ``-t 0`` (run until
interrupted) gets fortio's usage and an error line that says so (exit 1).
Every request goes through the pod's sidecar like the real client's: plain HTTP/1.1,
``Host`` and ``User-Agent: fortio.org/fortio-1.69.5`` plus ``-H`` headers.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from ..mesh.config import namespace_of, snapshot
from ..mesh.engine import request_from_pod
from ..mesh.headers import Headers
from ..mesh.hosts import dns_lookup, not_modelled_name
from ..runtime import ExecResult, Runtime
from .curl_output import head_text
from .fortio_load import Exchange, LoadPlan, code_is_ok, simulate
from .fortio_output import LEVELS, LoadMeta, error_lines, json_result, log_line, preamble, summary

Obj = dict[str, Any]
VERSION = "1.69.5"
USER_AGENT = f"fortio.org/fortio-{VERSION}"
MAX_CALLS = 20000
MODELLED = {"c": "int", "qps": "float", "n": "int", "t": "duration", "loglevel": "level",
            "quiet": "bool", "json": "str", "curl": "bool", "p": "str", "r": "float",
            "timeout": "duration", "H": "list", "abort-on": "int",
            "allow-initial-errors": "bool", "nocatchup": "bool", "keepalive": "bool",
            "log-errors": "bool", "labels": "str", "runid": "int"}
# fortio 1.6x flags the embedded cluster does not model (bool ones take no value)
OTHER_BOOL = {"grpc", "grpc-compression", "udp-async", "a", "health", "ping", "jitter",
              "uniform", "nc-dont-stop-on-eof", "multi-mirror-origin", "multi-serial-mode",
              "calc-qps", "pprof", "http1.0", "stdclient", "h2", "k", "https-insecure",
              "halfclose", "compression", "no-reresolve", "sequential-warmup", "L",
              "follow-redirects", "mtls", "curl-stdout-headers", "httpccch", "echo-server"}
OTHER_VALUE = {"offset", "gomaxprocs", "profile", "http-port", "tcp-port", "udp-port",
               "grpc-port", "echo-debug-path", "ui-path", "static-dir", "data-dir",
               "redirect-port", "sync", "sync-interval", "base-url", "maxpayloadsizekb",
               "healthservice", "grpc-ping-delay", "s", "grpc-method", "grpc-max-streams",
               "udp-timeout", "access-log-file", "access-log-format", "P", "M", "init",
               "config-dir", "config-port", "content-type", "payload", "payload-file",
               "payload-size", "X", "resolve", "httpbufferkb", "user", "connection-reuse",
               "unix-socket", "cacert", "cert", "key", "dns-method", "resolve-ip-type",
               "max-echo-delay", "server-idle-timeout", "echo-server-default-params",
               "proxy-all-headers", "loglevel-stderr", "logger-force-color"}
COMMANDS = ("load", "curl", "server", "report", "redirect", "proxies", "tcp-echo",
            "udp-echo", "grpcping", "nc", "script", "version", "help", "buildinfo")


class UsageError(Exception):
    def __init__(self, message: str, code: int = 1, *, modelled_note: str = "") -> None:
        super().__init__(message)
        self.code, self.note = code, modelled_note


@dataclass
class Options:
    command: str = ""
    values: dict[str, Any] = field(default_factory=dict)
    headers: list[str] = field(default_factory=list)
    args: list[str] = field(default_factory=list)


def usage() -> str:
    return (f"Φορτίο {VERSION} usage:\n\tfortio command [flags] target\n"
            "where command is one of: load (load testing), server (starts ui, rest api,\n"
            " http-echo, redirect, proxies, tcp-echo, udp-echo and grpc ping servers), \n"
            " tcp-echo (only the tcp-echo server), udp-echo (only udp-echo server),\n"
            " report (report only UI server), redirect (only the redirect server),\n"
            " proxies (only the -M and -P configured proxies), grpcping (gRPC client),\n"
            " or curl (single URL debug), or nc (single tcp or udp:// connection),\n"
            " or script (interactive grol script mode or script file),\n"
            " or version (prints the full version and build details).\n"
            "where target is a URL (http load tests) or host:port (grpc health test),\n"
            " or tcp://host:port (tcp load test), or udp://host:port (udp load test).\n"
            "or 1 of the special arguments\n\tfortio {help|version|buildinfo}\n"
            "flags:\n" + "".join(f"  -{name}\n" for name in sorted(MODELLED)))


def not_modelled(what: str) -> str:
    return (f"the embedded cluster does not model {what} (modelled: fortio load/curl with "
            + " ".join(f"-{f}" for f in sorted(MODELLED)) + ")\n")


# ------------------------------------------------------------------------ parsing
def parse(argv: list[str]) -> Options:
    if not argv:
        raise UsageError("Error: need at least 1 command parameter")
    opts = Options(command=argv[0])
    words = list(argv[1:])
    while words:
        word = words[0]
        if word == "--":
            words.pop(0)
            break
        if not word.startswith("-") or word == "-":
            break
        words.pop(0)
        name, has_value, value = word.lstrip("-").partition("=")
        _take(opts, name, value if has_value else None, words)
    opts.args = words
    return opts


def _take(opts: Options, name: str, inline: str | None, words: list[str]) -> None:
    kind = MODELLED.get(name)
    if kind is None:
        if name in OTHER_BOOL or name in OTHER_VALUE:
            raise UsageError(f"Error: flag -{name} is not modelled here", 1,
                             modelled_note=not_modelled(f"the fortio flag -{name}"))
        raise UsageError(f"flag provided but not defined: -{name}", 2,
                         modelled_note=not_modelled(f"the flag -{name}"))
    if kind == "bool":
        opts.values[name] = inline is None or inline.lower() in ("1", "t", "true")
        return
    if inline is None:
        if not words:
            raise UsageError(f"flag needs an argument: -{name}", 2)
        inline = words.pop(0)
    opts.values[name] = _convert(name, kind, inline)
    if kind == "list":
        opts.headers.append(inline)


def _convert(name: str, kind: str, raw: str) -> Any:
    try:
        if kind == "int":
            return int(raw, 0)
        if kind == "float":
            return float(raw)
        if kind == "duration":
            return go_duration_value(raw)
    except ValueError:
        raise UsageError(f'invalid value "{raw}" for flag -{name}: parse error', 2) from None
    if kind == "level" and raw.lower() not in LEVELS:
        raise UsageError(f'invalid value "{raw}" for flag -{name}: invalid log level', 2)
    return raw


def go_duration_value(raw: str) -> float:
    """Go's time.ParseDuration (plus fortio's ``d`` for days); ``0`` alone is allowed."""
    if raw.strip() in ("0", "-0", "+0"):
        return 0.0
    units = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0,
             "h": 3600.0, "d": 86400.0}
    parts = re.findall(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h|d)", raw)
    if not parts or "".join(n + u for n, u in parts) != raw:
        raise ValueError(raw)
    return sum(float(n) * units[u] for n, u in parts)


# ------------------------------------------------------------------------ running
class Fortio:
    """One invocation of fortio in one container."""

    def __init__(self, runtime: Runtime, pod: Obj, container: str) -> None:
        self.runtime, self.pod, self.container = runtime, pod, container

    def run(self, argv: list[str]) -> ExecResult:
        try:
            opts = parse(argv[1:])
            return self._dispatch(opts)
        except UsageError as problem:
            text = f"{problem}\n{usage()}" if problem.code == 2 else f"{usage()}{problem}\n"
            return ExecResult(problem.code, b"", (text + problem.note).encode())

    def _dispatch(self, opts: Options) -> ExecResult:
        if opts.command in ("version", "buildinfo"):
            return ExecResult(0, f"{VERSION}\n".encode())
        if opts.command == "help":
            return ExecResult(0, usage().encode())
        if opts.command not in COMMANDS:
            raise UsageError(f'Error: unknown command "{opts.command}"')
        if opts.command not in ("load", "curl"):
            raise UsageError(f"Error: fortio {opts.command} is not modelled", 1,
                             modelled_note=not_modelled(f"fortio {opts.command}"))
        if len(opts.args) != 1:
            raise UsageError("Error: fortio load/curl needs a URL or destination")
        url = _normalize(opts.args[0].lstrip(" \t\r\n"))
        if opts.command == "curl" or opts.values.get("curl"):
            return self._curl(opts, url)
        return self._load(opts, url)

    def _headers(self, opts: Options, host: str) -> Headers:
        headers = Headers([("Host", host), ("User-Agent", USER_AGENT)])
        for raw in opts.headers:
            name, _, value = raw.partition(":")
            headers.set(name.strip(), value.strip())
        return headers

    def _target(self, url: str) -> tuple[str, str, int, str]:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port or 80
        snap = snapshot(self.runtime)
        ips = dns_lookup(snap, host, namespace_of(self.pod))
        if not ips:
            gap = not_modelled_name(snap, host)
            raise UsageError(f"Aborting because of lookup {host}: no such host"
                             + (f" ({gap})" if gap else ""))
        return host, parts.netloc, port, ips[0]

    def _exchange(self, opts: Options, url: str, t: float, netloc: str, ip: str) -> Exchange:
        timeout = float(opts.values.get("timeout", 3.0))
        response = request_from_pod(self.runtime, self.pod, "GET", url,
                                    self._headers(opts, netloc), start=t, timeout=timeout,
                                    connect_to=ip, container=self.container, nested=True)
        if response.failure is not None:
            return Exchange(-1, 0, 0, response.end)
        head = head_text(response).encode()
        raw = head + response.body
        ok = code_is_ok(response.status)
        return Exchange(response.status, len(head) if ok else 0, len(raw), response.end, raw)

    def _curl(self, opts: Options, url: str) -> ExecResult:
        """fortio's FetchURL: headers to stderr, then the body to stdout, then the error log."""
        _, netloc, _, ip = self._target(url)
        now = self.runtime.clock.now()
        ex = self._exchange(opts, url, now, netloc, ip)
        self.runtime.clock.advance_to(ex.end)
        attrs: dict[str, object] = {"command": "Φορτίο",
                                    "version": f"{VERSION} go1.24.2 amd64 linux"}
        starting = log_line(now, "info", "Starting", ("scli.go", 123), attrs=attrs) \
            if log_level(opts) <= LEVELS["info"] else ""
        body = _body(ex.raw)
        head_len = ex.total_bytes - len(body)
        error = log_line(ex.end, "err", f"Error status {ex.status}", ("bincommon.go", 380)) \
            if ex.status != 200 else ""
        return ExecResult.written(0 if ex.status == 200 else 1, [
            (2, starting.encode()), (2, ex.raw[:head_len]), (1, body), (2, error.encode())])

    def _load(self, opts: Options, url: str) -> ExecResult:
        plan = self._plan(opts)
        _, netloc, port, ip = self._target(url)
        meta = self._meta(opts, url)
        rng = random.Random(self.runtime.rng.getrandbits(64))
        start = self.runtime.clock.now()
        run = simulate(plan, lambda thread, t: self._exchange(opts, url, t, netloc, ip), rng,
                       start)
        self.runtime.clock.advance_to(run.end)
        address = f"{ip}:{port}"
        bad = next((s for s in run.warmup if not code_is_ok(s.status)), None)
        if bad is not None and not opts.values.get("allow-initial-errors"):
            text = preamble(run, meta) + (f"Aborting because of error {bad.status} for {url}: "
                                          f"{go_quote(bad.raw)}\n")
            return ExecResult(1, b"", text.encode())
        text = preamble(run, meta) + "".join(line for _, line in error_lines(run, meta))
        text += summary(run, meta, address)
        out = b""
        if opts.values.get("json"):
            if opts.values["json"] != "-":
                raise UsageError("Error: -json to a file is not modelled", 1,
                                 modelled_note=not_modelled("-json FILE (only -json -)"))
            out = json_result(run, meta, address).encode()
            done = f"Successfully wrote {len(out)} bytes of Json data to stdout\n"
            return ExecResult.written(0, [(2, text.encode()), (1, out), (2, done.encode())])
        return ExecResult(0, out, text.encode())

    def _plan(self, opts: Options) -> LoadPlan:
        v = opts.values
        plan = LoadPlan(threads=int(v.get("c", 4)), qps=float(v.get("qps", 8.0)),
                        exactly=int(v.get("n", 0)), duration=float(v.get("t", 5.0)),
                        abort_on=int(v.get("abort-on", 0)),
                        no_catchup=bool(v.get("nocatchup", False)),
                        keepalive=bool(v.get("keepalive", True)),
                        resolution=float(v.get("r", 0.001)))
        if plan.threads < 1:
            plan.threads = 1
        if plan.exactly <= 0 and plan.duration <= 0:
            raise UsageError("Error: -t 0 (run until interrupted) is not modelled", 1,
                             modelled_note=not_modelled("runs without an end (-t 0)"))
        calls = plan.exactly or (plan.qps * plan.duration if plan.qps > 0 else 0)
        if calls > MAX_CALLS or (plan.qps <= 0 and not plan.exactly and plan.duration > 10):
            raise UsageError(f"Error: more than {MAX_CALLS} calls", 1, modelled_note=not_modelled(
                f"runs of more than {MAX_CALLS} calls or max-qps runs longer than 10s"))
        if plan.qps > 0 and not plan.exactly:
            total = max(2, int(plan.qps * plan.duration))
            plan.threads = min(plan.threads, max(1, total // 2))
        return plan

    def _meta(self, opts: Options, url: str) -> LoadMeta:
        v = opts.values
        level = log_level(opts)
        short = url.split("://", 1)[-1]
        labels = str(v.get("labels") or f"{short} , {self.pod['metadata']['name']}")
        raw = str(v.get("p", "50,75,90,99,99.9"))
        try:
            percentiles = [float(p) for p in raw.split(",") if p.strip()]
        except ValueError:
            raise UsageError(f"Unable to extract percentiles from -p: {raw}") from None
        return LoadMeta(url, VERSION, labels, level, "loglevel" in v, int(v.get("runid", 0)),
                        float(v.get("timeout", 3.0)), percentiles,
                        bool(v.get("log-errors", True)))


def log_level(opts: Options) -> int:
    """``-loglevel``, else ``-quiet``'s quieter level, else fortio's default (info)."""
    v = opts.values
    return LEVELS[str(v.get("loglevel", "warning" if v.get("quiet") else "info")).lower()]


def _normalize(url: str) -> str:
    low = url.lower()
    if low.startswith(("https://", "tcp://", "udp://")):
        scheme = low.split("://", 1)[0]
        raise UsageError(f"Error: {scheme}:// targets are not modelled", 1,
                         modelled_note=not_modelled(f"{scheme}:// targets (plain http only)"))
    return url if low.startswith("http://") else "http://" + url


def go_quote(raw: bytes) -> str:
    """Go's ``%q`` of a byte string (strconv.Quote)."""
    escapes = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r",
               "\t": "\\t", "\v": "\\v", "\\": "\\\\", '"': '\\"'}
    out = []
    for ch in raw.decode("utf-8", "replace"):
        if ch in escapes:
            out.append(escapes[ch])
        elif ch.isprintable():
            out.append(ch)
        else:
            out.append(f"\\x{ord(ch):02x}" if ord(ch) < 256 else f"\\u{ord(ch):04x}")
    return '"' + "".join(out) + '"'


def _body(raw: bytes) -> bytes:
    head, sep, body = raw.partition(b"\r\n\r\n")
    return body if sep else b""
