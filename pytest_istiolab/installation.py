"""Istio on the cluster: pre-check, install with a profile, version, mesh config."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass

import yaml

from .istioctl import IstioVersion
from .session import ClusterSession

ISTIO_NAMESPACE = "istio-system"


@dataclass
class IstioInstallation:
    """The mesh a run tests, and what installing it printed (when this run installed it)."""

    session: ClusterSession
    profile: str
    precheck: subprocess.CompletedProcess[str] | None
    install: subprocess.CompletedProcess[str] | None

    @property
    def installed_by_run(self) -> bool:
        return self.install is not None

    def version(self) -> IstioVersion:
        return self.session.istioctl.version()

    def mesh_config(self) -> dict:
        """The ``mesh`` key of the ``istio`` ConfigMap, parsed (what istiod serves to proxies)."""
        cm = self.session.kube.get("v1", "ConfigMap", "istio", ISTIO_NAMESPACE)
        return yaml.safe_load(((cm or {}).get("data") or {}).get("mesh") or "") or {}

    def wait_ready(self) -> None:
        self.session.kube.wait_for_deployments(ISTIO_NAMESPACE)


def ensure_istio(session: ClusterSession, profile: str) -> IstioInstallation:
    """Install ``profile`` unless istiod already runs (then the installed mesh is tested as is)."""
    kube, ctl = session.kube, session.istioctl
    if kube.get("apps/v1", "Deployment", "istiod", ISTIO_NAMESPACE) is not None:
        found = IstioInstallation(session, profile, None, None)
        found.wait_ready()
        return found
    precheck = ctl.precheck()
    install = ctl.install(profile)
    installed = IstioInstallation(session, profile, precheck, install)
    installed.wait_ready()
    return installed
