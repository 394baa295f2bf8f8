"""Public hosts the labs call from inside the cluster: ``httpbin.org`` (Labs 3.4, 3.6).

httpbin.org runs the Python httpbin (gunicorn 19.9.0) behind an AWS load balancer: header
names arrive Title-Cased, the load balancer adds ``X-Amzn-Trace-Id`` and appends the
caller's address to ``X-Forwarded-For``, and httpbin hides its "environment" headers
(``X-Forwarded-*``, ``X-Request-Id``, ``Via`` …) from ``/headers`` and ``/get``.
``origin`` is the forwarded chain, so a request through the egress gateway shows the
sleep pod's IP and the cluster's public address (L3.6-C08). Latency is that of the
Internet: a few hundred milliseconds (plus N s for ``/delay/N``, at most 10, as httpbin caps it).
"""

from __future__ import annotations

import json
import re
from typing import Any

from ..mesh.flow import Peer, http_date
from ..mesh.headers import Headers
from ..mesh.model import Request
from ..mesh.state import MeshState
from .base import AppResponse

HIDDEN = {"x-varnish", "x-request-start", "x-heroku-queue-depth", "x-real-ip",
          "x-forwarded-proto", "x-forwarded-protocol", "x-forwarded-ssl",
          "x-heroku-queue-wait-time", "x-forwarded-for", "x-heroku-dynos-in-use",
          "x-forwarded-port", "x-request-id", "via", "total-route-time", "connect-time"}


def handle(host: str, request: Request, seen_from: Peer, now: float,
           noise: MeshState) -> tuple[AppResponse, float]:
    """The answer of public ``host`` to a request sent at ``now``, and how long it took."""
    if host != "httpbin.org":  # pragma: no cover - internet.PUBLIC_HOSTS lists only httpbin.org
        raise NotImplementedError(f"public host {host} has no behaviour in the embedded cluster")
    took = noise.jitter(180.0, 650.0)
    delay = _delay_of(request.path_only)
    answer = python_httpbin(request, seen_from, noise, now)
    if delay is not None and answer.status == 200:
        took += delay  # httpbin sleeps before answering: the Internet's latency plus N s
    answer.headers.set("Date", http_date(now + took))
    return answer, took


def python_httpbin(request: Request, seen_from: Peer, noise: MeshState,
                   now: float) -> AppResponse:
    headers = _received(request, seen_from, noise, now)
    forwarded = headers.get("X-Forwarded-For")
    origin = forwarded if forwarded else seen_from.ip
    shown = {k: v for k, v in headers.items() if k.lower() not in HIDDEN}
    path = request.path_only
    url = f"http://{request.authority}{request.path}"
    status_match = re.fullmatch(r"/status/(\d{3})", path)
    if path == "/headers":
        return _json({"headers": shown})
    if path == "/ip":
        return _json({"origin": origin})
    if path == "/user-agent":
        return _json({"user-agent": shown.get("User-Agent", "")})
    if path in ("/get", "/anything") or path.startswith("/anything/"):
        return _json({"args": dict(request.query), "headers": shown, "origin": origin,
                      "url": url})
    if status_match:
        return AppResponse(int(status_match.group(1)), _base("text/html; charset=utf-8", 0))
    if _delay_of(path) is not None:
        data = request.body.decode("utf-8", "replace")
        return _json({"args": dict(request.query), "data": data, "files": {}, "form": {},
                      "headers": shown, "origin": origin, "url": url})
    body = (b"<!DOCTYPE HTML PUBLIC \"-//W3C//DTD HTML 3.2 Final//EN\">\n<title>404 Not Found"
            b"</title>\n<h1>Not Found</h1>\n<p>The requested URL was not found on the server."
            b"  If you entered the URL manually please check your spelling and try again.</p>\n")
    return AppResponse(404, _base("text/html", len(body)), body)


MAX_DELAY = 10.0  # httpbin caps /delay/N at 10 seconds


def _delay_of(path: str) -> float | None:
    """``/delay/N`` (N seconds, fractions allowed, at most 10); None for other paths."""
    match = re.fullmatch(r"/delay/([0-9]+(?:\.[0-9]*)?|\.[0-9]+)", path)
    return min(float(match.group(1)), MAX_DELAY) if match else None


def _received(request: Request, seen_from: Peer, noise: MeshState,
              now: float) -> dict[str, str]:
    """Headers as httpbin's Flask sees them behind the load balancer (Title-Case names)."""
    out: dict[str, str] = {"Host": request.authority}
    for name, value in request.headers:
        out[_title(name)] = value
    chain = out.get("X-Forwarded-For")
    out["X-Forwarded-For"] = f"{chain}, {seen_from.ip}" if chain else seen_from.ip
    out["X-Amzn-Trace-Id"] = f"Root=1-{int(now):08x}-{noise.hex_id(12)}"
    return dict(sorted(out.items()))


def _title(name: str) -> str:
    return "-".join(part.capitalize() for part in name.split("-"))


def _base(content_type: str, length: int) -> Headers:
    return Headers([("Date", ""), ("Content-Type", content_type), ("Content-Length", str(length)),
                    ("Connection", "keep-alive"), ("Server", "gunicorn/19.9.0"),
                    ("Access-Control-Allow-Origin", "*"),
                    ("Access-Control-Allow-Credentials", "true")])


def _json(value: Any) -> AppResponse:
    body = (json.dumps(value, indent=2, sort_keys=True) + "\n").encode()
    headers = _base("application/json", len(body))
    return AppResponse(200, headers, body)
