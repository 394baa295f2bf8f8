"""A test session's view of one cluster: provider, kube client, istioctl, ingress.

Plain Python: the fixtures are thin wrappers over these classes, and a script can use them
the same way (``ClusterSession.open(settings)``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from pytest_istiolab.cluster.providers.base import ClusterHandle, ClusterProvider
from pytest_istiolab.errors import ClusterError
from pytest_istiolab.istioctl import Istioctl, resolve_istioctl
from pytest_istiolab.kube import Kube
from pytest_istiolab.settings import Settings
from pytest_istiolab.timeouts import Timeouts
from pytest_istiolab.traffic import Ingress

log = logging.getLogger(__name__)


def make_provider(settings: Settings) -> ClusterProvider:
    """The one place that differs per cluster kind: how the cluster comes to exist."""
    if settings.cluster == "embedded":
        from pytest_istiolab.cluster.providers.embedded import EmbeddedProvider

        return EmbeddedProvider(settings.workdir / "embedded", settings.seed,
                                realism=settings.realism, istio_version=settings.version)
    if settings.cluster == "existing":
        from pytest_istiolab.cluster.providers.existing import ExistingProvider

        return ExistingProvider(settings.context, settings.kubeconfig)
    if settings.cluster == "kind":
        from pytest_istiolab.cluster.providers.kind import KindProvider

        return KindProvider(settings.workdir / "kind", cluster_name=settings.kind_name,
                            image=settings.kind_image, keep=settings.keep == "always")
    raise ClusterError(f"cluster provider {settings.cluster!r} is not available",
                       "use --istio-cluster=embedded or existing")


@dataclass
class CommandLog:
    """Commands the run issued and what they printed, for failure reports (bounded)."""

    entries: list[tuple[str, str]] = field(default_factory=list)
    limit: int = 200

    def add(self, description: str, output: str) -> None:
        self.entries.append((description, output[-4000:]))
        del self.entries[: max(0, len(self.entries) - self.limit)]

    def mark(self) -> int:
        return len(self.entries)

    def since(self, mark: int) -> list[tuple[str, str]]:
        return self.entries[mark:]


class HandedOver:
    """A cluster another process created (the xdist controller): use it, never delete it."""

    def __init__(self, handle: ClusterHandle) -> None:
        self.name, self.handle = handle.provider, handle

    def start(self) -> ClusterHandle:
        return self.handle

    def stop(self) -> None:
        return None


class ClusterSession:
    """The cluster of a run, whichever provider made it."""

    def __init__(self, settings: Settings, provider: ClusterProvider,
                 handle: ClusterHandle) -> None:
        self.settings, self.provider, self.handle = settings, provider, handle
        self.timeouts = Timeouts.for_handle(handle).scaled(settings.timeout_scale)
        self.commands = CommandLog()
        self.kube = Kube(handle.kubeconfig, handle.context, self.timeouts)
        self.kube.on_command = self.commands.add

    @classmethod
    def open(cls, settings: Settings, provider: ClusterProvider | None = None) -> ClusterSession:
        provider = provider or make_provider(settings)
        handle = provider.start()
        try:
            session = cls(settings, provider, handle)
            session.kube.ping()
        except BaseException:
            provider.stop()
            raise
        return session

    @property
    def kubeconfig(self) -> Path:
        return self.handle.kubeconfig

    @cached_property
    def istioctl(self) -> Istioctl:
        """``--istio-istioctl``, else the provider's own, else provisioned for the version
        (a matching istioctl on PATH, the per-user cache, or a verified download)."""
        if self.settings.istioctl or self.handle.istioctl:
            path = resolve_istioctl(self.settings.istioctl, self.handle.istioctl)
        else:
            from pytest_istiolab.istioctl import DEFAULT_RELEASE_URL, provision_istioctl

            path = provision_istioctl(self.settings.version, offline=self.settings.offline,
                                      base_url=self.settings.release_url or DEFAULT_RELEASE_URL)
        ctl = Istioctl(path, self.handle.kubeconfig, self.handle.context, self.timeouts)
        ctl.on_command = self.commands.add
        ctl.on_mesh_change = self.gateways_may_have_changed
        return ctl

    def gateways_may_have_changed(self) -> None:
        """A reinstall (by this process or another) may recreate the ingress gateway's
        Service or drop and re-add ports (new NodePorts): read it again when next used."""
        if "ingress" in self.__dict__:
            self.ingress.refresh()

    @cached_property
    def ingress(self) -> Ingress:
        return Ingress(self.kube, node_address=self.handle.node_address, timeouts=self.timeouts)

    def close(self) -> None:
        if "ingress" in self.__dict__:
            self.ingress.close()
        self.kube.close()
        self.provider.stop()
