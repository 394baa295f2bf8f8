"""What an application sees and can do: the request, its clock, outbound calls, its log.

Applications never sleep: :meth:`AppContext.spend` moves the request's virtual time
forward, and :meth:`AppContext.call` sends a request through the mesh *from the
application's own pod* (through its sidecar when it has one), starting at the current
virtual time and returning when the mesh says it would.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import parse_qsl

from ..mesh import telemetry
from ..mesh.headers import Headers
from ..mesh.model import Response
from ..podspec import running_containers
from ..runtime import Runtime

Obj = dict[str, Any]
# (method, url, headers, body, start, timeout seconds or None) -> Response
Caller = Callable[[str, str, Headers, bytes, float, "float | None"], Response]


@dataclass
class AppRequest:
    method: str
    path: str  # with the query string
    authority: str
    headers: Headers
    body: bytes = b""
    remote_ip: str = ""
    remote_port: int = 0
    local_port: int = 0

    @property
    def path_only(self) -> str:
        return self.path.split("?", 1)[0] or "/"

    @property
    def query(self) -> list[tuple[str, str]]:
        return parse_qsl(self.path.partition("?")[2], keep_blank_values=True)

    def form(self) -> dict[str, str]:
        return dict(parse_qsl(self.body.decode("utf-8", "replace"), keep_blank_values=True))

    def cookies(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for line in self.headers.get_all("cookie"):
            for part in line.split(";"):
                name, sep, value = part.strip().partition("=")
                if sep:
                    out[name] = value
        return out


@dataclass
class AppResponse:
    status: int
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""


@dataclass
class AppContext:
    """One request being handled by one container."""

    runtime: Runtime
    pod: Obj
    container: str
    now: float
    caller: Caller
    jitter: Callable[[float, float], float]

    @property
    def pod_name(self) -> str:
        return str(self.pod["metadata"]["name"])

    @property
    def namespace(self) -> str:
        return str(self.pod["metadata"].get("namespace") or "default")

    def spend(self, low_ms: float, high_ms: float | None = None) -> None:
        """Local work taking between ``low_ms`` and ``high_ms`` milliseconds (CPU time of
        this container, as the cAdvisor model counts it)."""
        took = self.jitter(low_ms, high_ms if high_ms is not None else low_ms)
        self.now += took
        telemetry.charge_cpu(self.runtime, self.pod, self.container, self.now, took)

    def wait(self, seconds: float) -> None:
        self.now += seconds

    def call(self, method: str, url: str, headers: Headers | None = None, body: bytes = b"",
             timeout: float | None = None) -> Response:
        """An outbound HTTP call from this pod; the context's clock moves to its end."""
        response = self.caller(method, url, headers or Headers(), body, self.now, timeout)
        self.now = max(self.now, response.end)
        return response

    def log(self, text: str) -> None:
        self.runtime.logs.append(self.namespace, self.pod_name, self.container, text, self.now)

    def env(self, name: str) -> str | None:
        for c in running_containers(self.pod):
            if c.get("name") == self.container:
                for e in c.get("env") or []:
                    if e.get("name") == name and "value" in e:
                        return str(e["value"])
        return None


class Workload(Protocol):
    """The behaviour of one container image."""

    def handle(self, ctx: AppContext, request: AppRequest) -> AppResponse: ...


def json_response(value: Any, status: int = 200, content_type: str = "application/json",
                  text: str | None = None) -> AppResponse:
    body = (text if text is not None else json.dumps(value)).encode()
    return AppResponse(status, Headers([("Content-Type", content_type),
                                        ("Content-Length", str(len(body)))]), body)


def text_response(text: str, status: int = 200,
                  content_type: str = "text/html; charset=utf-8") -> AppResponse:
    body = text.encode()
    return AppResponse(status, Headers([("Content-Type", content_type),
                                        ("Content-Length", str(len(body)))]), body)
