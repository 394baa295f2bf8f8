"""What ``fortio load`` prints: its log lines, the text summary (stderr) and ``-json -`` (stdout).

The text follows fortio 1.6x (``periodic``, ``fhttp/httprunner.go``, ``cli/fortio_main.go``):
``Fortio X running at …``, ``Starting at max qps with N thread(s) …``, one JSON ``warn`` log
line per non-OK answer, ``Ended after …``, the ``Aggregated Function Time`` and ``Error
cases`` histograms, the sockets per connection, ``Sockets used: N (for perfect keepalive,
would be C)``, ``Uniform: false, Jitter: false, Catchup allowed: true``, the IP address
distribution, ``Code 200 : 17 (85.0 %)`` lines, the header and total size counters and
``All done N calls (plus W warmup) X ms avg, Y qps``. Log verbosity follows ``-loglevel``.
JSON keys are those of fortio's ``HTTPRunnerResults`` in its field order.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .fortio_load import LoadRun, code_is_ok
from .fortio_report import Histogram, go_duration, go_g

Obj = dict[str, Any]
LEVELS = {"debug": 0, "verbose": 1, "info": 2, "warning": 3, "error": 4, "critical": 5,
          "fatal": 6}
LEVEL_NAMES = {0: "Debug", 1: "Verbose", 2: "Info", 3: "Warning", 4: "Error", 5: "Critical",
               6: "Fatal"}
GOMAXPROCS = 8  # the embedded node's CPU capacity


@dataclass
class LoadMeta:
    """The invocation as fortio knows it."""

    url: str
    version: str
    labels: str
    level: int = 2
    level_changed: bool = False
    run_id: int = 0
    timeout: float = 3.0
    percentiles: list[float] = field(default_factory=lambda: [50, 75, 90, 99, 99.9])
    log_errors: bool = True


def log_line(ts: float, level: str, msg: str, source: tuple[str, int], r: int = 1,
             attrs: dict[str, object] | None = None) -> str:
    """fortio.org/log's JSON line (keys in its order)."""
    head = (f'{{"ts":{ts:.6f},"level":"{level}","r":{r},"file":"{source[0]}",'
            f'"line":{source[1]},"msg":{json.dumps(msg, ensure_ascii=False)}')
    extra = "".join(f',"{k}":{json.dumps(v, ensure_ascii=False)}'
                    for k, v in (attrs or {}).items())
    return head + extra + "}\n"


def preamble(run: LoadRun, meta: LoadMeta) -> str:
    plan, out = run.plan, []
    if meta.level_changed:
        out.append(log_line(run.start, "info", f"Log level is now {meta.level} "
                            f"{LEVEL_NAMES[meta.level]} (was 2 Info)", ("logger.go", 254)))
    if meta.level <= LEVELS["info"] and not meta.level_changed:
        out.append(log_line(run.start, "info", "Starting", ("scli.go", 123),
                            attrs={"command": "Φορτίο",
                                   "version": f"{meta.version} go1.24.2 amd64 linux"}))
    qps = go_g(plan.qps if plan.qps > 0 else 0)
    target = (f"for {plan.exactly} calls" if plan.exactly else
              f"for {go_duration(plan.duration)}")
    out.append(f"Fortio {meta.version} running at {qps} queries per second, "
               f"{GOMAXPROCS}->{GOMAXPROCS} procs, {target}: {meta.url}\n")
    if meta.level <= LEVELS["info"]:
        attrs: dict[str, object] = {"run": meta.run_id, "url": meta.url,
                                    "threads": plan.threads,
                                    "qps": f"{plan.qps if plan.qps > 0 else -1:.1f}",
                                    "warmup": "parallel", "conn-reuse": ""}
        out.append(log_line(run.start, "info", "Starting http test", ("httprunner.go", 121),
                            attrs=attrs))
    if meta.level <= LEVELS["warning"]:
        out.append(_starting(run))
    return "".join(out)


def _starting(run: LoadRun) -> str:
    plan = run.plan
    each, leftover = plan.calls_per_thread()
    head = f"Starting at {{}} with {plan.threads} thread(s) [gomax {GOMAXPROCS}] "
    if plan.qps <= 0:
        rate = head.format("max qps")
        if plan.exactly:
            return rate + f"for exactly {plan.exactly} calls ({each} per thread + {leftover})\n"
        return rate + f"for {go_duration(plan.duration)}\n"
    rate = head.format(f"{go_g(plan.qps)} qps")
    if plan.exactly:
        return rate + (f": exactly {plan.exactly}, {each} calls each "
                       f"(total {each * plan.threads} + {leftover})\n")
    return rate + (f"for {go_duration(plan.duration)} : {each} calls each "
                   f"(total {each * plan.threads})\n")


def error_lines(run: LoadRun, meta: LoadMeta) -> list[tuple[float, str]]:
    """(time, line) of fortio's warning for each answer that is not OK."""
    if meta.level > LEVELS["warning"] or not meta.log_errors:
        return []
    out = []
    for s in run.samples:
        if s.status > 0 and not code_is_ok(s.status):
            when = s.start + s.latency
            attrs = {"code": s.status, "status": f"HTTP/1.1 {s.status}", "thread": s.thread,
                     "run": meta.run_id}
            out.append((when, log_line(when, "warn", "Non ok http code",
                                       ("http_client.go", 1104), 12 + s.thread, attrs)))
    return sorted(out, key=lambda item: item[0])


