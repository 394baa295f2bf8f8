"""The context one request travels with through the model, and the ends of a connection."""

from __future__ import annotations

import random
from dataclasses import dataclass
from email.utils import formatdate
from typing import Any

from ..runtime import Runtime
from .config import Snapshot, snapshot
from .headers import Headers
from .model import Failure, Response
from .state import MeshState, mesh_state

Obj = dict[str, Any]


@dataclass
class Flow:
    """Cluster state shared by every hop of one request (and the requests it causes)."""

    runtime: Runtime
    snap: Snapshot
    state: MeshState

    @classmethod
    def of(cls, runtime: Runtime) -> Flow:
        return cls(runtime, snapshot(runtime), mesh_state(runtime))

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


def failed(kind: str, start: float, after: float = 0.0, message: str = "") -> Response:
    """A transfer that got no HTTP response (refused, reset, timed out …)."""
    return Response(0, Headers(), b"", start, after, failure=Failure(kind, message))


def http_date(t: float) -> str:
    return formatdate(t, usegmt=True)


def millis(seconds: float) -> int:
    """Envoy's millisecond fields truncate."""
    return max(0, int(seconds * 1000))
