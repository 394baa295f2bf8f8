"""``pilot-agent request METHOD PATH`` in an ``istio-proxy`` container: Envoy's admin API.

Scope and limitations
---------------------
Modelled: ``pilot-agent request GET stats`` (also ``/stats``, with the admin query
parameters ``filter=REGEX`` and ``usedonly``), which prints the sidecar's statistics as
``name: value`` lines (see :mod:`..mesh.stats`), cumulative for the pod's life. Other admin
paths (``config_dump``, ``clusters``, ``server_info``, ``stats/prometheus`` …), other
methods and the other ``pilot-agent`` subcommands answer with pilot-agent's own style of
error (``Error: …``, exit 255) plus a line saying the embedded cluster does not model them.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

from ..mesh.config import snapshot
from ..mesh.stats import render
from ..runtime import ExecResult, Runtime

Obj = dict[str, Any]
USAGE = ("Usage:\n  pilot-agent request <method> <path> [<body>] [flags]\n\nFlags:\n"
         "      --debug-port int32   Set the port to make a local request to. The default "
         "points to the Envoy admin API. (default 15000)\n  -h, --help               help "
         "for request\n")
MODELLED = "pilot-agent request GET stats[?filter=REGEX&usedonly]"


def run(runtime: Runtime, pod: Obj, argv: list[str]) -> ExecResult:
    """``argv`` as exec'd: ``["pilot-agent", "request", "GET", "stats"]``."""
    args = argv[1:]
    if not args or args[0] != "request":
        what = args[0] if args else "(no subcommand)"
        return _error(f"the embedded cluster does not model pilot-agent {what}", usage=False)
    rest = [a for a in args[1:] if not a.startswith("--debug-port")]
    if len(rest) < 2 or len(rest) > 3:
        return _error(f"accepts between 2 and 3 arg(s), received {len(rest)}")
    method, path = rest[0].upper(), rest[1]
    parts = urlsplit(path if path.startswith("/") else "/" + path)
    if method != "GET" or parts.path != "/stats":
        return _error(f"the embedded cluster does not model the Envoy admin request {method} "
                      f"{parts.path}", usage=False)
    query = parse_qs(parts.query, keep_blank_values=True)
    if "format" in query:
        return _error("the embedded cluster does not model /stats?format=...", usage=False)
    pattern = query["filter"][0] if query.get("filter") else None
    text = render(runtime, snapshot(runtime), pod, runtime.clock.now(), pattern=pattern,
                  used_only="usedonly" in query)
    return ExecResult(0, text.encode())


def _error(message: str, usage: bool = True) -> ExecResult:
    text = f"Error: {message}\n" + (USAGE if usage else "")
    if "embedded cluster" in message:
        text += f"(modelled: {MODELLED})\n"
    return ExecResult(255, b"", text.encode())