def summary(run: LoadRun, meta: LoadMeta, ip: str) -> str:
    """Everything after the calls, as printed on stderr."""
    plan, warn = run.plan, meta.level <= LEVELS["warning"]
    count = len(run.samples)
    out = []
    if warn:
        out.append(f"Ended after {go_duration(run.elapsed)} : {count} calls. "
                   f"qps={go_g(count / run.elapsed, 5)}\n")
    durations, errors = run.durations(), run.durations(errors_only=True)
    if warn:
        out.append(durations.text("Aggregated Function Time", meta.percentiles))
        out.append(errors.text("Error cases", meta.percentiles))
    else:
        out.append(durations.line("Aggregated Function Time"))
        data = durations.buckets()
        out += [f"# target {go_g(p)}% {go_g(durations.percentile(p, data), 6)}\n"
                for p in meta.percentiles if durations.count]
        out.append(errors.line("Error cases") if errors.count else "Error cases : no data\n")
    out.append(_sockets(run, meta, ip))
    out.append(f"Uniform: false, Jitter: false, Catchup allowed: {str(not plan.no_catchup).lower()}"
               "\n")
    sockets = sum(t.sockets for t in run.threads)
    out.append(f"IP addresses distribution:\n{ip}: {sockets}\n")
    for code in sorted(run.codes):
        out.append(f"Code {code:3d} : {run.codes[code]} "
                   f"({100.0 * run.codes[code] / max(1, count):.1f} %)\n")
    if warn:
        out.append(run.sizes(headers=True).line("Response Header Sizes"))
        out.append(run.sizes(headers=False).line("Response Body/Total Sizes"))
    warmup = 0 if plan.exactly else plan.threads
    avg = durations.avg if durations.count else 0.0
    out.append(f"All done {count} calls (plus {warmup} warmup) {1000.0 * avg:.3f} ms avg, "
               f"{count / run.elapsed:.1f} qps\n")
    return "".join(out)


def _sockets(run: LoadRun, meta: LoadMeta, ip: str) -> str:
    out = ["# Socket and IP used for each connection:\n"]
    total = Histogram(divider=run.plan.resolution)
    for t in run.threads:
        out.append(f"[{t.index}] {t.sockets:3d} socket used, resolved to {ip}, "
                   + t.connect.line("connection timing"))
        _merge(total, t.connect)
    if meta.level <= LEVELS["info"]:
        out.append(total.text("Connection time histogram (s)", meta.percentiles))
    elif meta.level <= LEVELS["warning"]:
        out.append(total.line("Connection time (s)"))
    sockets = sum(t.sockets for t in run.threads)
    out.append(f"Sockets used: {sockets} (for perfect keepalive, would be {run.plan.threads})\n")
    return "".join(out)


def _merge(into: Histogram, other: Histogram) -> None:
    if not other.count:
        return
    if not into.count:
        into.minimum, into.maximum = other.minimum, other.maximum
    into.minimum, into.maximum = min(into.minimum, other.minimum), max(into.maximum,
                                                                      other.maximum)
    into.count += other.count
    into.total += other.total
    into.squares += other.squares
    into.counts = [a + b for a, b in zip(into.counts, other.counts, strict=True)]


def json_result(run: LoadRun, meta: LoadMeta, ip: str) -> str:
    """``-json -``: json.MarshalIndent(result, "", "  ") plus a newline."""
    plan = run.plan
    started = datetime.fromtimestamp(run.start, UTC)
    connect = Histogram(divider=plan.resolution)
    for t in run.threads:
        _merge(connect, t.connect)
    result: Obj = {
        "RunType": "HTTP", "Labels": meta.labels,
        "StartTime": started.strftime("%Y-%m-%dT%H:%M:%S.") + f"{started.microsecond:06d}000Z",
        "RequestedQPS": "max" if plan.qps <= 0 else go_g(plan.qps, 9),
        "RequestedDuration": (f"exactly {plan.exactly} calls" if plan.exactly
                              else go_duration(plan.duration)),
        "ActualQPS": len(run.samples) / run.elapsed,
        "ActualDuration": int(run.elapsed * 1e9), "NumThreads": plan.threads,
        "Version": meta.version,
        "DurationHistogram": run.durations().export(meta.percentiles),
        "ErrorsDurationHistogram": run.durations(errors_only=True).export(meta.percentiles),
        "Exactly": plan.exactly, "Jitter": False, "Uniform": False,
        "NoCatchUp": plan.no_catchup, "RunID": meta.run_id, "AccessLoggerInfo": "",
        "ID": started.strftime("%Y-%m-%d-%H%M%S"),
        "RetCodes": {str(k): run.codes[k] for k in sorted(run.codes, key=str)},
        "IPCountMap": {ip: sum(t.sockets for t in run.threads)},
        **_http_options(meta, plan.keepalive),
        "Sizes": run.sizes(headers=False).export(None),
        "HeaderSizes": run.sizes(headers=True).export(None),
        "Sockets": [t.sockets for t in run.threads],
        "SocketCount": sum(t.sockets for t in run.threads),
        "ConnectionStats": connect.export(meta.percentiles), "AbortOn": plan.abort_on,
    }
    return json.dumps(result, indent=2, ensure_ascii=False) + "\n"


def _http_options(meta: LoadMeta, keepalive: bool) -> Obj:
    return {"Insecure": False, "MTLS": False, "CACert": "", "Cert": "", "Key": "",
            "UnixDomainSocket": "", "URL": meta.url, "NumConnections": 1,
            "Compression": False, "DisableFastClient": False, "HTTP10": False, "H2": False,
            "DisableKeepAlive": not keepalive, "AllowHalfClose": False,
            "FollowRedirects": False, "Resolve": "", "HTTPReqTimeOut": int(meta.timeout * 1e9),
            "UserCredentials": "", "ContentType": "", "Payload": None, "MethodOverride": "",
            "LogErrors": meta.log_errors, "SequentialWarmup": False, "ConnReuseRange": [0, 0],
            "NoResolveEachConn": False, "Offset": 0, "Resolution": 0.001}
