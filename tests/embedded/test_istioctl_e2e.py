"""The embedded istioctl as a separate process against the embedded API server (end to end:
kubernetes client -> HTTP -> API server -> store -> controllers). Checks L1-C03, L1-C05.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from istioctl_testkit import ISTIOCTL_TIMEOUT, REPO, Env, istioctl_env


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    with istioctl_env(tmp_path_factory.mktemp("e2e")) as started:
        yield started


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
