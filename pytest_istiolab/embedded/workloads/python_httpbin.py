"""The Python httpbin of Labs 5.2 and 6 (``docker.io/kennethreitz/httpbin``, Flask on gunicorn).

Facts kept: Flask's pretty ``jsonify`` (two-space indent, ``", "`` item separator so lines
end in a space, sorted keys, a trailing newline); header names as Werkzeug presents them
(``X-B3-Traceid``), values as strings; httpbin hides its "environment" headers
(``X-Forwarded-For``, ``X-Forwarded-Proto``, ``X-Request-Id``, ``Via`` …) from ``/headers``
and ``/get``; ``origin`` is ``X-Forwarded-For`` or the peer address (``127.0.0.6`` behind a
sidecar); responses carry gunicorn's ``Server``, ``Date``, ``Connection`` and the CORS headers;
``/status/418`` is the teapot; ``/delay/N`` waits at most 10 s.

gunicorn 19.9.0 as the manual's command line starts it (``gunicorn --access-logfile - -b
0.0.0.0:80 httpbin:app``): at container start it logs ``Starting gunicorn 19.9.0``,
``Listening at: http://0.0.0.0:80 (1)``, ``Using worker: sync``, ``Booting worker with pid:
N``; with ``--access-logfile -`` every request adds the default access line
``127.0.0.6 - - [26/Nov/2026:03:57:03 +0000] "GET /headers HTTP/1.1" 200 303 "-" "curl/8.14.1"``.
Without that flag (the image's own command) there are no access lines, and the worker class
is the image's ``gevent``. The listening port comes from ``-b``/``--bind`` (80 for
kennethreitz/httpbin, 8000 for citizenstig/httpbin by default).
Modelled routes: ``/``, ``/get``, ``/headers``, ``/ip``, ``/user-agent``, ``/status/{codes}``,
``/delay/{n}``, ``/absolute-redirect/{n}``, ``/anything[/...]``, ``/post``, ``/put``,
``/patch``, ``/delete``; other paths answer Flask's 404 page. ``/absolute-redirect/{n}`` is
httpbin's ``redirect(url_for(..., _external=True))``: a 302 to ``http://<Host>/get`` (or to
``/absolute-redirect/{n-1}``) whose body is Werkzeug 0.14's redirect page, which holds the
URL twice, so its size grows by twice what the request's ``Host`` grows by.
"""

from __future__ import annotations

import html
import json
import random
import re
import zlib
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from ..images import split_image
from ..mesh.flow import http_date
from ..mesh.headers import Headers
from ..runtime import Runtime
from .base import AppContext, AppRequest, AppResponse

Obj = dict[str, Any]
GUNICORN = "19.9.0"
HIDDEN = {"x-varnish", "x-request-start", "x-heroku-queue-depth", "x-real-ip",
          "x-forwarded-proto", "x-forwarded-protocol", "x-forwarded-ssl",
          "x-heroku-queue-wait-time", "x-forwarded-for", "x-heroku-dynos-in-use",
          "x-forwarded-port", "x-request-id", "via", "total-route-time", "connect-time"}
TEAPOT = ('\n    -=[ teapot ]=-\n\n       _...._\n     .\'  _ _ `.\n    | ."` ^ `". _,\n'
          '    \\_;`"---"`|//\n      |       ;/\n      \\_     _/\n        `"""`\n')
NOT_FOUND = ('<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 3.2 Final//EN">\n<title>404 Not Found'
             '</title>\n<h1>Not Found</h1>\n<p>The requested URL was not found on the server.  '
             'If you entered the URL manually please check your spelling and try again.</p>\n')
INDEX = ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n    <meta charset=\"UTF-8\">\n"
         "    <title>httpbin.org</title>\n</head>\n<body>\n<h2>httpbin.org</h2>\n"
         "<p>A simple HTTP Request &amp; Response Service.</p>\n</body>\n</html>\n")
BODY_METHODS = {"/post": "POST", "/put": "PUT", "/patch": "PATCH", "/delete": "DELETE"}
MAX_DELAY = 10.0


# ------------------------------------------------------------------ gunicorn
def gunicorn_args(container: Obj) -> list[str]:
    """The gunicorn command line of the container (the image's own when none is given)."""
    argv = [str(a) for a in (container.get("command") or []) + (container.get("args") or [])]
    if argv and argv[0].rsplit("/", 1)[-1] == "gunicorn":
        return argv[1:]
    repo = split_image(str(container.get("image", "")))[0]
    if repo.endswith("citizenstig/httpbin"):
        return ["-b", "0.0.0.0:8000", "httpbin:app"]
    return ["-b", "0.0.0.0:80", "httpbin:app", "-k", "gevent"]


