"""Bookinfo productpage 1.20.x (Flask under gunicorn), as ``productpage.py`` behaves.

* ``GET /productpage``: details ``http://details:9080/details/0`` (timeout 3 s) and reviews
  ``http://reviews:9080/reviews/0`` (timeout 3 s, tried twice: the deliberate "bug" kept for
  the fault-injection task), rendered with :mod:`bookinfo_html`;
* forwarded headers: the B3 context as its OpenTelemetry ``B3MultiFormat`` propagator
  extracts and re-injects it (``x-b3-traceid``, ``x-b3-spanid``, ``x-b3-sampled``; no parent
  id, and nothing when no valid context came in), ``end-user`` from the Flask session (never
  from the client's own ``end-user`` header), and
  ``x-request-id``, ``user-agent``, ``cookie``, ``authorization``, ``jwt`` and the other
  tracing headers as received;
* ``POST /login`` (form ``username``) stores the user in the signed ``session`` cookie and
  redirects to the ``Referer`` (``redirect(request.referrer)``: with no Referer, Flask 3.1 /
  werkzeug answer 302 ``Location: None`` and still set the session); ``GET /logout``
  clears it (the same redirect); ``/health``; ``/``; ``/static/...``;
  ``/api/v1/products[/<id>[/reviews|/ratings]]``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from typing import Any

from ..mesh.flow import http_date
from ..mesh.headers import Headers
from . import bookinfo_html as html
from .base import AppContext, AppRequest, AppResponse

Obj = dict[str, Any]
SECRET = b'_5#y2L"F4Q8z\n\xec]/'  # the sample's Flask secret_key
FORWARDED = ("x-request-id", "x-ot-span-context", "x-datadog-trace-id", "x-datadog-parent-id",
             "x-datadog-sampling-priority", "traceparent", "tracestate", "x-cloud-trace-context",
             "grpc-trace-bin", "sw8", "user-agent", "cookie", "authorization", "jwt")
PRODUCTS = [{"id": 0, "title": "The Comedy of Errors", "descriptionHtml": html.DESCRIPTION}]
DETAILS_ERROR = "Sorry, product details are currently unavailable for this book."
REVIEWS_ERROR = "Sorry, product reviews are currently unavailable for this book."
RATINGS_ERROR = "Sorry, product ratings are currently unavailable for this book."
STATIC = {"/static/tailwind/tailwind.css": ("application/javascript", b"/* tailwindcss */\n"),
          "/static/img/izzy.png": ("image/png", b"\x89PNG\r\n\x1a\n")}


class Productpage:
    def __init__(self, pod: Obj, container: Obj) -> None:
        self.pod = pod

    def handle(self, ctx: AppContext, req: AppRequest) -> AppResponse:
        ctx.spend(2.0, 6.0)
        answer = self._route(ctx, req)
        answer.headers.add("Server", "gunicorn")
        answer.headers.add("Date", http_date(ctx.now))
        answer.headers.set("Content-Length", str(len(answer.body)))
        return answer

    def _route(self, ctx: AppContext, req: AppRequest) -> AppResponse:
        path, method = req.path_only, req.method
        if path in ("/", "/index.html"):
            return _html(html.index_page())
        if path == "/health":
            return _html("Product page is healthy")
        if path == "/login":
            return self._login(ctx, req) if method == "POST" else _html(html.flask_error(405), 405)
        if path == "/logout":
            return _logout(req)
        if path == "/productpage":
            return self._page(ctx, req)
        if path.startswith("/static/"):
            return _static(path)
        if path.startswith("/api/v1/products"):
            return self._api(ctx, req, path[len("/api/v1/products"):])
        return _html(html.flask_error(404), 404)

    # ------------------------------------------------------------------ pages
    def _page(self, ctx: AppContext, req: AppRequest) -> AppResponse:
        headers = forward_headers(ctx, req)
        details_status, details = self._details(ctx, headers, "0")
        reviews_status, reviews = self._reviews(ctx, headers, "0")
        ctx.spend(3.0, 8.0)  # template rendering
        return _html(html.productpage(session_user(req), details_status, details,
                                      reviews_status, reviews))

    def _login(self, ctx: AppContext, req: AppRequest) -> AppResponse:
        user = req.form().get("username") or dict(req.query).get("username") or ""
        answer = _redirect(_referrer(req))
        cookie = sign_session({"user": user}, int(ctx.now))
        answer.headers.add("Set-Cookie", f"session={cookie}; HttpOnly; Path=/")
        return answer

    def _api(self, ctx: AppContext, req: AppRequest, rest: str) -> AppResponse:
        parts = [p for p in rest.split("/") if p]
        if not parts:
            return _json(PRODUCTS)
        headers = forward_headers(ctx, req)
        if len(parts) == 1:
            status, value = self._details(ctx, headers, parts[0])
        elif len(parts) == 2 and parts[1] == "reviews":
            status, value = self._reviews(ctx, headers, parts[0])
        elif len(parts) == 2 and parts[1] == "ratings":
            status, value = self._call(ctx, headers, "ratings", parts[0], RATINGS_ERROR)
        else:
            return _html(html.flask_error(404), 404)
        return _json(value, status)

    # -------------------------------------------------------------- back ends
    def _details(self, ctx: AppContext, headers: Headers, product: str) -> tuple[int, Obj]:
        return self._call(ctx, headers, "details", product, DETAILS_ERROR)

    def _reviews(self, ctx: AppContext, headers: Headers, product: str) -> tuple[int, Obj]:
        status, value = 500, {"error": REVIEWS_ERROR}
        for _ in range(2):  # productpage retries reviews once, on purpose
            status, value = self._call(ctx, headers, "reviews", product, REVIEWS_ERROR)
            if status == 200:
                break
        return status, value

    @staticmethod
    def _call(ctx: AppContext, headers: Headers, service: str, product: str,
              error: str) -> tuple[int, Obj]:
        url = f"http://{service}:9080/{service}/{product}"
        answer = ctx.call("GET", url, headers, timeout=3.0)
        if answer.failure is None:
            ctx.log(f'DEBUG:urllib3.connectionpool:http://{service}:9080 "GET /{service}/'
                    f'{product} HTTP/1.1" {answer.status} {len(answer.body)}')
        if answer.failure is None and answer.status == 200:
            try:
                return 200, json.loads(answer.body)
            except ValueError:
                pass
        status = answer.status if answer.failure is None and answer.status else 500
        return status, {"error": error}


def forward_headers(ctx: AppContext, req: AppRequest) -> Headers:
    """getForwardHeaders(): the B3 context re-injected, end-user from the session, selected
    headers."""
    out = b3_reinjected(req.headers)
    user = session_user(req)
    if user:
        out.add("end-user", user)
    for name in FORWARDED:
        value = req.headers.get(name)
        if value is not None:
            out.add(name, value)
    out.setdefault("User-Agent", "python-requests/2.32.3")
    out.add("Accept-Encoding", "gzip, deflate")
    out.add("Accept", "*/*")
    return out


# --------------------------------------------------------------- session cookie
def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def sign_session(value: Obj, timestamp: int = 0) -> str:
    """A Flask (itsdangerous) signed session cookie: payload.timestamp.signature."""
    payload = _b64(json.dumps(value, separators=(",", ":")).encode())
    stamp = _b64(timestamp.to_bytes(4, "big"))
    signature = hmac.new(hashlib.sha1(b"cookie-session" + b"signer" + SECRET).digest(),
                         f"{payload}.{stamp}".encode(), hashlib.sha1).digest()
    return f"{payload}.{stamp}.{_b64(signature)}"


def read_session(cookie: str) -> Obj:
    payload, _, rest = cookie.partition(".")
    stamp, _, _ = rest.partition(".")
    try:
        value = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        timestamp = int.from_bytes(base64.urlsafe_b64decode(stamp + "=" * (-len(stamp) % 4)),
                                   "big")
    except (ValueError, TypeError):
        return {}
    if not isinstance(value, dict) or sign_session(value, timestamp) != cookie:
        return {}  # a session Flask did not sign is ignored
    return value


def b3_reinjected(headers: Headers) -> Headers:
    """``B3MultiFormat().inject(headers, B3MultiFormat().extract(incoming))``."""
    out = Headers()
    trace = (headers.get("x-b3-traceid") or "").lower()
    span = (headers.get("x-b3-spanid") or "").lower()
    if not (re.fullmatch(r"[0-9a-f]{16}|[0-9a-f]{32}", trace) and
            re.fullmatch(r"[0-9a-f]{16}", span)) or set(trace) == {"0"}:
        return out
    sampled = headers.get("x-b3-sampled") in ("1", "true") or headers.get("x-b3-flags") == "1"
    out.add("x-b3-traceid", trace.rjust(32, "0"))
    out.add("x-b3-spanid", span)
    out.add("x-b3-sampled", "1" if sampled else "0")
    return out


def session_user(req: AppRequest) -> str:
    return str(read_session(req.cookies().get("session", "")).get("user") or "")


# -------------------------------------------------------------------- answers
def _html(text: str, status: int = 200) -> AppResponse:
    return AppResponse(status, Headers([("Content-Type", "text/html; charset=utf-8")]),
                       text.encode())


def _json(value: Any, status: int = 200) -> AppResponse:
    return AppResponse(status, Headers([("Content-Type", "application/json")]),
                       json.dumps(value).encode())


def _redirect(location: str) -> AppResponse:
    answer = _html(html.flask_redirect(location), 302)
    answer.headers.add("Location", location)
    return answer


def _referrer(req: AppRequest) -> str:
    """``redirect(request.referrer)``: werkzeug escapes and sends ``None`` as written."""
    return req.headers.get("referer") or "None"


def _logout(req: AppRequest) -> AppResponse:
    answer = _redirect(_referrer(req))
    answer.headers.add("Set-Cookie", "session=; Expires=Thu, 01 Jan 1970 00:00:00 GMT; "
                                     "Max-Age=0; HttpOnly; Path=/")
    return answer


def _static(path: str) -> AppResponse:
    if path not in STATIC:
        return _html(html.flask_error(404), 404)
    content_type, body = STATIC[path]
    return AppResponse(200, Headers([("Content-Type", content_type)]), body)
