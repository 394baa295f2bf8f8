"""One install per run: xdist workers sharing a cluster run ``istioctl install`` once (issue 16).

One embedded cluster without Istio, served from this process, is handed to a ``-n 2`` run as
an existing context (as on kind or a platform team's cluster: two workers, one API server).
The run's ``istioctl`` is a wrapper that logs each command with the worker that ran it, so the
test counts the installs. Lab 1's install checks are spread over both workers (``--dist
load``): the worker that did not install must pass them too (they read the run's recorded
pre-check and install output), and the summary must say "installed by the run" for both.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_istiolab import constants as c
from pytest_istiolab.embedded import EmbeddedCluster

REPO = Path(__file__).resolve().parents[2]
LAB1 = "tests/labs/test_lab01_install.py"
SELECTION = [f"{LAB1}::test_precheck_finds_no_issues",
             f"{LAB1}::test_install_reports_each_component",
             f"{LAB1}::test_istio_system_namespace_is_active"]
RUN_LIMIT = 300.0  # seconds for the -n 2 run on a loaded 2-core machine


@pytest.fixture
def bare(tmp_path: Path) -> Iterator[EmbeddedCluster]:
    """An embedded cluster with no Istio on it."""
    with EmbeddedCluster(tmp_path / "cluster", seed=1616) as started:
        yield started


def logging_istioctl(cluster: EmbeddedCluster, log: Path) -> Path:
    """An istioctl that appends ``<worker> <args>`` to ``log``, then runs the cluster's."""
    wrapper = log.with_name("istioctl")
    wrapper.write_text("#!/bin/sh\n"
                       f"printf '%s %s\\n' \"${{PYTEST_XDIST_WORKER:-main}}\" \"$*\" >> '{log}'\n"
                       f"exec '{cluster.istioctl}' \"$@\"\n")
    wrapper.chmod(0o755)
    return wrapper


def commands(log: Path, verb: str) -> list[str]:
    """The logged commands whose first argument after the cluster flags is ``verb``."""
    lines = log.read_text().splitlines() if log.exists() else []
    return [line for line in lines
            if [a for a in line.split()[1:] if not a.startswith("--")][:1] == [verb]]


@pytest.mark.usefixtures("_no_istiolab_env")
@pytest.mark.parametrize("policy", ["if-missing", "always"])
def test_two_workers_on_one_cluster_install_istio_once(
        bare: EmbeddedCluster, tmp_path: Path, policy: str) -> None:
    log = tmp_path / "istioctl.log"
    argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-v", "-n", "2",
            "--dist", "load", *SELECTION, "--istio-cluster", "existing",
            "--istio-context", "embedded", "--istio-kubeconfig", str(bare.kubeconfig),
            "--istio-istioctl", str(logging_istioctl(bare, log)), "--istio-profile", "demo",
            "--istio-install", policy]
    res = subprocess.run(argv, capture_output=True, text=True, timeout=RUN_LIMIT, cwd=REPO,
                         stdin=subprocess.DEVNULL)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out
    installs, prechecks = commands(log, "install"), commands(log, "x")
    assert len(installs) == 1, installs
    assert len(prechecks) == 1, prechecks
    assert "[gw0]" in res.stdout and "[gw1]" in res.stdout, "both workers ran tests\n" + out
    assert "SKIPPED" not in res.stdout, out  # neither worker lacks the install's output
    installed = f"Istio {c.DEFAULT_ISTIO_VERSION} installed by the run (profile demo)"
    assert f"istiolab: the mesh under test (gw0, gw1): {installed}" in res.stdout, out


@pytest.mark.usefixtures("_no_istiolab_env")
def test_a_failed_install_is_not_retried_by_the_other_worker(
        bare: EmbeddedCluster, tmp_path: Path) -> None:
    log = tmp_path / "istioctl.log"
    wrapper = logging_istioctl(bare, log)
    failing = wrapper.read_text().replace(  # a test double: this istioctl's install fails
        "exec ", 'case "$*" in *" install "*) echo "Error: webhook not ready" >&2; exit 1;; '
        'esac\nexec ', 1)
    wrapper.write_text(failing)
    argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-v", "-n", "2",
            "--dist", "load", *SELECTION, "--istio-cluster", "existing",
            "--istio-context", "embedded", "--istio-kubeconfig", str(bare.kubeconfig),
            "--istio-istioctl", str(wrapper), "--istio-profile", "demo",
            "--istio-install", "always"]
    res = subprocess.run(argv, capture_output=True, text=True, timeout=RUN_LIMIT, cwd=REPO,
                         stdin=subprocess.DEVNULL)
    out = res.stdout + res.stderr
    assert res.returncode == 1, out
    assert len(commands(log, "install")) == 1, log.read_text()
    assert "[gw0]" in res.stdout and "[gw1]" in res.stdout, out
    assert "the run's Istio install (gw" in res.stdout and "webhook not ready" in res.stdout, out
