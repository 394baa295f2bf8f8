"""The data the mesh model passes around: requests, responses, failures, routing decisions.

Times are virtual epoch seconds on :class:`~..runtime.VirtualClock`; durations are seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl

from .headers import Headers

Obj = dict[str, Any]


@dataclass
class Request:
    """One HTTP/1.1 request as it is on the wire (``Host`` lives in ``authority``)."""

    method: str
    path: str  # origin form, with the query string
    authority: str
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""
    scheme: str = "http"
    sni: str | None = None  # the TLS server name, for a request that arrived over TLS
    # what one Envoy's filters learn about the request (the verified JWT, ...); not on the wire
    metadata: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def path_only(self) -> str:
        return self.path.split("?", 1)[0] or "/"

    @property
    def query(self) -> list[tuple[str, str]]:
        _, _, qs = self.path.partition("?")
        return parse_qsl(qs, keep_blank_values=True)

    @property
    def host(self) -> str:
        return split_authority(self.authority)[0]

    @property
    def authority_port(self) -> int | None:
        return split_authority(self.authority)[1]

    def copy(self) -> Request:
        return Request(self.method, self.path, self.authority, self.headers.copy(), self.body,
                       self.scheme, self.sni, dict(self.metadata))


@dataclass(frozen=True)
class Failure:
    """A transfer that produced no HTTP response; curl turns ``kind`` into its exit code.

    kinds: ``resolve`` (6), ``connect`` (7), ``timeout`` (28), ``reset`` (56), ``empty`` (52),
    ``tls`` (35: a TLS handshake the server end did not speak).
    """

    kind: str
    message: str = ""


@dataclass
class Response:
    """What came back to whoever sent the request, plus what the last proxy recorded."""

    status: int
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""
    start: float = 0.0
    duration: float = 0.0
    response_flags: str = "-"
    details: str = "via_upstream"
    upstream_cluster: str = "-"
    upstream_host: str = "-"
    failure: Failure | None = None
    remote_ip: str = ""  # the address the client's socket connected to
    remote_port: int = 0
    reason: str = ""  # the status line's reason phrase; empty: the standard one

    @property
    def end(self) -> float:
        return self.start + self.duration

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


@dataclass(frozen=True)
class Destination:
    """A VirtualService ``route[].destination`` with its host already made fully qualified."""

    host: str
    subset: str | None = None
    port: int | None = None
    weight: int = 100


@dataclass(frozen=True)
class LocalReply:
    """A response Envoy generates itself (no upstream)."""

    status: int
    body: str = ""
    flags: str = "-"
    details: str = "direct_response"
    redirect: Obj | None = field(default=None, compare=False)  # VirtualService ``redirect``


@dataclass
class RouteDecision:
    """Where one proxy sends one request: a route, a local reply, or the original destination."""

    route_name: str = "-"
    destinations: list[Destination] = field(default_factory=list)
    local: LocalReply | None = None
    passthrough: bool = False  # ALLOW_ANY: forward to the address the client connected to
    http_route: Obj | None = None  # the VirtualService http[] entry (timeouts, retries, faults…)
    virtual_service: Obj | None = None
    match_port: int | None = None  # the port VirtualService matches compared with


@dataclass(frozen=True)
class Endpoint:
    """One upstream address: a pod, or an address outside the cluster."""

    ip: str
    port: int
    pod: Obj | None = None
    external_host: str | None = None


@dataclass
class Cluster:
    """An Envoy cluster the route points at, with its healthy endpoints."""

    name: str
    host: str
    port: int
    subset: str | None = None
    exists: bool = True
    endpoints: list[Endpoint] = field(default_factory=list)
    service: Obj | None = None
    destination_rule: Obj | None = None


def split_authority(authority: str) -> tuple[str, int | None]:
    """``"productpage:9080"`` -> ("productpage", 9080); lower-cased, trailing dot removed."""
    host, port = authority.strip(), None
    if host.startswith("["):  # IPv6 literal
        end = host.find("]")
        rest = host[end + 1:]
        host = host[1:end]
        if rest.startswith(":") and rest[1:].isdigit():
            port = int(rest[1:])
    elif host.count(":") == 1:
        name, _, raw = host.partition(":")
        if raw.isdigit():
            host, port = name, int(raw)
    return host.lower().rstrip("."), port


# Envoy's HTTP/1.1 codec writes its own reason phrases (envoy/http/codes.h); codes outside
# its table (418, 425, 451, ...) become "Unknown".
_ENVOY_PHRASES = {413: "Payload Too Large", 414: "URI Too Long", 416: "Range Not Satisfiable",
                  422: "Unprocessable Entity"}
_NOT_IN_ENVOY = {418, 425, 451, 509}


def reason_phrase(status: int) -> str:
    """The standard phrase (what an application server writes)."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def envoy_reason(status: int) -> str:
    if status in _NOT_IN_ENVOY:
        return "Unknown"
    return _ENVOY_PHRASES.get(status) or reason_phrase(status)
