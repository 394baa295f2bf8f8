"""A client of Jaeger's query HTTP API (the ``/api`` the UI uses), as the 1.26 addon serves it.

The addon (``jaegertracing/all-in-one:1.67.0``) serves it under ``QUERY_BASE_PATH=/jaeger``
on 16686 (Service ``tracing`` port 80). Answers are Jaeger's structured response
``{data, total, limit, offset, errors}``; a trace is ``{traceID, spans, processes,
warnings}``. :class:`Trace` reads one the way the UI shows it: spans with their service,
kind, parent and tags.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx

from pytest_istiolab.observability.http import AddonClient, AddonError

Obj = dict[str, Any]
BASE_PATH = "/jaeger"


class JaegerError(AddonError):
    """Jaeger answered with ``errors`` (or not with JSON)."""

    addon = "Jaeger"


@dataclass(frozen=True)
class SpanView:
    span_id: str
    parent_id: str | None
    service: str
    operation: str
    tags: dict[str, Any]
    start_us: int
    duration_us: int

    @property
    def kind(self) -> str:
        return str(self.tags.get("span.kind", ""))


@dataclass(frozen=True)
class Trace:
    trace_id: str
    spans: tuple[SpanView, ...]
    raw: Obj

    @classmethod
    def of(cls, raw: Obj) -> Trace:
        processes = {pid: str(p.get("serviceName", "")) for pid, p in
                     (raw.get("processes") or {}).items()}
        spans = []
        for span in raw.get("spans") or []:
            parent = next((r.get("spanID") for r in span.get("references") or []
                           if r.get("refType") == "CHILD_OF"), None)
            tags = {t.get("key"): t.get("value") for t in span.get("tags") or []}
            spans.append(SpanView(str(span.get("spanID")), parent,
                                  processes.get(span.get("processID"), ""),
                                  str(span.get("operationName", "")), tags,
                                  int(span.get("startTime") or 0),
                                  int(span.get("duration") or 0)))
        return cls(str(raw.get("traceID", "")), tuple(spans), raw)

    @property
    def services(self) -> set[str]:
        return {s.service for s in self.spans}

    def by_id(self) -> dict[str, SpanView]:
        return {s.span_id: s for s in self.spans}

    def roots(self) -> list[SpanView]:
        ids = self.by_id()
        return [s for s in self.spans if s.parent_id is None or s.parent_id not in ids]

    def edges(self) -> set[tuple[tuple[str, str], tuple[str, str]]]:
        """(parent service, kind) -> (child service, kind) for every CHILD_OF in the trace."""
        ids = self.by_id()
        return {((ids[s.parent_id].service, ids[s.parent_id].kind), (s.service, s.kind))
                for s in self.spans if s.parent_id in ids}

    def warnings(self) -> list[str]:
        found = list(self.raw.get("warnings") or [])
        for span in self.raw.get("spans") or []:
            found += list(span.get("warnings") or [])
        return found


class Jaeger(AddonClient):
    error = JaegerError

    def __init__(self, base_url: str, timeout: float = 10.0, base_path: str = BASE_PATH) -> None:
        super().__init__(base_url.rstrip("/") + base_path, timeout)

    def api(self, path: str, params: Any = None) -> Any:
        """GET ``<base>/api/<path>``: its ``data``, or :class:`JaegerError`."""
        return self.json(f"/api/{path}", params).get("data")

    def error_message(self, response: httpx.Response, body: Any) -> str | None:
        errors = body.get("errors") if isinstance(body, dict) else None
        if not errors and response.status_code == 200 and isinstance(body, dict):
            return None
        errors = errors or [{"msg": response.reason_phrase}]
        return "; ".join(str(e.get("msg")) for e in errors)

    def services(self) -> list[str]:
        return list(self.api("services") or [])

    def operations(self, service: str) -> list[str]:
        return list(self.api(f"services/{service}/operations") or [])

    def traces(self, service: str, *, operation: str | None = None,
               tags: dict[str, str] | None = None, limit: int = 20,
               min_duration: str | None = None, start_us: int | None = None,
               end_us: int | None = None) -> list[Trace]:
        """The UI's Find Traces: service, operation, tags, limit, min duration. The UI turns
        its Lookback into ``start``/``end`` from the browser's clock; without them the server
        searches its own last 2 days, which is what the suite wants (no clock to agree on)."""
        params: dict[str, str] = {"service": service, "limit": str(limit)}
        if start_us is not None:
            params["start"] = str(start_us)
        if end_us is not None:
            params["end"] = str(end_us)
        if operation:
            params["operation"] = operation
        if tags:
            params["tags"] = json.dumps(tags)
        if min_duration:
            params["minDuration"] = min_duration
        return [Trace.of(t) for t in self.api("traces", params) or []]

    def trace(self, trace_id: str) -> Trace:
        data = self.api(f"traces/{trace_id}") or []
        if not data:
            raise JaegerError(404, f"trace {trace_id} not found")
        return Trace.of(data[0])

    def ready(self) -> bool:
        try:
            return self.client.get("/api/services").status_code == 200
        except httpx.HTTPError:
            return False
