"""The Jaeger addon (``jaegertracing/all-in-one:1.67.0`` of ``samples/addons/jaeger.yaml``).

Scope and limitations
---------------------
Serves the query HTTP API on 16686 under ``QUERY_BASE_PATH`` (``/jaeger`` in the addon):
``/api/services``, ``/api/services/<service>/operations`` (names), ``/api/operations?service=
[&spanKind=]`` (``[{name, spanKind}]``), ``/api/traces`` (``service`` required unless
``traceID`` is given; ``operation``, ``tags`` as a JSON object and ``tag=key:value``,
``minDuration``/``maxDuration`` as Go durations, ``limit`` (default 100), ``start``/``end``
in µs, default the last 2 days to now; ``lookback`` is the UI's and the server ignores it) and
``/api/traces/<traceID>``, as ``query/app/http_handler.go`` and ``query_parser.go`` answer:
the structured response ``{data, total, limit, offset, errors}`` (``total`` 0 for traces),
their error messages, and the JSON model (``traceID``, ``spans`` with ``references``
CHILD_OF, ``startTime``/``duration`` in µs, ``tags`` ``{key, type, value}`` plus
``internal.span.format``, ``logs``, ``processID``, ``warnings``; ``processes`` ``p1``…). A span
whose parent is not in the trace carries the clock-skew adjuster's warning. Search matches
traces with a span of the service (and operation, tags, duration and start window) and
returns them newest first.

The spans are those the mesh model delivered to this pod (:mod:`..mesh.tracing`: the
provider's collector Service must select it). They are kept in memory for the pod's life
(the addon's badger store is an emptyDir). Not modelled: the UI (``/jaeger/`` is a stub
page), the collector ports as HTTP/gRPC endpoints (spans arrive through the model, not over
OTLP or Zipkin), the gRPC query API (16685), the admin port (14269), Jaeger's own traces,
dependencies, the ``/api/v3`` API. Anything else under the base path is a 404.
"""

from __future__ import annotations

import json
import re
from typing import Any

from ..mesh.tracing import Span, store_of
from .base import AppContext, AppRequest, AppResponse, json_response, text_response

Obj = dict[str, Any]
BASE_PATH = "/jaeger"
DEFAULT_LIMIT = 100
DEFAULT_LOOKBACK = 2 * 86400.0  # defaultTraceQueryLookbackDuration
_GO_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0,
          "d": 86400.0}


class BadQuery(ValueError):
    pass


class Jaeger:
    def __init__(self, pod: Obj, container: Obj) -> None:
        self.pod = pod
        self.base = BASE_PATH
        for env in container.get("env") or []:
            if env.get("name") == "QUERY_BASE_PATH":
                self.base = "/" + str(env.get("value") or "").strip("/")
        self.base = "" if self.base == "/" else self.base

    def handle(self, ctx: AppContext, req: AppRequest) -> AppResponse:
        ctx.spend(0.3, 2.0)
        path = req.path_only
        if not path.startswith(f"{self.base}/") and path != self.base:
            return _not_found()
        path = path[len(self.base):] or "/"
        try:
            return self._route(ctx, path, req)
        except BadQuery as exc:
            return _errors(400, str(exc))

    def _route(self, ctx: AppContext, path: str, req: AppRequest) -> AppResponse:
        spans = self._spans(ctx)
        if path in ("/", "/search"):
            return text_response("<!doctype html><html><head><title>Jaeger UI</title></head>"
                                 "<body></body></html>")
        if path == "/api/services":
            return _ok(sorted({s.service for s in spans}))
        found = re.fullmatch(r"/api/services/([^/]+)/operations", path)
        if found:
            return _ok(sorted({s.operation for s in spans if s.service == found.group(1)}))
        if path == "/api/operations":
            params = dict(req.query)
            service, kind = params.get("service") or "", params.get("spanKind") or ""
            if not service:
                raise BadQuery("parameter 'service' is required")
            ops = {(s.operation, _tag(s, "span.kind")) for s in spans if s.service == service
                   and (not kind or _tag(s, "span.kind") == kind)}
            return _ok([{"name": n, "spanKind": k} for n, k in sorted(ops)])
        if path == "/api/traces":
            return self._search(ctx, spans, req.query)
        found = re.fullmatch(r"/api/traces/([^/]+)", path)
        if found:
            trace = _by_id(spans, _trace_id(found.group(1)))
            if not trace:
                return _errors(404, "trace not found")
            return _ok([trace_json(trace)], total=False)
        return _not_found()

    def _spans(self, ctx: AppContext) -> list[Span]:
        key = f"{self.pod['metadata'].get('namespace') or 'default'}/{self.pod['metadata']['name']}"
        return store_of(ctx.runtime).delivered_to(key, ctx.now)

    def _search(self, ctx: AppContext, spans: list[Span], query: list[tuple[str, str]]
                ) -> AppResponse:
        params = dict(query)
        service = params.get("service") or ""
        operation = params.get("operation") or ""
        start = _micros(params.get("start"), "start", ctx.now - DEFAULT_LOOKBACK)
        end = _micros(params.get("end"), "end", ctx.now)
        tags = _tags(query)
        limit = DEFAULT_LIMIT
        if params.get("limit"):
            try:
                limit = int(params["limit"])
            except ValueError:
                raise BadQuery(f'strconv.ParseInt: parsing "{params["limit"]}": invalid '
                               "syntax") from None
        low = _duration(params.get("minDuration"), "minDuration")
        high = _duration(params.get("maxDuration"), "maxDuration")
        ids = [_trace_id(v) for k, v in query if k == "traceID"]
        if not ids and not service:
            raise BadQuery("parameter 'service' is required")
        if low and high and high < low:
            raise BadQuery("'maxDuration' should be greater than 'minDuration'")
        if ids:
            found = [t for t in (_by_id(spans, i) for i in ids) if t]
            return _ok([trace_json(t) for t in found], total=False)
        by_trace: dict[str, list[Span]] = {}
        for span in spans:
            by_trace.setdefault(span.trace_id, []).append(span)
        hits = []
        for trace_spans in by_trace.values():
            if any(_matches(s, service, operation, tags, low, high, start, end)
                   for s in trace_spans):
                hits.append(trace_spans)
        hits.sort(key=lambda t: min(s.start for s in t), reverse=True)
        return _ok([trace_json(t) for t in hits[:limit]], total=False)