def _option(args: list[str], short: str, long: str) -> str | None:
    for index, arg in enumerate(args):
        if arg in (short, long) and index + 1 < len(args):
            return args[index + 1]
        if arg.startswith(long + "="):
            return arg.split("=", 1)[1]
        if arg.startswith(short) and len(arg) > len(short) and not arg.startswith("--"):
            return arg[len(short):]
    return None


def bind_address(container: Obj) -> str:
    return _option(gunicorn_args(container), "-b", "--bind") or "127.0.0.1:8000"


def listen_port(container: Obj) -> int:
    port = bind_address(container).rsplit(":", 1)[-1]
    return int(port) if port.isdigit() else 8000


def access_log_on(container: Obj) -> bool:
    return _option(gunicorn_args(container), "--access-logfile", "--access-logfile") == "-"


def worker_pid(pod: Obj) -> int:
    return 7 + zlib.crc32(str(pod["metadata"]["name"]).encode()) % 6


def started(runtime: Runtime, pod: Obj, container: Obj, when: float) -> None:
    """gunicorn's start-up lines (its error log goes to the container's stderr)."""
    stamp = datetime.fromtimestamp(when, UTC).strftime("[%Y-%m-%d %H:%M:%S +0000]")
    worker = _option(gunicorn_args(container), "-k", "--worker-class") or "sync"
    lines = [f"{stamp} [1] [INFO] Starting gunicorn {GUNICORN}",
             f"{stamp} [1] [INFO] Listening at: http://{bind_address(container)} (1)",
             f"{stamp} [1] [INFO] Using worker: {worker}",
             f"{stamp} [{worker_pid(pod)}] [INFO] Booting worker with pid: {worker_pid(pod)}"]
    meta = pod["metadata"]
    runtime.logs.append(str(meta.get("namespace") or "default"), str(meta["name"]),
                        str(container["name"]), "\n".join(lines), when)


# ------------------------------------------------------------------ the app
class PythonHttpbin:
    def __init__(self, pod: Obj, container: Obj) -> None:
        self.pod, self.container = pod, container

    def handle(self, ctx: AppContext, req: AppRequest) -> AppResponse:
        ctx.spend(0.8, 2.5)
        answer = self._route(ctx, req)
        body = b"" if req.method == "HEAD" else answer.body
        head = Headers([("Server", f"gunicorn/{GUNICORN}"), ("Date", http_date(ctx.now)),
                        ("Connection", "keep-alive")])
        for name, value in answer.headers:
            head.add(name, value)
        head.set("Content-Length", str(len(answer.body)))
        head.add("Access-Control-Allow-Origin", "*")
        head.add("Access-Control-Allow-Credentials", "true")
        answer.headers = head
        if access_log_on(self.container):
            ctx.log(access_line(req, answer.status, len(body), ctx.now))
        return answer

    def _route(self, ctx: AppContext, req: AppRequest) -> AppResponse:
        return route(req, ctx.runtime.rng, ctx.wait)


def route(req: AppRequest, rng: random.Random, wait: Callable[[float], None]) -> AppResponse:
    """httpbin's answer to ``req`` (``rng`` picks among weighted codes, ``wait`` is a delay)."""
    path, method = req.path_only, req.method
    if path == "/":
        return _text(INDEX, "text/html; charset=utf-8")
    if path == "/headers":
        return jsonify({"headers": shown_headers(req)})
    if path == "/ip":
        return jsonify({"origin": origin(req)})
    if path == "/user-agent":
        return jsonify({"user-agent": req.headers.get("user-agent") or ""})
    if path == "/get":
        return _allow(method, ("GET", "HEAD", "OPTIONS")) or jsonify(echo(req, False))
    if path in BODY_METHODS:
        return _allow(method, (BODY_METHODS[path],)) or jsonify(echo(req, True))
    if path == "/anything" or path.startswith("/anything/"):
        return jsonify({**echo(req, True), "method": method})
    status = re.fullmatch(r"/status/([^/]+)", path)
    if status:
        return _status(status.group(1), rng)
    delay = re.fullmatch(r"/delay/([^/]+)", path)
    if delay:
        return _delay(delay.group(1), wait, req)
    redirect = re.fullmatch(r"/absolute-redirect/(\d+)", path)
    if redirect and int(redirect.group(1)) > 0:
        n = int(redirect.group(1))
        return _redirect(f"http://{req.authority}"
                         + ("/get" if n == 1 else f"/absolute-redirect/{n - 1}"))
    return _text(NOT_FOUND, "text/html", 404)


