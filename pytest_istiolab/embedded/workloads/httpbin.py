"""go-httpbin v2.15 (``docker.io/mccutchen/go-httpbin``), the httpbin of the 1.26 samples.

Facts kept: JSON is indented by two spaces with a trailing newline; header values are JSON
arrays under Go-canonical names (``X-B3-Traceid``), keys sorted (catalogue D-08);
``origin`` is the first ``X-Forwarded-For`` entry or the peer address (``127.0.0.6`` behind
a sidecar); every response carries the CORS headers; ``/status/N`` has an empty
``text/plain`` body (special bodies for 418 …); ``/delay/N`` (seconds or Go durations, at
most 10s) answers like ``/anything`` after the delay, with a ``Server-Timing`` header; unknown
paths give ``{"status_code": 404, "error": "Not Found"}``. Listens on 8080 (``$PORT``).
Modelled routes: ``/``, ``/get``, ``/headers``, ``/ip``, ``/user-agent``, ``/uuid``,
``/hostname``, ``/status/{codes}``, ``/delay/{d}``, ``/anything[/...]``, ``/post``, ``/put``,
``/patch``, ``/delete``, ``/response-headers``. Others: 404, as an unknown path would.
"""

from __future__ import annotations

import json
import re
import uuid
from http import HTTPStatus
from typing import Any

from ..mesh.flow import http_date
from ..mesh.headers import Headers
from ..runtime import iso_millis
from .base import AppContext, AppRequest, AppResponse

Obj = dict[str, Any]
JSON = "application/json; charset=utf-8"
TEXT = "text/plain; charset=utf-8"
MAX_DELAY = 10.0
SPECIAL = {418: ("I'm a teapot!", {"X-More-Info": "http://tools.ietf.org/html/rfc2324"}),
           402: ("Fuck you, pay me!", {"X-More-Info": "http://vimeo.com/22053820"}),
           401: ("", {"WWW-Authenticate": 'Basic realm="Fake Realm"'})}
BODY_METHODS = {"/post": "POST", "/put": "PUT", "/patch": "PATCH", "/delete": "DELETE"}


class GoHttpbin:
    def __init__(self, pod: Obj, container: Obj) -> None:
        self.pod = pod

    def handle(self, ctx: AppContext, req: AppRequest) -> AppResponse:
        ctx.spend(0.1, 0.6)
        answer = self._route(ctx, req)
        answer.headers = _finish(answer, ctx.now)
        ctx.log(_log_line(ctx, req, answer))
        return answer

    def _route(self, ctx: AppContext, req: AppRequest) -> AppResponse:
        path, method = req.path_only, req.method
        if path == "/":
            return _html("<!DOCTYPE html>\n<html><head><title>go-httpbin</title></head><body>"
                         "<h1>go-httpbin</h1><p>A golang port of httpbin.</p></body></html>\n")
        if path == "/get":
            return _allow(method, ("GET", "HEAD")) or _json(_echo(req, with_body=False))
        if path == "/headers":
            return _json({"headers": _headers(req)})
        if path == "/ip":
            return _json({"origin": _origin(req)})
        if path == "/user-agent":
            return _json({"user-agent": req.headers.get("user-agent") or ""})
        if path == "/uuid":
            return _json({"uuid": _uuid(ctx)})
        if path == "/hostname":
            return _json({"hostname": "go-httpbin"})
        if path in BODY_METHODS:
            return _allow(method, (BODY_METHODS[path],)) or _json(_echo(req, with_body=True))
        if path == "/anything" or path.startswith("/anything/"):
            return _json(_echo(req, with_body=method != "HEAD"))
        if path == "/response-headers":
            return _response_headers(req)
        status = re.fullmatch(r"/status/([^/]+)", path)
        if status:
            return _status(status.group(1), ctx)
        delay = re.fullmatch(r"/delay/([^/]+)", path)
        if delay:
            return _delay(delay.group(1), ctx, req)
        return _error(404)


def _allow(method: str, allowed: tuple[str, ...]) -> AppResponse | None:
    return None if method in allowed else _error(405)


def canonical(name: str) -> str:
    """Go's textproto.CanonicalMIMEHeaderKey."""
    return "-".join(part[:1].upper() + part[1:].lower() for part in name.split("-"))


def _headers(req: AppRequest) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, value in req.headers:
        if name.lower() not in ("host", "transfer-encoding"):
            out.setdefault(canonical(name), []).append(value)
    out["Host"] = [req.authority]
    return dict(sorted(out.items()))


def _origin(req: AppRequest) -> str:
    forwarded = req.headers.get("x-forwarded-for")
    if forwarded:
        return forwarded.split(",", 1)[0].strip()
    return req.remote_ip


