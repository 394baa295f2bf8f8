"""Run the lab suite as a user would against a cluster that exists already, and watch it.

The cluster is an embedded cluster started in this test process (its API server listens on
127.0.0.1 in a daemon thread); the suite under test is a separate ``python -m pytest`` process
that reaches it only through its kubeconfig, with ``--istio-cluster=existing --istio-context
embedded`` and the cluster's istioctl, exactly as it would reach a real cluster.

``inject_plugin`` is loaded into that process with ``-p``: it fails a chosen test, or blocks
in one (after writing a marker file) until the process is interrupted, so a SIGINT lands
mid-lab at a known point.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from pytest_istiolab.embedded import EmbeddedCluster
from pytest_istiolab.fixtures import ADDONS
from pytest_istiolab.istioctl import Istioctl
from pytest_istiolab.kube import Applier, Kube
from pytest_istiolab.timeouts import EMBEDDED
from pytest_istiolab.waiting import poll_until

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
LAB01 = "tests/labs/test_lab01_install.py"
LAB02 = "tests/labs/test_lab02_bookinfo.py"
MESHWIDE_LAB = str(HERE / "lab_meshwide.py")  # not test_*.py: collected only when named
RUN_TIMEOUT = 120.0      # one whole pytest run of the labs under test
SIGNAL_TIMEOUT = 30.0    # from SIGINT to the process having cleaned up and exited
START_TIMEOUT = 30.0     # from starting pytest to the point where it is interrupted
INJECT_PLUGIN = "istiolab_inject"


@dataclass
class Target:
    """A running embedded cluster, as a user of an existing context sees it."""

    cluster: EmbeddedCluster
    kube: Kube

    @property
    def kubeconfig(self) -> Path:
        return self.cluster.kubeconfig

    @property
    def istioctl(self) -> Istioctl:
        return Istioctl(self.cluster.istioctl, self.kubeconfig, "embedded", EMBEDDED)

    def options(self, context: str = "embedded") -> list[str]:
        return ["--istio-cluster=existing", f"--istio-context={context}",
                f"--istio-kubeconfig={self.kubeconfig}",
                f"--istio-istioctl={self.cluster.istioctl}"]

    def install_baseline(self, addons: bool = True) -> None:
        """What a platform team's cluster has before the suite runs: Istio demo (+ addons)."""
        self.istioctl.install("demo")
        self.kube.wait_for_deployments("istio-system")
        if addons:
            applier = Applier(self.kube, "istio-system")
            for manifest in ADDONS:
                applier(manifest)
            self.kube.wait_for_deployments("istio-system")
            self.kube.wait_for_statefulsets("istio-system")

    def lab_namespaces(self) -> list[str]:
        return [ns["metadata"]["name"] for ns in self.kube.list(
            "v1", "Namespace", label_selector="istiolab.io/managed-by=pytest-istiolab")]


def start_target(workdir: Path) -> Target:
    cluster = EmbeddedCluster(workdir).start()
    return Target(cluster, Kube(cluster.kubeconfig, "embedded", EMBEDDED))


def stop_target(target: Target) -> None:
    target.kube.close()
    target.cluster.stop()


def _env(inject: dict[str, str] | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTEST_", "ISTIOLAB_")) and k != "KUBECONFIG"}
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), str(REPO)])
    for key, value in (inject or {}).items():
        env[f"ISTIOLAB_INJECT_{key.upper()}"] = value
    return env


def pytest_argv(*args: str, inject: bool = False) -> list[str]:
    plugins = ["-p", INJECT_PLUGIN] if inject else []
    return [sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
            *plugins, "-q", "-rfEs", *args]


def run_suite(*args: str, inject: dict[str, str] | None = None,
              timeout: float = RUN_TIMEOUT) -> subprocess.CompletedProcess[str]:
    """``python -m pytest ARGS`` in the repository, its output captured."""
    return subprocess.run(pytest_argv(*args, inject=inject is not None), cwd=REPO,
                          env=_env(inject), capture_output=True, text=True, timeout=timeout)


def start_suite(*args: str, inject: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """Start the suite in its own process group (as a shell runs a foreground job)."""
    return subprocess.Popen(pytest_argv(*args, inject=inject is not None), cwd=REPO,
                            env=_env(inject), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)


def interrupt(proc: subprocess.Popen[str]) -> tuple[int, str]:
    """Ctrl-C: SIGINT to the whole process group; exit code and output once it has exited."""
    os.killpg(proc.pid, signal.SIGINT)
    try:
        output, _ = proc.communicate(timeout=SIGNAL_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        output, _ = proc.communicate()
        raise AssertionError(f"pytest did not exit {SIGNAL_TIMEOUT:g} s after SIGINT:\n"
                             f"{output[-3000:]}") from None
    return proc.returncode, output


def wait_for(predicate: object, proc: subprocess.Popen[str], what: str) -> None:
    """Poll ``predicate`` while ``proc`` runs; fail with its output if it never holds."""
    def ready() -> bool:
        return proc.poll() is not None or bool(predicate())  # type: ignore[operator]

    if not poll_until(ready, timeout=START_TIMEOUT, interval=0.02) or proc.poll() is not None:
        proc.kill()
        output, _ = proc.communicate()
        raise AssertionError(f"{what} never happened (exit {proc.returncode}):\n{output[-3000:]}")
