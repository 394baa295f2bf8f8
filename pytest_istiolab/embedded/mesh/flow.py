"""The context one request travels with through the model, and the ends of a connection.

It also names the seams between hops, so no module imports the one that calls it:
:class:`Hops` is how ``network`` hands a connection to the next Envoy (the engine wires the
proxies in), :class:`HopContext` is what an HTTP filter or the router's helpers see of the
Envoy they run in, and :data:`Next` is the rest of that Envoy's filter chain.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import formatdate
from typing import Any, Protocol

from ..runtime import Runtime
from .accesslog import AccessRecord
from .config import Snapshot, proxy_view, snapshot
from .headers import Headers
from .model import Failure, LocalReply, Request, Response
from .state import MeshState, mesh_state

Obj = dict[str, Any]
Next = Callable[[Request, float], Response]
"""The rest of a hop's filter chain: ``next(request, at)``."""


@dataclass
class Flow:
    """Cluster state shared by every hop of one request (and the requests it causes)."""

    runtime: Runtime
    snap: Snapshot
    state: MeshState
    hops: Hops

    @classmethod
    def of(cls, runtime: Runtime, hops: Hops, proxy: Obj | None = None) -> Flow:
        """A flow routed by the config ``proxy`` (the first Envoy of the request) has; under the
        realism profile that may be an older version (the later hops use the same one)."""
        snap = proxy_view(runtime, proxy) if proxy is not None else snapshot(runtime)
        return cls(runtime, snap, mesh_state(runtime), hops)

    @property
    def rng(self) -> random.Random:
        """Semantic randomness (weights, load balancing): the run's seeded generator."""
        return self.runtime.rng

    def jitter(self, low_ms: float, high_ms: float) -> float:
        return self.state.jitter(low_ms, high_ms)


@dataclass(frozen=True)
class Peer:
    """One end of a TCP connection as the other end sees it."""

    ip: str
    port: int
    pod: Obj | None = None  # the workload behind the address; None for the outside world
    mtls: bool = False  # Istio mutual TLS: the peer is a mesh proxy with a workload identity
    sni: str = "-"  # the requested server name of the connection


# (flow, pod, pod port, request, client, start, client deadline) -> Response
PodEntry = Callable[["Flow", Obj, int, Request, Peer, float, "float | None"], Response]
# (runtime, pod, method, url, headers, body, start, timeout seconds or None) -> Response
AppSend = Callable[[Runtime, Obj, str, str, Headers, bytes, float, "float | None"], Response]


@dataclass(frozen=True)
class Hops:
    """Where ``network`` hands a connection next; :mod:`.engine` builds the one in use."""

    gateway: PodEntry  # a gateway pod's Envoy takes a connection to one of its ports
    inbound: PodEntry  # an injected pod's sidecar takes a connection for its application
    app_send: AppSend  # an application's own request, sent from its pod through the mesh


class HopContext(Protocol):
    """What a filter, the router's retry loop and the fault filter use of one Envoy hop."""

    flow: Flow
    record: AccessRecord
    proxy: Obj  # the pod whose Envoy this is
    downstream: Peer
    local: tuple[str, int]  # the address the downstream connected to

    @property
    def namespace(self) -> str: ...

    def local_reply(self, reply: LocalReply, request: Request, at: float) -> Response: ...


def failed(kind: str, start: float, after: float = 0.0, message: str = "") -> Response:
    """A transfer that got no HTTP response (refused, reset, timed out …)."""
    return Response(0, Headers(), b"", start, after, failure=Failure(kind, message))


def http_date(t: float) -> str:
    return formatdate(t, usegmt=True)


def millis(seconds: float) -> int:
    """Envoy's millisecond fields truncate."""
    return max(0, int(seconds * 1000))
