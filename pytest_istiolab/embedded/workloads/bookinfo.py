"""Bookinfo 1.20.x back ends: details (Ruby), reviews v1/v2/v3 (Java Liberty), ratings (Node).

Facts from the Bookinfo sources:

* details answers ``/details/<id>`` with the book (compact JSON, ``id`` a number) and
  ``/health`` with ``{"status":"Details is healthy"}``;
* ratings answers ``GET /ratings/<id>`` with ``{"id":<id>,"ratings":{"Reviewer1":5,
  "Reviewer2":4}}``, stores ``POST /ratings/<id>`` in memory, logs ``GET /ratings/0``;
* reviews builds its JSON by string concatenation (``{"id": "0","podname": "<pod>",
  "clustername": "null","reviews": [{  "reviewer": ...``). v1 does not call ratings;
  v2 (black stars) and v3 (red) call ``http://ratings:9080/ratings/<id>`` with a 10 s (black)
  or 2.5 s (other colours) client timeout, forwarding the tracing headers, ``end-user``
  and ``user-agent``; any failure shows ``"Ratings service is currently unavailable"``.
  The version comes from the image name (``examples-bookinfo-reviews-v2``);
  ``ENABLE_RATINGS``/``STAR_COLOR`` env vars override it as in the image.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

from ..mesh.flow import http_date
from ..mesh.headers import Headers
from ..mesh.state import extension
from .base import AppContext, AppRequest, AppResponse, json_response, text_response
from .kinds import image_version

Obj = dict[str, Any]
BOOK = {"author": "William Shakespeare", "year": 1595, "type": "paperback", "pages": 200,
        "publisher": "PublisherA", "language": "English", "ISBN-10": "1234567890",
        "ISBN-13": "123-1234567890"}
REVIEW_TEXT = {
    "Reviewer1": "An extremely entertaining play by Shakespeare. The slapstick humour is "
                 "refreshing!",
    "Reviewer2": "Absolutely fun and entertaining. The play lacks thematic depth when compared "
                 "to other plays by Shakespeare.",
}
PROPAGATED = ("x-request-id", "x-ot-span-context", "x-datadog-trace-id", "x-datadog-parent-id",
              "x-datadog-sampling-priority", "traceparent", "tracestate",
              "x-cloud-trace-context", "grpc-trace-bin", "x-b3-traceid", "x-b3-spanid",
              "x-b3-parentspanid", "x-b3-sampled", "x-b3-flags", "end-user", "user-agent")
UNAVAILABLE = "Ratings service is currently unavailable"


class Details:
    def __init__(self, pod: Obj, container: Obj) -> None:
        self.pod = pod

    def handle(self, ctx: AppContext, req: AppRequest) -> AppResponse:
        ctx.spend(0.5, 2.0)
        answer = self._route(req)
        answer.headers.add("Server", "WEBrick/1.8.1 (Ruby/3.3.0/2023-12-25)")
        answer.headers.add("Date", http_date(ctx.now))
        stamp = datetime.fromtimestamp(ctx.now, UTC).strftime("%d/%b/%Y:%H:%M:%S UTC")
        ctx.log(f'{req.remote_ip} - - [{stamp}] "{req.method} {req.path} HTTP/1.1" '
                f"{answer.status} {len(answer.body)}")
        return answer

    def _route(self, req: AppRequest) -> AppResponse:
        path = req.path_only
        if path == "/health":
            return json_response({"status": "Details is healthy"},
                                 text='{"status":"Details is healthy"}')
        match = re.fullmatch(r"/details(?:/([^/]*))?", path)
        if match is None:
            return text_response(_webrick_not_found(path), 404)
        raw = match.group(1) or ""
        if not raw.lstrip("-").isdigit():
            return json_response({}, 400, text='{"error":"please provide numeric product id"}')
        book = {"id": int(raw), **BOOK}
        return json_response(book, text=json.dumps(book, separators=(",", ":")))


class Ratings:
    def __init__(self, pod: Obj, container: Obj) -> None:
        self.pod = pod

    def handle(self, ctx: AppContext, req: AppRequest) -> AppResponse:
        ctx.spend(0.4, 1.5)
        ctx.log(f"{req.method} {req.path}")
        path = req.path_only
        if path == "/health" and req.method == "GET":
            return _node_json({"status": "Ratings is healthy"})
        if not path.startswith("/ratings/") or req.method not in ("GET", "POST"):
            return AppResponse(404, Headers([("Content-Type", "text/plain")]), b"")
        digits = re.match(r"\d+", req.path.rsplit("/", 1)[1])  # JavaScript parseInt
        if digits is None:
            return _node_json({"error": "please provide numeric product ID"}, 400)
        product = int(digits.group(0))
        stored = extension(ctx.runtime, "bookinfo-ratings", dict)
        key = (self.pod["metadata"].get("uid", ""), product)
        if req.method == "POST":
            try:
                stored[key] = {"id": product, "ratings": json.loads(req.body or b"null")}
            except ValueError:
                return _node_json({"error": "please provide valid ratings JSON"}, 400)
        return _node_json(stored.get(key) or
                          {"id": product, "ratings": {"Reviewer1": 5, "Reviewer2": 4}})


class Reviews:
    def __init__(self, pod: Obj, container: Obj) -> None:
        self.pod = pod
        version = image_version(str(container.get("image", ""))) or "v1"
        env = {e.get("name"): str(e.get("value", "")) for e in container.get("env") or []}
        self.ratings_enabled = env.get("ENABLE_RATINGS", str(version != "v1")).lower() == "true"
        self.color = env.get("STAR_COLOR") or {"v3": "red"}.get(version, "black")
        self.cluster = env.get("CLUSTER_NAME") or "null"

    def handle(self, ctx: AppContext, req: AppRequest) -> AppResponse:
        ctx.spend(1.5, 5.0)
        path = req.path_only
        if path == "/health" and req.method == "GET":
            return self._json('{"status": "Reviews is healthy"}', ctx)
        match = re.fullmatch(r"/reviews/(-?\d+)", path)
        if match is None or req.method != "GET":
            return AppResponse(404, Headers([("Content-Type", "text/plain"),
                                             ("Content-Language", "en-US")]), b"")
        product = str(int(match.group(1)))
        stars = self._ratings(ctx, req, product) if self.ratings_enabled else {}
        return self._json(self._body(ctx.pod_name, product, stars), ctx)

    def _ratings(self, ctx: AppContext, req: AppRequest, product: str) -> dict[str, int]:
        headers = Headers([("Accept", "application/json")])
        for name in PROPAGATED:
            value = req.headers.get(name)
            if value is not None:
                headers.set(name, value)
        headers.setdefault("User-Agent", "Apache-CXF/3.5.5")
        timeout = 10.0 if self.color == "black" else 2.5
        answer = ctx.call("GET", f"http://ratings:9080/ratings/{product}", headers,
                          timeout=timeout)
        if answer.failure is not None or answer.status != 200:
            return {}
        try:
            ratings = json.loads(answer.body).get("ratings") or {}
        except (ValueError, AttributeError):
            return {}
        return {k: int(v) for k, v in ratings.items() if k in REVIEW_TEXT}

    def _body(self, podname: str, product: str, stars: dict[str, int]) -> str:
        parts = []
        for reviewer, text in REVIEW_TEXT.items():
            item = f'{{  "reviewer": "{reviewer}",  "text": "{text}"'
            if self.ratings_enabled:
                if reviewer in stars:
                    item += f', "rating": {{"stars": {stars[reviewer]}, "color": "{self.color}"}}'
                else:
                    item += f', "rating": {{"error": "{UNAVAILABLE}"}}'
            parts.append(item + "}")
        return (f'{{"id": "{product}","podname": "{podname}","clustername": "{self.cluster}",'
                f'"reviews": [{",".join(parts)}]}}')

    @staticmethod
    def _json(text: str, ctx: AppContext) -> AppResponse:
        answer = json_response(None, text=text)
        answer.headers.add("Content-Language", "en-US")
        answer.headers.add("Date", http_date(ctx.now))
        return answer


def _node_json(value: Any, status: int = 200) -> AppResponse:
    body = json.dumps(value, separators=(",", ":")).encode()
    return AppResponse(status, Headers([("Content-type", "application/json"),
                                        ("Content-Length", str(len(body)))]), body)


def _webrick_not_found(path: str) -> str:
    return ('<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 4.0//EN">\n<HTML>\n  <HEAD><TITLE>Not Found'
            "</TITLE></HEAD>\n  <BODY>\n    <H1>Not Found</H1>\n    `" + path + "' not found.\n"
            "    <HR>\n  </BODY>\n</HTML>\n")
