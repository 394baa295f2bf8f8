"""The embedded cluster as a provider: in-process, on 127.0.0.1, nothing to install."""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path

from pytest_istiolab.cluster.providers.base import ClusterHandle
from pytest_istiolab.embedded import EmbeddedCluster
from pytest_istiolab.errors import ClusterError


class EmbeddedProvider:
    """Starts an :class:`EmbeddedCluster` in ``workdir`` and stops it at the end."""

    name = "embedded"

    def __init__(self, workdir: Path, seed: int, realism: bool = False,
                 istio_version: str | None = None) -> None:
        self.workdir, self.seed, self.realism = workdir, seed, realism
        self.istio_version = istio_version
        self._cluster: EmbeddedCluster | None = None

    def start(self) -> ClusterHandle:
        try:
            if self.istio_version:
                cluster = EmbeddedCluster(self.workdir, seed=self.seed, realism=self.realism,
                                          istio_version=self.istio_version)
            else:
                cluster = EmbeddedCluster(self.workdir, seed=self.seed, realism=self.realism)
            self._cluster = cluster.start()
        except OSError as exc:
            self.stop()
            raise ClusterError(f"the embedded cluster could not start: {exc}",
                               "free a loopback port or run with a real cluster "
                               "(--istio-cluster=existing)") from exc
        except BaseException:  # Ctrl-C while it starts: its files go too
            self.stop()
            raise
        cluster = self._cluster
        realism = cluster.runtime.realism
        return ClusterHandle(
            kubeconfig=cluster.kubeconfig, context="embedded", provider=self.name,
            description=f"embedded cluster at {cluster.url} (seed {self.seed}"
                        + (f"; realism: {realism.describe()})" if realism else ")"),
            istioctl=cluster.istioctl, node_address="127.0.0.1",
            extra={"url": cluster.url, "seed": str(self.seed),
                   "realism": "on" if realism else "off"})

    def stop(self) -> None:
        """Stop the cluster and remove its files (kubeconfig, istioctl wrapper)."""
        if self._cluster is not None:
            self._cluster.stop()
            self._cluster = None
        shutil.rmtree(self.workdir, ignore_errors=True)
        with contextlib.suppress(OSError):
            self.workdir.parent.rmdir()  # the run's directory, if nothing else is in it
