"""Istio's helloworld sample (``istio/examples-helloworld-v1``/``-v2``): Flask on port 5000.

Modelled as ``samples/helloworld/src/app.py`` answers: ``GET /hello`` does about 100 ms of
CPU work and returns ``Hello version: v1, instance: <pod name>`` (the version from the
image's ``SERVICE_VERSION``, the instance from ``HOSTNAME``, which is the pod name) with
``text/html; charset=utf-8``; ``/health`` says ``Helloworld is healthy``; anything else is
Flask's 404 page. Not modelled: the gunicorn start-up log lines.
"""

from __future__ import annotations

from typing import Any

from ..mesh.flow import http_date
from ..mesh.headers import Headers
from .base import AppContext, AppRequest, AppResponse
from .kinds import image_version

Obj = dict[str, Any]
HTML = "text/html; charset=utf-8"
NOT_FOUND = (b'<!doctype html>\n<html lang=en>\n<title>404 Not Found</title>\n'
             b'<h1>Not Found</h1>\n<p>The requested URL was not found on the server. If you '
             b'entered the URL manually please check your spelling and try again.</p>\n')


class Helloworld:
    def __init__(self, pod: Obj, container: Obj) -> None:
        self.pod, self.container = pod, container
        self.version = _env(container, "SERVICE_VERSION") or \
            image_version(str(container.get("image", ""))) or "v1"

    def handle(self, ctx: AppContext, req: AppRequest) -> AppResponse:
        if req.path_only == "/hello":
            ctx.spend(90, 130)  # the sample's sqrt loop
            status, body = 200, (f"Hello version: {self.version}, instance: "
                                 f"{self.pod['metadata']['name']}\n").encode()
        elif req.path_only == "/health":
            ctx.spend(0.5, 1.5)
            status, body = 200, b"Helloworld is healthy"
        else:
            ctx.spend(0.5, 1.5)
            status, body = 404, NOT_FOUND
        headers = Headers([("Server", "gunicorn"), ("Date", http_date(ctx.now)),
                           ("Content-Type", HTML), ("Content-Length", str(len(body)))])
        return AppResponse(status, headers, body)


def _env(container: Obj, name: str) -> str | None:
    for env in container.get("env") or []:
        if env.get("name") == name and env.get("value"):
            return str(env["value"])
    return None
