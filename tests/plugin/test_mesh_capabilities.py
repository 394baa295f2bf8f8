"""Capabilities come from the installed mesh, not from ``--istio-profile`` (issue 16).

A demo mesh installed beforehand is tested with ``--istio-profile=default
--istio-install=never``: the checks that need the egress gateway and access logs run (and pass)
because the mesh has them, whatever the profile option says. Go-red: with the egress gateway
deleted from the mesh they are skipped, naming what the mesh lacks; a custom access-log format
is reported as such. The cluster is served from this process and handed to the run as an
existing context (as in ``test_revisioned_mesh``).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_istiolab.deploy.capabilities import read_capabilities
from pytest_istiolab.embedded import EmbeddedCluster
from pytest_istiolab.kube import Kube
from pytest_istiolab.timeouts import Timeouts

REPO = Path(__file__).resolve().parents[2]
EGRESS_CHECKS = [
    "tests/labs/test_lab01_install.py::test_control_plane_pod_is_running_and_ready"
    "[istio-egressgateway]",
    "tests/labs/test_lab01_install.py::test_control_plane_service_type_and_ports"
    "[istio-egressgateway]",
    "tests/labs/test_lab03_service_entry_egress.py::test_egress_gateway_service_and_pod",
    "tests/labs/test_lab03_service_entry_egress.py::test_sidecar_log_shows_the_direct_route",
]
RUN_LIMIT = 300.0  # seconds for one lab run on a loaded 2-core machine
STEP_LIMIT = 120.0  # seconds for one istioctl command


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[EmbeddedCluster]:
    """A mesh installed with the demo profile before the run (egress gateway, access logs)."""
    with EmbeddedCluster(tmp_path / "cluster", seed=1616) as started:
        res = subprocess.run([str(started.istioctl), "install", "-y", "--set", "profile=demo"],
                             capture_output=True, text=True, timeout=STEP_LIMIT,
                             stdin=subprocess.DEVNULL)
        assert res.returncode == 0, res.stderr
        yield started


def labs(cluster: EmbeddedCluster, *selection: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rfEs",
            *selection, "--istio-cluster", "existing", "--istio-context", "embedded",
            "--istio-kubeconfig", str(cluster.kubeconfig), "--istio-install", "never",
            "--istio-profile", "default", "--istio-istioctl", str(cluster.istioctl)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=RUN_LIMIT, cwd=REPO,
                          stdin=subprocess.DEVNULL)


def kube_of(cluster: EmbeddedCluster) -> Kube:
    return Kube(cluster.kubeconfig, "embedded", Timeouts.for_provider("embedded"))


@pytest.mark.usefixtures("_no_istiolab_env")
def test_a_demo_mesh_runs_the_egress_and_access_log_checks_under_profile_default(
        demo: EmbeddedCluster) -> None:
    res = labs(demo, *EGRESS_CHECKS)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]
    assert res.stdout.splitlines()[-1].startswith(f"{len(EGRESS_CHECKS)} passed"), \
        res.stdout[-3000:]


@pytest.mark.usefixtures("_no_istiolab_env")
def test_without_the_egress_gateway_the_checks_are_skipped_naming_the_mesh(
        demo: EmbeddedCluster) -> None:
    """Go-red: the same demo mesh with its egress gateway deleted (the profile option says
    nothing either way): the checks skip, and say it is the mesh that lacks it."""
    store = demo.runtime.store
    store.delete(store.resource_type("apps", "deployments"), "istio-system",
                 "istio-egressgateway")
    res = labs(demo, *EGRESS_CHECKS)
    assert res.returncode == 0, res.stdout[-4000:]
    assert f"{len(EGRESS_CHECKS)} skipped" in res.stdout.splitlines()[-1], res.stdout[-3000:]
    assert "the installed mesh has no egress-gateway" in res.stdout, res.stdout[-3000:]


def test_a_custom_access_log_format_is_named_not_parsed(demo: EmbeddedCluster) -> None:
    kube = kube_of(demo)
    try:
        mesh = {"accessLogFile": "/dev/stdout", "accessLogFormat": "[%START_TIME%] %REQ(:PATH)%\n"}
        found = read_capabilities(kube, mesh)
        assert {"istiod", "ingress-gateway", "egress-gateway"} <= found.present
        assert not found.has("access-log")
        reason = found.reason(["access-log"])
        assert "custom format" in reason and "accessLogFormat" in reason, reason
        assert found.profile_like == "demo"
        assert read_capabilities(kube, {"accessLogFile": "/dev/stdout"}).has("access-log")
        assert not read_capabilities(kube, {}).has("access-log")
        assert read_capabilities(kube, {"accessLogFile": "/dev/stdout",
                                        "accessLogEncoding": "JSON"}).has("access-log")
        assert found.ingress_namespace == "istio-system"
    finally:
        kube.close()
