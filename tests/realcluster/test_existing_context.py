"""``--istio-cluster=existing`` for real: Labs 1-2 against an embedded cluster started here and
reached by a separate pytest process only through its kubeconfig and context.

Covers the install policy (``if-missing`` installs on a bare cluster and the next run tests the
installed mesh as it is; ``always`` reinstalls; ``never`` refuses a bare cluster), the header
lines that say what the run found and will change, the version-mismatch warning, and the clear,
fast errors for an unknown context and an unreachable server.
"""

from __future__ import annotations

import socket
import time

import pytest
from realcluster_testkit import LAB01, LAB02, run_suite

from pytest_istiolab.embedded.runtime import NodePortHolds
from pytest_istiolab.kube import take_inventory

PREFLIGHT_LIMIT = 10.0  # seconds: the existing provider's reachability deadline


def header(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if line.startswith("istiolab: ")]


def test_if_missing_installs_then_the_next_run_tests_the_mesh_as_it_is(bare):
    first = run_suite(LAB01, LAB02, *bare.options(), "-rs")
    assert first.returncode == 0, first.stdout[-4000:]
    lines = header(first.stdout)
    assert "istiolab: Istio is not installed (no Deployment istiod in istio-system)" in lines
    assert any("this run will install Istio 1.26.0 profile demo" in ln for ln in lines), lines
    assert "Lab 1: SUCCESS - 56 passed, 0 failed, 0 skipped" in first.stdout

    second = run_suite(LAB01, LAB02, *bare.options(), "-rs", "-k",
                       "lab01 or through_the_ingress or sidecar_2_of_2")
    assert second.returncode == 0, second.stdout[-4000:]
    lines = header(second.stdout)
    assert any(ln.startswith("istiolab: found Istio 1.26.0 in istio-system (istiod image "
                             "docker.io/istio/pilot:1.26.0)") for ln in lines), lines
    assert any("test the installed mesh as it is, no install" in ln for ln in lines), lines
    assert "Lab 1: PARTIAL - 50 passed, 0 failed, 6 skipped" in second.stdout
    assert "Istio was already installed on this cluster" in second.stdout
    assert "Lab 2: SUCCESS - 7 passed" in second.stdout  # Bookinfo and ingress, as found


def test_header_says_which_cluster_and_what_the_run_changes(bare):
    bare.install_baseline(addons=False)
    result = run_suite(LAB01, *bare.options(), "-k", "crds", "--istio-keep=on-failure")
    assert result.returncode == 0, result.stdout[-4000:]
    lines = header(result.stdout)  # -q: no pytest header, but the plan is the first output
    assert result.stdout.startswith(lines[0])
    assert lines[0].startswith("istiolab: existing context embedded (server http://127.0.0.1:")
    assert ", Kubernetes v1." in lines[0]
    assert lines[1] == ("istiolab: found Istio 1.26.0 in istio-system (istiod image "
                        "docker.io/istio/pilot:1.26.0)")
    assert ("istiolab: this run will create namespaces labelled istiolab.io/managed-by="
            "pytest-istiolab and delete them at the end unless a test in them failed "
            "(--istio-keep=on-failure)") in lines
    assert ("istiolab: mesh-wide changes (Labs 3.4, 7, 9.1) are recorded and restored at the "
            "end of their lab") in lines


def test_always_reinstalls_an_installed_mesh(bare):
    bare.install_baseline(addons=False)
    result = run_suite(LAB01, *bare.options(), "--istio-install=always", "-k",
                       "precheck or reports_each_component")
    assert result.returncode == 0, result.stdout[-4000:]
    assert any("this run will reinstall/upgrade to Istio 1.26.0 profile demo" in ln
               for ln in header(result.stdout))
    assert "6 passed" in result.stdout  # the install output was seen: not skipped


def test_a_version_mismatch_is_reported_and_the_mesh_tested_as_it_is(bare):
    bare.install_baseline(addons=False)
    result = run_suite(LAB01, *bare.options(), "--istio-version=1.25.2", "-k", "versions_agree")
    assert result.returncode == 1, result.stdout[-4000:]
    warning = ("istiolab: WARNING: Istio 1.26.0 is installed but --istio-version is 1.25.2: the "
               "installed mesh is tested as it is")
    assert any(ln.startswith(warning) for ln in header(result.stdout.split("=== FAILURES")[0]))
    summary = result.stdout.split("istiolab warnings")[1]
    assert warning in summary and "--istio-install=always" in summary
    assert "('1.26.0', '1.26.0', '1.26.0') == ('1.25.2', '1.25.2', '1.25.2')" in result.stdout


def test_never_on_a_bare_cluster_is_a_clear_error_and_changes_nothing(bare):
    before = take_inventory(bare.kube)
    result = run_suite(LAB02, *bare.options(), "--istio-install=never")
    assert result.returncode == pytest.ExitCode.USAGE_ERROR, result.stdout + result.stderr
    assert ("Istio is not installed on context embedded (no Deployment istiod in istio-system) "
            "and --istio-install=never") in result.stderr
    assert "fix: pass --istio-install=if-missing|always" in result.stderr
    assert not before.diff(take_inventory(bare.kube))


def test_an_unknown_context_is_a_clear_error_within_10_s(bare):
    start = time.monotonic()
    result = run_suite(LAB02, *bare.options(context="prod-eu"))
    assert time.monotonic() - start < PREFLIGHT_LIMIT
    assert result.returncode == pytest.ExitCode.USAGE_ERROR
    assert f"context 'prod-eu' is not in {bare.kubeconfig}; contexts there: embedded" \
        in result.stderr
    assert "Traceback" not in result.stderr


def test_an_unreachable_server_is_a_clear_error_within_10_s(bare):
    bare.cluster.stop()  # the kubeconfig stays; nothing listens on its port any more
    start = time.monotonic()
    result = run_suite(LAB02, *bare.options())
    assert time.monotonic() - start < PREFLIGHT_LIMIT
    assert result.returncode == pytest.ExitCode.USAGE_ERROR
    assert "the API server of context 'embedded' (http://127.0.0.1:" in result.stderr
    assert "is not usable: connection refused" in result.stderr
    assert "fix: check that the cluster runs and is reachable" in result.stderr


def test_a_node_port_is_held_again_right_after_its_listener_served_connections():
    """A second run against the same cluster within a minute reuses the gateway's NodePort:
    the server side of closed connections sits in TIME_WAIT on that port, which must not
    stop the cluster holding it again (nor let another process take it)."""
    holds = NodePortHolds("127.0.0.1")
    port = next(p for p in range(30500, 30700) if holds.reserve(p))
    listener = holds.lend(port)
    assert listener is not None
    listener.listen(1)
    client = socket.create_connection(("127.0.0.1", port))
    served, _ = listener.accept()
    served.close()  # the server closes first: its side goes to TIME_WAIT
    client.close()
    listener.close()
    holds.give_back(port)
    try:
        assert holds.lend(port) is not None, "the port was lost after its listener closed"
        other = socket.socket()
        with pytest.raises(OSError):
            other.bind(("127.0.0.1", port))
        other.close()
    finally:
        holds.close()