def _url(req: AppRequest) -> str:
    scheme = req.headers.get("x-forwarded-proto") or "http"
    return f"{scheme}://{req.authority}{req.path}"


def _args(req: AppRequest) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, value in req.query:
        out.setdefault(name, []).append(value)
    return dict(sorted(out.items()))


def _echo(req: AppRequest, with_body: bool) -> Obj:
    base: Obj = {"args": _args(req), "headers": _headers(req), "method": req.method,
                 "origin": _origin(req), "url": _url(req)}
    if not with_body:
        return base
    data, parsed = "", None
    form: dict[str, list[str]] = {}
    if req.body:
        data = req.body.decode("utf-8", "replace")
        kind = (req.headers.get("content-type") or "").split(";")[0].strip()
        if kind == "application/x-www-form-urlencoded":
            for name, value in req.form().items():
                form.setdefault(name, []).append(value)
        elif kind == "application/json":
            try:
                parsed = json.loads(data)
            except ValueError:
                return {"status_code": 400, "error": "Bad Request"}
    base.update(data=data, files={}, form=form, json=parsed)
    return dict(sorted(base.items()))


def _status(raw: str, ctx: AppContext) -> AppResponse:
    choices: list[tuple[int, float]] = []
    for part in raw.split(","):
        number, _, weight = part.partition(":")
        if not number.isdigit() or not 100 <= int(number) <= 599:
            return _error(400, f'invalid status code: "{raw}"')
        choices.append((int(number), float(weight) if weight else 1.0))
    code = choices[0][0] if len(choices) == 1 else ctx.runtime.rng.choices(
        [c for c, _ in choices], [w for _, w in choices])[0]
    body, extra = SPECIAL.get(code, ("", {}))
    headers = Headers([("Content-Type", TEXT), *extra.items()])
    return AppResponse(code, headers, body.encode())


def _delay(raw: str, ctx: AppContext, req: AppRequest) -> AppResponse:
    seconds = _duration(raw)
    if seconds is None or seconds < 0 or seconds > MAX_DELAY:
        return _error(400, f"invalid duration: {raw}")
    ctx.wait(seconds)
    answer = _json(_echo(req, with_body=True))
    answer.headers.add("Server-Timing",
                       f'initial_delay;dur={seconds * 1000:.2f};desc="initial delay"')
    return answer


def _duration(raw: str) -> float | None:
    units = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "us": 1e-6, "ns": 1e-9}
    try:
        return float(raw)
    except ValueError:
        pass
    parts = re.findall(r"(\d+(?:\.\d+)?)(ns|us|ms|s|m|h)", raw)
    if not parts or "".join(n + u for n, u in parts) != raw:
        return None
    return sum(float(n) * units[u] for n, u in parts)


def _response_headers(req: AppRequest) -> AppResponse:
    args = _args(req)
    args.setdefault("Content-Type", [JSON])
    answer = _json(args)
    answer.headers.remove("Content-Type")
    for name, values in args.items():
        for value in values:
            answer.headers.add(name, value)
    return answer


def _uuid(ctx: AppContext) -> str:
    return str(uuid.uuid4())


def _json(value: Any, status: int = 200) -> AppResponse:
    body = (json.dumps(value, indent=2, ensure_ascii=False) + "\n").encode()
    return AppResponse(status, Headers([("Content-Type", JSON)]), body)


def _html(text: str) -> AppResponse:
    return AppResponse(200, Headers([("Content-Type", "text/html; charset=utf-8")]), text.encode())


def _error(code: int, detail: str = "") -> AppResponse:
    value: Obj = {"status_code": code, "error": HTTPStatus(code).phrase}
    if detail:
        value["detail"] = detail
    return _json(value, code)


def _finish(answer: AppResponse, now: float) -> Headers:
    """Go's net/http writes header names sorted, adds Date and Content-Length."""
    headers = Headers([("Access-Control-Allow-Credentials", "true"),
                       ("Access-Control-Allow-Origin", "*")])
    for name, value in answer.headers:
        headers.add(name, value)
    headers.set("Date", http_date(now))
    headers.set("Content-Length", str(len(answer.body)))
    return Headers(sorted(headers.items(), key=lambda kv: kv[0]))


def _log_line(ctx: AppContext, req: AppRequest, answer: AppResponse) -> str:
    return (f'time={iso_millis(ctx.now)} level=INFO msg="{answer.status} {req.method} '
            f'{req.path}" status={answer.status} method={req.method} uri={req.path} '
            f"size_bytes={len(answer.body)} user_agent=\"{req.headers.get('user-agent') or ''}\""
            f" client_ip={_origin(req)}")
