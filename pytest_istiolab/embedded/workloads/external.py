"""Public hosts the labs call from inside the cluster: ``httpbin.org`` (Labs 3.4, 3.6).

httpbin.org runs the Python httpbin (gunicorn 19.9.0) behind an AWS load balancer: header
names arrive Title-Cased, the load balancer adds ``X-Amzn-Trace-Id`` and appends the
caller's address to ``X-Forwarded-For``, and httpbin hides its "environment" headers
(``X-Forwarded-*``, ``X-Request-Id``, ``Via`` …) from ``/headers`` and ``/get``.
``origin`` is the forwarded chain, so a request through the egress gateway shows the
sleep pod's IP and the cluster's public address (L3.6-C08). Latency is that of the
Internet: a few hundred milliseconds (plus N s for ``/delay/N``, at most 10, as httpbin caps it).

The routes are the Python httpbin's (:func:`.python_httpbin.route`, the same app): ``/get``
(GET/HEAD/OPTIONS, else 405), ``/anything[/…]`` (any method; ``data``, ``files``, ``form``,
``json``, ``method``), ``/headers``, ``/ip``, ``/user-agent``, ``/status/N`` (weighted
``/status/200:3,500:1``; the teapot, ``Location`` and ``WWW-Authenticate`` where httpbin sets
them), ``/delay/N``, ``/post`` ``/put`` ``/patch`` ``/delete``; JSON is Flask's pretty
``jsonify`` (lines end in ``", "``). Response headers in the load balancer's order: ``Date``,
``Content-Type``, ``Content-Length``, ``Connection``, ``Server``, then httpbin's own and CORS.
"""

from __future__ import annotations

from ..mesh.flow import Peer, http_date
from ..mesh.headers import Headers
from ..mesh.model import Request
from ..mesh.state import MeshState
from .base import AppRequest, AppResponse
from .python_httpbin import GUNICORN, route

BALANCER_IP = "172.31.12.45"  # the load balancer's private address, as gunicorn sees it


def handle(host: str, request: Request, seen_from: Peer, now: float,
           noise: MeshState) -> tuple[AppResponse, float]:
    """The answer of public ``host`` to a request sent at ``now``, and how long it took."""
    if host != "httpbin.org":  # pragma: no cover - internet.PUBLIC_HOSTS lists only httpbin.org
        raise NotImplementedError(f"public host {host} has no behaviour in the embedded cluster")
    waited: list[float] = []
    answer = route(behind_balancer(request, seen_from, noise, now), noise.noise, waited.append)
    took = noise.jitter(180.0, 650.0) + sum(waited)  # the Internet's latency, plus /delay/N
    head = Headers([("Date", http_date(now + took))])
    head.add("Content-Type", answer.headers.get("Content-Type") or "text/html; charset=utf-8")
    head.add("Content-Length", str(len(answer.body)))
    head.add("Connection", "keep-alive")
    head.add("Server", f"gunicorn/{GUNICORN}")
    for name, value in answer.headers:
        if name.lower() != "content-type":
            head.add(name, value)
    head.add("Access-Control-Allow-Origin", "*")
    head.add("Access-Control-Allow-Credentials", "true")
    answer.headers = head
    return answer, took


def behind_balancer(request: Request, seen_from: Peer, noise: MeshState,
                    now: float) -> AppRequest:
    """The request as httpbin's gunicorn gets it from the AWS load balancer."""
    headers = Headers()
    for name, value in request.headers:
        if name.lower() not in ("x-forwarded-for", "x-forwarded-proto", "x-forwarded-port"):
            headers.add(_title(name), value)
    chain = request.headers.get("x-forwarded-for")
    headers.set("X-Forwarded-For", f"{chain}, {seen_from.ip}" if chain else seen_from.ip)
    headers.set("X-Forwarded-Proto", request.scheme)
    headers.set("X-Forwarded-Port", "443" if request.scheme == "https" else "80")
    headers.set("X-Amzn-Trace-Id", f"Root=1-{int(now):08x}-{noise.hex_id(12)}")
    return AppRequest(request.method, request.path, request.authority, headers, request.body,
                      BALANCER_IP, noise.ephemeral_port(), 80)


def _title(name: str) -> str:
    return "-".join(part.capitalize() for part in name.split("-"))
