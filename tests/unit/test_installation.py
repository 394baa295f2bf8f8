"""Install policy: what is installed (istiod's image tag), the run's plan, the mismatch warning,
and ``--istio-install=never`` on a cluster without Istio."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_istiolab import constants as c
from pytest_istiolab.cluster import ClusterHandle
from pytest_istiolab.deploy import FoundIstio, plan_run, version_mismatch
from pytest_istiolab.errors import ClusterError
from pytest_istiolab.settings import Settings

HANDLE = ClusterHandle(Path("/k"), "prod", "existing", "existing context prod (server https://x)",
                       extra={"server_version": "v1.32.2"})
PILOT = "docker.io/istio/pilot:"


@pytest.mark.parametrize("image,version", [
    (PILOT + "1.26.0", "1.26.0"), (PILOT + "1.25.2-distroless", "1.25.2"),
    ("gcr.io/istio-release/pilot:1.27.1", "1.27.1"), ("registry:5000/pilot:v1.26.3", "1.26.3"),
    ("registry:5000/pilot", None), (PILOT + "latest", None),
    ("docker.io/istio/pilot@sha256:abc", None)])
def test_version_comes_from_the_istiod_image_tag(image, version):
    assert FoundIstio(image).version == version


def test_plan_for_an_installed_mesh_tests_it_as_is_and_warns_on_a_mismatch():
    plan = plan_run(Settings(cluster="existing", context="prod", version="1.26.0"), HANDLE,
                    FoundIstio(PILOT + "1.25.2"))
    assert plan.lines[:3] == (
        "istiolab: existing context prod (server https://x), Kubernetes v1.32.2",
        "istiolab: found Istio 1.25.2 in istio-system (istiod image docker.io/istio/pilot:1.25.2)",
        "istiolab: this run will test the installed mesh as it is, no install "
        "(--istio-install=if-missing)")
    assert plan.warnings == (plan.lines[-1].removeprefix("istiolab: "),)
    assert plan.warnings[0].startswith("WARNING: Istio 1.25.2 is installed but --istio-version "
                                       "is 1.26.0")


@pytest.mark.parametrize("install,found,action", [
    ("always", PILOT + "1.25.2", "reinstall/upgrade to Istio 1.26.0 profile demo with istioctl"),
    ("always", None, "install Istio 1.26.0 profile demo with istioctl (--istio-install=always)"),
    ("if-missing", None, "install Istio 1.26.0 profile demo with istioctl "
                         "(--istio-install=if-missing); it stays installed"),
    ("never", PILOT + "1.26.0", "test the installed mesh as it is, no install "
                                "(--istio-install=never)"),
])
def test_plan_says_what_the_install_policy_will_do(install, found, action):
    plan = plan_run(Settings(install=install), HANDLE, FoundIstio(found))
    assert plan.lines[2].startswith(f"istiolab: this run will {action}")
    assert plan.warnings == ()


@pytest.mark.parametrize("keep,read_only,text", [
    ("always", False, "keep them (--istio-keep=always)"),
    ("never", True, "are skipped (--istio-read-only)"),
])
def test_plan_names_keep_and_read_only(keep, read_only, text):
    plan = plan_run(Settings(keep=keep, read_only=read_only), HANDLE, FoundIstio(PILOT + "1.26.0"))
    assert any(text in line for line in plan.lines)


def test_never_without_istio_names_the_context_and_the_fix():
    with pytest.raises(ClusterError) as err:
        plan_run(Settings(install="never"), HANDLE, FoundIstio())
    assert str(err.value) == (
        "Istio is not installed on context prod (no Deployment istiod in istio-system) and "
        "--istio-install=never\n  fix: pass --istio-install=if-missing|always to let the run "
        "install it, or install Istio first")


def test_no_mismatch_when_versions_agree_or_the_run_reinstalls():
    assert version_mismatch(FoundIstio(PILOT + "1.26.0"), Settings()) is None
    assert version_mismatch(FoundIstio(PILOT + "1.25.2"), Settings(install="always")) is None
    assert "of unknown version (image docker.io/istio/pilot:latest)" in str(
        version_mismatch(FoundIstio(PILOT + "latest"), Settings()))


def test_never_on_the_bare_embedded_cluster_fails_the_tests_that_need_istio(pytester,
                                                                            monkeypatch):
    for opt in c.OPTIONS:
        monkeypatch.delenv(opt.env, raising=False)
    pytester.makepyfile("def test_x(istio):\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--istio-install=never")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*Istio is not installed on context embedded*"
                                 "--istio-install=never*",
                                 "*fix: pass --istio-install=if-missing|always*"])
