"""What a run deploys on a cluster: Istio (found or installed), mesh-wide changes, sample apps.

Owns the install policy and run plan, the control plane serving the labs' namespaces (which
istiod revision, its objects' names), mesh-wide changes that are recorded, serialized across
workers and restored, the sample apps from ``manifests/samples`` and Bookinfo's timed page loads.
Uses the cluster session and the layers below it.
"""

from pytest_istiolab.deploy.controlplane import ControlPlane, pod_revision, serving_control_plane
from pytest_istiolab.deploy.credentials import GatewayCredentials
from pytest_istiolab.deploy.installation import (
    ISTIO_NAMESPACE,
    Addons,
    FoundIstio,
    IstioInstallation,
    RunPlan,
    ensure_istio,
    find_istio,
    inspect_cluster,
    plan_run,
    version_mismatch,
)
from pytest_istiolab.deploy.meshwide import MeshLock, MeshWide
from pytest_istiolab.deploy.pages import PageClient, TimedPage
from pytest_istiolab.deploy.runinstall import RunInstall
from pytest_istiolab.deploy.samples import (
    BOOKINFO_DEPLOYMENTS,
    BOOKINFO_SERVICES,
    App,
    Bookinfo,
    Httpbin,
    Sleep,
    kube_injected,
)

__all__ = [
    "BOOKINFO_DEPLOYMENTS", "BOOKINFO_SERVICES", "ISTIO_NAMESPACE", "Addons", "App", "Bookinfo",
    "ControlPlane", "FoundIstio", "GatewayCredentials", "Httpbin", "IstioInstallation",
    "MeshLock", "MeshWide", "PageClient", "RunInstall", "RunPlan", "Sleep", "TimedPage",
    "ensure_istio", "find_istio", "inspect_cluster", "kube_injected", "plan_run",
    "pod_revision", "serving_control_plane", "version_mismatch",
]
