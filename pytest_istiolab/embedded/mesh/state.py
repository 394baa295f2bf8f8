"""Per-cluster state the mesh model keeps beside the store: caches and incidental randomness.

:class:`~..runtime.Runtime` has no slot for it, so it lives in the runtime instance's
``__dict__`` under one private key; everything here is derived or incidental (ids, ports,
latency jitter) and never cluster configuration, which stays in the store.
Semantic randomness (weighted routing, load balancing) uses ``runtime.rng`` so a seed
reproduces the traffic split; incidental randomness uses :attr:`MeshState.noise`, seeded
from the same seed, so it does not disturb the semantic sequence.
"""

from __future__ import annotations

import random
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ..runtime import Runtime

T = TypeVar("T")
_KEY = "_istiolab_extensions"
_LOCK = threading.Lock()


def extension(runtime: Runtime, name: str, factory: Callable[[], T]) -> T:
    """The object called ``name`` attached to ``runtime``, created by ``factory`` on first use."""
    with _LOCK:
        store: dict[str, Any] = vars(runtime).setdefault(_KEY, {})
        if name not in store:
            store[name] = factory()
        return store[name]  # type: ignore[no-any-return]


@dataclass
class MeshState:
    seed: int
    noise: random.Random = field(init=False)
    snapshot: Any = None  # the last config snapshot (see config.snapshot)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.noise = random.Random(self.seed * 7919 + 1)

    def request_id(self) -> str:
        """An ``x-request-id`` as Envoy generates it: a version-4 UUID (the version digit is
        where Envoy marks a trace decision, see ``tracing``)."""
        with self.lock:
            bits = self.noise.getrandbits(128)
        return str(uuid.UUID(int=bits, version=4))

    def hex_id(self, nbytes: int) -> str:
        with self.lock:
            return f"{self.noise.getrandbits(nbytes * 8):0{nbytes * 2}x}"

    def ephemeral_port(self) -> int:
        with self.lock:
            return self.noise.randint(32768, 60999)

    def jitter(self, low_ms: float, high_ms: float) -> float:
        """A small latency, in seconds, between ``low_ms`` and ``high_ms``."""
        with self.lock:
            return self.noise.uniform(low_ms, high_ms) / 1000.0


def mesh_state(runtime: Runtime) -> MeshState:
    return extension(runtime, "mesh", lambda: MeshState(runtime.seed))