def _redirect(location: str) -> AppResponse:
    """Werkzeug 0.14's ``redirect(location)``: 302, its HTML page naming the URL twice."""
    shown = html.escape(location, quote=True)
    body = ('<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 3.2 Final//EN">\n<title>Redirecting...'
            '</title>\n<h1>Redirecting...</h1>\n<p>You should be redirected automatically to '
            f'target URL: <a href="{shown}">{html.escape(location, quote=False)}</a>.  If not '
            'click the link.')
    answer = _text(body, "text/html; charset=utf-8", 302)
    answer.headers.add("Location", location)
    return answer


def access_line(req: AppRequest, status: int, size: int, now: float) -> str:
    """gunicorn's default access format: ``%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s …``."""
    stamp = datetime.fromtimestamp(now, UTC).strftime("[%d/%b/%Y:%H:%M:%S +0000]")
    referer = req.headers.get("referer") or "-"
    agent = req.headers.get("user-agent") or "-"
    return (f'{req.remote_ip} - - {stamp} "{req.method} {req.path} HTTP/1.1" {status} '
            f'{size if size else "-"} "{referer}" "{agent}"')


def werkzeug_name(name: str) -> str:
    return name.replace("_", "-").title()


def shown_headers(req: AppRequest) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in req.headers:
        if name.lower() in HIDDEN or name.lower() in ("host", "transfer-encoding"):
            continue
        key = werkzeug_name(name)
        out[key] = f"{out[key]},{value}" if key in out else value
    out["Host"] = req.authority
    return out


def origin(req: AppRequest) -> str:
    return req.headers.get("x-forwarded-for") or req.remote_ip


def echo(req: AppRequest, with_body: bool) -> Obj:
    args: dict[str, Any] = {}
    for name, value in req.query:
        args[name] = value if name not in args else [*_listed(args[name]), value]
    scheme = req.headers.get("x-forwarded-proto") or "http"
    base: Obj = {"args": args, "headers": shown_headers(req), "origin": origin(req),
                 "url": f"{scheme}://{req.authority}{req.path}"}
    if with_body:
        data = req.body.decode("utf-8", "replace")
        kind = (req.headers.get("content-type") or "").split(";")[0].strip()
        form = req.form() if kind == "application/x-www-form-urlencoded" else {}
        parsed = None
        if kind == "application/json":
            try:
                parsed = json.loads(data)
            except ValueError:
                parsed = None
        base.update(data="" if form else data, files={}, form=form, json=parsed)
    return base


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def jsonify(value: Any, status: int = 200) -> AppResponse:
    """Flask 1.0's pretty jsonify as httpbin configures it, plus httpbin's trailing newline."""
    text = json.dumps(value, indent=2, separators=(", ", ": "), sort_keys=True) + "\n"
    return AppResponse(status, Headers([("Content-Type", "application/json")]), text.encode())


def _text(text: str, content_type: str, status: int = 200) -> AppResponse:
    return AppResponse(status, Headers([("Content-Type", content_type)]), text.encode())


def _allow(method: str, allowed: tuple[str, ...]) -> AppResponse | None:
    if method in allowed:
        return None
    body = ('<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 3.2 Final//EN">\n<title>405 Method Not '
            'Allowed</title>\n<h1>Method Not Allowed</h1>\n<p>The method is not allowed for '
            'the requested URL.</p>\n')
    answer = _text(body, "text/html", 405)
    answer.headers.add("Allow", ", ".join(sorted({*allowed, "OPTIONS"})))
    return answer


def _status(raw: str, rng: random.Random) -> AppResponse:
    choices: list[tuple[int, float]] = []
    for part in raw.split(","):
        number, _, weight = part.partition(":")
        if not number.isdigit():
            return _text("Invalid status code", "text/html; charset=utf-8", 400)
        choices.append((int(number), float(weight) if weight else 1.0))
    code = choices[0][0] if len(choices) == 1 else rng.choices(
        [c for c, _ in choices], [w for _, w in choices])[0]
    if code == 418:
        answer = _text(TEAPOT, "text/html; charset=utf-8", 418)
        answer.headers.add("X-More-Info", "http://tools.ietf.org/html/rfc2324")
        return answer
    answer = _text("", "text/html; charset=utf-8", code)
    if code in (301, 302, 303, 305, 307):
        answer.headers.add("Location", "/redirect/1")
    elif code == 401:
        answer.headers.add("WWW-Authenticate", 'Basic realm="Fake Realm"')
    return answer


def _delay(raw: str, wait: Callable[[float], None], req: AppRequest) -> AppResponse:
    try:
        seconds = min(float(raw), MAX_DELAY)
    except ValueError:
        return _text(NOT_FOUND, "text/html", 404)
    wait(max(0.0, seconds))
    return jsonify(echo(req, True))