def _matches(span: Span, service: str, operation: str, tags: dict[str, str],
             low: float | None, high: float | None, start: float, end: float) -> bool:
    if span.service != service or (operation and span.operation != operation):
        return False
    if not start <= span.start <= end:
        return False
    if (low is not None and span.duration < low) or (high is not None and span.duration > high):
        return False
    have = dict(span.tags)
    return all(have.get(k) == v for k, v in tags.items())


def trace_json(spans: list[Span]) -> Obj:
    """One trace in Jaeger's JSON model."""
    ordered = sorted(spans, key=lambda s: (s.start, s.span_id))
    processes: dict[str, str] = {}
    ids = {s.span_id for s in ordered}
    out = []
    for span in ordered:
        pid = next((p for p, name in processes.items() if name == span.service), None)
        if pid is None:
            pid = f"p{len(processes) + 1}"
            processes[pid] = span.service
        refs = ([{"refType": "CHILD_OF", "traceID": span.trace_id, "spanID": span.parent_id}]
                if span.parent_id else [])
        warnings = None
        if span.parent_id and span.parent_id not in ids:
            warnings = [f"invalid parent span IDs={span.parent_id}; skipping clock skew "
                        "adjustment"]
        out.append({"traceID": span.trace_id, "spanID": span.span_id, "flags": 1,
                    "operationName": span.operation, "references": refs,
                    "startTime": int(span.start * 1e6), "duration": int(span.duration * 1e6),
                    "tags": [{"key": k, "type": "string", "value": v} for k, v in
                             (*span.tags, ("internal.span.format", span.format))],
                    "logs": [], "processID": pid, "warnings": warnings})
    return {"traceID": ordered[0].trace_id, "spans": out,
            "processes": {p: {"serviceName": name, "tags": []} for p, name in processes.items()},
            "warnings": None}


def _tag(span: Span, key: str) -> str:
    return dict(span.tags).get(key, "")


def _tags(query: list[tuple[str, str]]) -> dict[str, str]:
    tags: dict[str, str] = {}
    for key, value in query:
        if key == "tags":
            try:
                parsed = json.loads(value)
            except ValueError as exc:
                raise BadQuery("malformed 'tags' parameter, cannot unmarshal JSON: "
                               f"{exc}") from None
            if not isinstance(parsed, dict) or not all(isinstance(v, str)
                                                       for v in parsed.values()):
                raise BadQuery("malformed 'tags' parameter, cannot unmarshal JSON: json: "
                               "cannot unmarshal into Go value of type map[string]string")
            tags.update(parsed)
        elif key == "tag":
            name, sep, val = value.partition(":")
            if not sep:
                raise BadQuery(f"malformed 'tag' parameter, expecting key:value, received: "
                               f"{value}")
            tags[name] = val
    return tags


def _duration(raw: str | None, name: str) -> float | None:
    if not raw:
        return None
    parts = _GO_DURATION.findall(raw)
    if not parts or "".join(n + u for n, u in parts) != raw:
        raise BadQuery(f"unable to parse param '{name}': time: invalid duration \"{raw}\"")
    return sum(float(n) * _UNITS[u] for n, u in parts)


def _micros(raw: str | None, name: str, default: float) -> float:
    if not raw:
        return default
    try:
        return int(raw) / 1e6
    except ValueError:
        raise BadQuery(f"unable to parse param '{name}': strconv.ParseInt: parsing "
                       f"\"{raw}\": invalid syntax") from None


def _trace_id(raw: str) -> str:
    if not re.fullmatch(r"[0-9a-fA-F]{1,32}", raw):
        raise BadQuery(f"strconv.ParseUint: parsing \"{raw}\": invalid syntax")
    return raw.lower().rjust(32, "0")


def _by_id(spans: list[Span], trace_id: str) -> list[Span]:
    return [s for s in spans if s.trace_id.rjust(32, "0") == trace_id]


def _ok(data: Any, total: bool = True) -> AppResponse:
    """Jaeger's structuredResponse (``total`` is set for services and operations only)."""
    return json_response({"data": data, "total": len(data) if total else 0,
                          "limit": 0, "offset": 0, "errors": None})


def _errors(code: int, message: str) -> AppResponse:
    return json_response({"data": None, "total": 0, "limit": 0, "offset": 0,
                          "errors": [{"code": code, "msg": message}]}, status=code)


def _not_found() -> AppResponse:
    return text_response("404 page not found\n", status=404,
                         content_type="text/plain; charset=utf-8")

