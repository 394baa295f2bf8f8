"""The checks that name istiod's objects hold on a revision-based mesh (issue 15).

After a canary upgrade that removed the default revision, the 1.26 chart with ``--set
revision=1-26-8`` has left only ``istiod-1-26-8`` (Deployment, Service), ConfigMap
``istio-1-26-8`` and the ``default`` tag pointing at the revision. On that correct mesh the
Lab 1, 2 and 9.1 checks that the manual writes for the default revision (L1-C03, L1-C10,
L2-C03, L9.1-C03) must pass, following the control plane that injects the labs' namespaces;
a proxy that dials the wrong istiod must fail L2-C03; and the mesh-wide reinstall must change
that revision, not install a default one beside it.

The cluster is served from this process (so a test can break its injection for a moment) and
handed to a pytest run as an existing context, as in ``test_upgrade_flow``.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from pytest_istiolab.deploy import IstioInstallation, MeshWide, serving_control_plane
from pytest_istiolab.embedded import EmbeddedCluster
from pytest_istiolab.embedded.install import sidecar
from pytest_istiolab.errors import ClusterError
from pytest_istiolab.istioctl import Istioctl
from pytest_istiolab.kube import Kube
from pytest_istiolab.timeouts import Timeouts

REPO = Path(__file__).resolve().parents[2]
OLD, NEW, REVISION = "1.25.5", "1.26.8", "1-26-8"
CHECKS = [  # the checks that name the default revision's objects in the manual
    "tests/labs/test_lab01_install.py::test_install_without_yes_asks_first_and_changes_nothing",
    "tests/labs/test_lab01_install.py::test_control_plane_service_type_and_ports",
    "tests/labs/test_lab02_bookinfo.py::test_sidecar_dials_the_istiod_of_its_revision",
    "tests/labs/test_lab02_bookinfo.py::test_sidecar_environment",
    "tests/labs/test_lab09_logs.py::test_mesh_config_says_json",
    "tests/labs/test_lab09_logs.py::test_mesh_networks_is_empty",
]
RUN_LIMIT = 300.0  # seconds for one lab run on a loaded 2-core machine
STEP_LIMIT = 120.0  # seconds for one istioctl command


def run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    res = subprocess.run(argv, capture_output=True, text=True, timeout=STEP_LIMIT,
                         stdin=subprocess.DEVNULL)
    assert res.returncode == 0, f"{argv}: {res.stdout}\n{res.stderr}"
    return res


@pytest.fixture(scope="module")
def canaried(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedCluster]:
    """1.25.5 installed (default revision), canary-upgraded to 1.26.8 by revision, the
    ``default`` tag moved to it, the default revision uninstalled."""
    workdir = tmp_path_factory.mktemp("revisioned")
    with EmbeddedCluster(workdir / "cluster", seed=1515, istio_version=OLD) as started:
        old, new = str(started.istioctl_of(OLD)), str(started.istioctl_of(NEW))
        run([old, "install", "-y", "--set", "profile=demo"])
        run([new, "install", "-y", "--set", "profile=demo", "--set", f"revision={REVISION}"])
        run([new, "tag", "set", "default", "--revision", REVISION, "--overwrite"])
        run([new, "uninstall", "--revision", "default", "-y"])
        yield started


def labs(cluster: EmbeddedCluster, *selection: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rfE",
            *selection, "--istio-cluster", "existing", "--istio-context", "embedded",
            "--istio-kubeconfig", str(cluster.kubeconfig), "--istio-install", "never",
            "--istio-version", NEW, "--istio-istioctl", str(cluster.istioctl_of(NEW))]
    return subprocess.run(argv, capture_output=True, text=True, timeout=RUN_LIMIT, cwd=REPO,
                          stdin=subprocess.DEVNULL)


def test_the_canary_left_only_the_revision(canaried: EmbeddedCluster) -> None:
    store = canaried.runtime.store
    deployments = {d["metadata"]["name"] for d in store.by_kind("apps", "deployments",
                                                                 "istio-system")}
    configmaps = {m["metadata"]["name"] for m in store.by_kind("", "configmaps", "istio-system")}
    assert "istiod" not in deployments and f"istiod-{REVISION}" in deployments
    assert "istio" not in configmaps and f"istio-{REVISION}" in configmaps


@pytest.mark.usefixtures("_no_istiolab_env")
def test_the_default_revision_checks_pass_on_a_revision_based_mesh(
        canaried: EmbeddedCluster) -> None:
    res = labs(canaried, *CHECKS)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]
    assert "skipped" not in res.stdout.splitlines()[-1], res.stdout[-2000:]


@pytest.mark.usefixtures("_no_istiolab_env")
def test_a_proxy_dialling_the_default_istiod_fails_l2_c03(
        canaried: EmbeddedCluster, monkeypatch: pytest.MonkeyPatch) -> None:
    """Go-red: the revision's injector writes the default revision's CA_ADDR (the mistake a
    chart without ``revision`` in its values makes); the proxy check must fail, alone."""
    original = sidecar.proxy_env

    def wrong_ca(*args: object, **kwargs: object) -> list[dict]:
        return [{**e, "value": "istiod.istio-system.svc:15012"} if e["name"] == "CA_ADDR" else e
                for e in original(*args, **kwargs)]  # type: ignore[arg-type]
    monkeypatch.setattr(sidecar, "proxy_env", wrong_ca)
    res = labs(canaried, "tests/labs/test_lab02_bookinfo.py::test_sidecar_dials_the_istiod_of_"
                         "its_revision", "tests/labs/test_lab02_bookinfo.py::test_sidecar_"
                         "environment")
    assert res.returncode == 1, res.stdout[-4000:]
    failed = {line.split(" ", 2)[1].split("::")[-1] for line in res.stdout.splitlines()
              if line.startswith(("FAILED ", "ERROR "))}
    assert failed == {"test_sidecar_dials_the_istiod_of_its_revision"}, res.stdout[-4000:]
    assert f"istiod-{REVISION}.istio-system.svc:15012" in res.stdout


def test_the_mesh_wide_reinstall_keeps_the_revision_and_its_tag(
        canaried: EmbeddedCluster) -> None:
    timeouts = Timeouts.for_provider("embedded")
    kube = Kube(canaried.kubeconfig, "embedded", timeouts)
    try:
        ctl = Istioctl(canaried.istioctl_of(NEW), canaried.kubeconfig, "embedded", timeouts)
        commands: list[str] = []
        ctl.on_command = lambda line, output: commands.append(line)
        session = SimpleNamespace(kube=kube, istioctl=ctl)
        installed = subprocess.CompletedProcess(["istioctl"], 0, "", "")  # as if the run had
        istio = IstioInstallation(session, "demo", None, installed)  # type: ignore[arg-type]
        assert istio.control_plane() == serving_control_plane(kube)
        assert istio.control_plane().revision == REVISION

        changes = MeshWide(istio)
        changes.reinstall("demo", {"meshConfig.accessLogEncoding": "JSON"})
        assert kube.get("apps/v1", "Deployment", "istiod", "istio-system") is None
        assert istio.mesh_config().get("accessLogEncoding") == "JSON"
        assert _default_tag(kube) == REVISION
        changes.restore()
        assert kube.get("apps/v1", "Deployment", "istiod", "istio-system") is None
        assert "accessLogEncoding" not in istio.mesh_config()
        assert _default_tag(kube) == REVISION
        installs = [line for line in commands if " install " in line]
        assert len(installs) == 2 and all(f"revision={REVISION}" in i for i in installs), commands
    finally:
        kube.close()


def _default_tag(kube: Kube) -> str | None:
    tag = kube.get("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration",
                   "istio-revision-tag-default")
    return ((tag or {}).get("metadata", {}).get("labels") or {}).get("istio.io/rev")


def test_an_unlabelled_namespace_names_the_label_to_add(canaried: EmbeddedCluster) -> None:
    kube = Kube(canaried.kubeconfig, "embedded", Timeouts.for_provider("embedded"))
    try:
        with pytest.raises(ClusterError, match="istio-injection=enabled"):
            serving_control_plane(kube, "istio-system")
        assert serving_control_plane(kube).describe() == (
            f"revision {REVISION} (through tag default): istiod-{REVISION} in istio-system")
    finally:
        kube.close()
