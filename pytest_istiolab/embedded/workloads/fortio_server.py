"""``fortio server`` (the ``fortio/fortio`` image's own command): its HTTP echo server on 8080.

Modelled, as fortio's ``EchoHandler`` answers: any path echoes the request body with status
200, ``?status=N`` answers N, ``?delay=D`` waits D (at most 1.5 s, fortio's default
``max-echo-delay``), ``?size=N`` answers N bytes; ``/debug`` prints the request as text;
``/fortio/`` serves a small placeholder of the web UI. Not modelled: the UI's forms and
REST API, the gRPC ping server on 8079, the TCP/UDP echo servers, redirect, proxies; the
server writes no log lines per request.
"""

from __future__ import annotations

import re
from typing import Any

from ..mesh.flow import http_date
from ..mesh.headers import Headers
from .base import AppContext, AppRequest, AppResponse

Obj = dict[str, Any]
MAX_DELAY = 1.5
VERSION = "1.69.5"


class FortioServer:
    def __init__(self, pod: Obj, container: Obj) -> None:
        self.pod = pod

    def handle(self, ctx: AppContext, req: AppRequest) -> AppResponse:
        ctx.spend(0.05, 0.3)
        if req.path_only == "/debug":
            answer = _debug(ctx, req)
        elif req.path_only.startswith("/fortio"):
            answer = _ui()
        else:
            answer = _echo(ctx, req)
        answer.headers.set("Date", http_date(ctx.now))
        answer.headers.set("Content-Length", str(len(answer.body)))
        return answer


def _echo(ctx: AppContext, req: AppRequest) -> AppResponse:
    params = dict(req.query)
    status = int(params["status"]) if params.get("status", "").isdigit() else 200
    delay = _seconds(params.get("delay", ""))
    if delay:
        ctx.wait(min(delay, MAX_DELAY))
    body = req.body
    if params.get("size", "").isdigit():
        body = b"\x00" * min(int(params["size"]), 256 * 1024)
    headers = Headers([("Content-Type", "application/octet-stream")]) if body else Headers()
    return AppResponse(status, headers, body)


def _seconds(raw: str) -> float:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s)?", raw)
    if not match:
        return 0.0
    return float(match.group(1)) * (0.001 if match.group(2) == "ms" else 1.0)


def _debug(ctx: AppContext, req: AppRequest) -> AppResponse:
    lines = [f"Φορτίο version {VERSION} echo debug server on {ctx.pod_name}", "",
             f"Request from {req.remote_ip}:{req.remote_port} https false", "",
             f"{req.method} {req.path} HTTP/1.1", "", "headers:", "",
             f"Host: {req.authority}"]
    lines += [f"{name}: {value}" for name, value in req.headers]
    lines += ["", "body:", "", req.body.decode("utf-8", "replace"), ""]
    return AppResponse(200, Headers([("Content-Type", "text/plain; charset=UTF-8")]),
                       "\n".join(lines).encode())


def _ui() -> AppResponse:
    page = (f"<!DOCTYPE html>\n<html><head><title>Φορτίο v{VERSION}</title></head>\n"
            "<body><h1>Φορτίο (fortio)</h1><p>The embedded cluster serves no UI forms.</p>"
            "</body></html>\n")
    return AppResponse(200, Headers([("Content-Type", "text/html; charset=UTF-8")]),
                       page.encode())
