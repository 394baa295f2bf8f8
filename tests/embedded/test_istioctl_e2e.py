"""The embedded istioctl as a separate process against the embedded API server (end to end:
kubernetes client -> HTTP -> API server -> store -> controllers). Checks L1-C03, L1-C05.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from pytest_istiolab.embedded.api import ApiServer
from pytest_istiolab.embedded.controllers import Controllers, bootstrap
from pytest_istiolab.embedded.runtime import ExecResult, Runtime
from pytest_istiolab.embedded.store import Store

REPO = Path(__file__).resolve().parents[2]
ISTIOCTL_TIMEOUT = 60.0  # seconds for one istioctl process


def _no_exec(rt: Runtime, pod: dict, container: str, argv: list[str], stdin: bytes
             ) -> ExecResult:
    return ExecResult(127, b"", b"exec is not part of these tests\n")


@dataclass
class Env:
    runtime: Runtime
    kubeconfig: Path

    def istioctl(self, *argv: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-m", "pytest_istiolab.embedded.istioctl",
               "--istiolab-default-kubeconfig", str(self.kubeconfig), *argv]
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        env.pop("KUBECONFIG", None)
        return subprocess.run(cmd, input=stdin, capture_output=True, text=True, env=env,
                              timeout=ISTIOCTL_TIMEOUT, cwd=REPO)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    runtime = Runtime(Store(), 11)
    bootstrap(runtime)
    controllers = Controllers(runtime).start()
    server = ApiServer(runtime, exec_handler=_no_exec, port=0)
    url = server.start()
    kubeconfig = tmp_path_factory.mktemp("e2e") / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "embedded",
        "clusters": [{"name": "embedded", "cluster": {"server": url}}],
        "users": [{"name": "embedded", "user": {"token": "embedded-admin"}}],
        "contexts": [{"name": "embedded", "context": {"cluster": "embedded",
                                                      "user": "embedded"}}]}))
    try:
        yield Env(runtime, kubeconfig)
    finally:
        server.stop()
        controllers.stop()


def test_install_version_inject_uninstall(env: Env, tmp_path: Path) -> None:
    res = env.istioctl("manifest", "apply", "--set", "profile=demo", stdin="y\n")
    assert res.returncode == 0, res.stderr
    assert 'This will install the Istio 1.26.0 profile "demo" into the cluster. Proceed? ' \
        "(y/N)" in res.stdout
    for line in ("✔ Istio core installed ⛵️", "✔ Istiod installed 🧠",
                 "✔ Egress gateways installed 🛫", "✔ Ingress gateways installed 🛬",
                 "✔ Installation complete"):
        assert line in res.stderr

    version = env.istioctl("version")
    assert version.stdout == ("client version: 1.26.0\ncontrol plane version: 1.26.0\n"
                              "data plane version: 1.26.0 (2 proxies)\n"), version.stderr

    source = tmp_path / "sleep.yaml"
    source.write_text(yaml.safe_dump({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "sleep"},
        "spec": {"selector": {"matchLabels": {"app": "sleep"}}, "template": {
            "metadata": {"labels": {"app": "sleep"}},
            "spec": {"containers": [{"name": "sleep", "image": "curlimages/curl"}]}}}}))
    injected = env.istioctl("kube-inject", "-f", str(source))
    assert injected.returncode == 0, injected.stderr
    template = yaml.safe_load(injected.stdout)["spec"]["template"]
    assert [c["name"] for c in template["spec"]["containers"]] == ["sleep", "istio-proxy"]

    analyze = env.istioctl("analyze", "-n", "default")
    assert analyze.returncode == 0, analyze.stderr
    assert analyze.stdout == "✔ No validation issues found when analyzing namespace: default.\n"

    purge = env.istioctl("uninstall", "--purge", "-y")
    assert purge.returncode == 0, purge.stderr
    assert "  Removed apps/v1, Kind=Deployment/istiod.istio-system." in purge.stdout
    assert "✔ Uninstall complete" in purge.stderr
    store = env.runtime.store
    assert not store.by_kind("apps", "deployments", "istio-system")
    assert not [c for c in store.by_kind("apiextensions.k8s.io", "customresourcedefinitions")
                if c["metadata"]["name"].endswith("istio.io")]


def test_unknown_command_exits_1_without_traceback(env: Env) -> None:
    res = env.istioctl("bug-report")
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert 'does not model "bug-report"' in res.stderr


def test_the_facade_writes_an_istioctl_that_installs_demo(tmp_path: Path) -> None:
    """EmbeddedCluster(...).start() and its bin/istioctl wrapper (L1-C03, L1-C05)."""
    pytest.importorskip("pytest_istiolab.embedded.listeners")
    pytest.importorskip("pytest_istiolab.embedded.tools")
    from pytest_istiolab.embedded import EmbeddedCluster

    cluster = EmbeddedCluster(tmp_path, seed=5).start()
    try:
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        install = subprocess.run([str(cluster.istioctl), "install", "--set", "profile=demo",
                                  "-y"], capture_output=True, text=True, env=env,
                                 timeout=ISTIOCTL_TIMEOUT)
        assert install.returncode == 0, install.stderr
        assert "✔ Installation complete" in install.stderr
        version = subprocess.run([str(cluster.istioctl), "version"], capture_output=True,
                                 text=True, env=env, timeout=ISTIOCTL_TIMEOUT)
        assert version.stdout.endswith("data plane version: 1.26.0 (2 proxies)\n")
    finally:
        cluster.stop()
