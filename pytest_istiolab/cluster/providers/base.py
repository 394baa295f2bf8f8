"""What every cluster provider hands out: a kubeconfig, a context, and optionally an istioctl."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True)
class ClusterHandle:
    """A cluster ready for the kubernetes client."""

    kubeconfig: Path
    context: str | None
    provider: str                    # "embedded" | "kind" | "existing"
    description: str                 # one line for the report header
    istioctl: Path | None = None     # the provider's own istioctl, if it brings one
    node_address: str | None = None  # where NodePorts are reachable from the test host, if known
    extra: dict[str, str] = field(default_factory=dict)


class ClusterProvider(Protocol):
    """Creates (or finds) a cluster, and removes what it created."""

    name: str

    def start(self) -> ClusterHandle: ...

    def stop(self) -> None: ...
