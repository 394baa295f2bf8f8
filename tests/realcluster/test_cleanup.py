"""The cleanup proof: a run against an existing cluster leaves it exactly as it found it.

The cluster (Istio demo and the addons installed, as a platform team's would be) is inventoried
before and after each run of the lab suite as a separate process (see ``inventory``: every
listable object by identity, the istio ConfigMap, namespace labels): after a passing run, a run
with failing tests, and a run stopped with Ctrl-C (SIGINT to its process group) either at a
known point mid-lab or as soon as its first namespace exists. The runs include a lab-shaped
module that changes mesh config, applies a mesh-wide PeerAuthentication into istio-system and
deploys into its own namespace, so there is something to restore.
"""

from __future__ import annotations

from pathlib import Path

from realcluster_testkit import (
    LAB01,
    LAB02,
    MESHWIDE_LAB,
    Target,
    interrupt,
    run_suite,
    start_suite,
    wait_for,
)

from pytest_istiolab.kube import Inventory, sweep_run_namespaces, take_inventory

BLOCKED_TEST = "test_mesh_wide_strict_is_in_the_root_namespace"


def assert_unchanged(before: Inventory, target: Target, output: str) -> None:
    __tracebackhide__ = True
    diff = before.diff(take_inventory(target.kube))
    assert not diff, f"the run changed the cluster:\n{diff.describe()}\n--- run output:\n" \
                     f"{output[-4000:]}"


def test_a_passing_run_leaves_the_cluster_as_it_found_it(baseline):
    before = take_inventory(baseline.kube)
    result = run_suite(LAB01, LAB02, MESHWIDE_LAB, *baseline.options())
    assert result.returncode == 0, result.stdout[-4000:]
    assert "Lab 7: SUCCESS - 3 passed" in result.stdout  # the mesh-wide changes were made
    assert_unchanged(before, baseline, result.stdout)


def test_a_run_with_failing_tests_leaves_nothing_behind(baseline):
    before = take_inventory(baseline.kube)
    failing = f"{BLOCKED_TEST},test_product_page_through_the_ingress_gateway"
    result = run_suite(LAB02, MESHWIDE_LAB, *baseline.options(), inject={"fail": failing})
    assert result.returncode == 1, result.stdout[-4000:]
    assert result.stdout.count("injected failure in") >= 2
    assert "istiolab diagnostics" in result.stdout
    # off the embedded provider, diagnostics ask istioctl (the embedded one says what it lacks)
    assert "--- $ istioctl proxy-config routes sleep-" in result.stdout
    assert "proxy-config is not modelled by the embedded cluster" in result.stdout
    assert "--- $ istioctl analyze -n lab-meshwide-" in result.stdout
    assert_unchanged(before, baseline, result.stdout)


def test_ctrl_c_mid_lab_restores_the_mesh_and_removes_the_namespace(baseline, tmp_path: Path):
    """Interrupted while the mesh config is REGISTRY_ONLY, mesh-wide STRICT is applied in
    istio-system and Bookinfo runs in the lab namespace: pytest's KeyboardInterrupt handling
    tears the fixtures down, and they undo all of it."""
    before = take_inventory(baseline.kube)
    marker = tmp_path / "blocked"
    proc = start_suite(LAB02, MESHWIDE_LAB, *baseline.options(),
                       inject={"block": BLOCKED_TEST, "marker": str(marker)})
    wait_for(marker.exists, proc, f"{BLOCKED_TEST} starting")
    during = take_inventory(baseline.kube)
    assert "REGISTRY_ONLY" in during.mesh["mesh"]
    assert ("security.istio.io/v1/PeerAuthentication", "istio-system", "default") in \
        during.objects
    assert baseline.lab_namespaces(), "no lab namespace while the lab runs"
    code, output = interrupt(proc)
    assert code == 2 and "KeyboardInterrupt" in output, output[-4000:]
    assert_unchanged(before, baseline, output)


def test_ctrl_c_as_soon_as_the_first_namespace_exists_leaves_nothing(baseline):
    before = take_inventory(baseline.kube)
    proc = start_suite(LAB02, MESHWIDE_LAB, *baseline.options())
    wait_for(baseline.lab_namespaces, proc, "a lab namespace appearing")
    code, output = interrupt(proc)
    assert code == 2, output[-4000:]
    assert_unchanged(before, baseline, output)


def test_keep_always_keeps_only_the_lab_namespaces(baseline):
    """Lab 2's namespaces (the injected one, and L2-X01's unlabelled ``-plain`` one) are kept,
    nothing else is added."""
    before = take_inventory(baseline.kube)
    result = run_suite(LAB02, *baseline.options(), "--istio-keep=always")
    assert result.returncode == 0, result.stdout[-4000:]
    kept = sorted(baseline.lab_namespaces())
    assert kept and all(name.startswith("lab02-") for name in kept), kept
    diff = before.diff(take_inventory(baseline.kube))
    assert (diff.removed, diff.mesh, diff.labels) == ((), None, ())
    assert {ns for _, ns, _ in diff.added} == {"", *kept}
    assert all(("v1/Namespace", "", name) in diff.added for name in kept)
    assert any(kind == "apps/v1/Deployment" for kind, _, _ in diff.added)
    run_id = min(kept, key=len).rsplit("-", 1)[1]
    assert sorted(sweep_run_namespaces(baseline.kube, run_id)) == kept
    assert_unchanged(before, baseline, result.stdout)


def test_the_proof_notices_a_run_that_does_not_clean_up(baseline):
    """With mesh restore and namespace deletion turned off in the run, the inventories differ
    in exactly those ways (then this test cleans up by hand for the next one)."""
    before = take_inventory(baseline.kube)
    result = run_suite(LAB02, MESHWIDE_LAB, *baseline.options(),
                       inject={"break": "mesh-restore,namespace-delete"})
    assert result.returncode == 0, result.stdout[-4000:]
    diff = before.diff(take_inventory(baseline.kube))
    leftover = baseline.lab_namespaces()
    try:
        assert diff.mesh is not None and "REGISTRY_ONLY" in diff.mesh[1]["mesh"]
        assert ("v1/Namespace", "", leftover[0]) in diff.added
        assert diff.removed == ()
    finally:
        baseline.kube.apply([{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {
            "name": "istio", "namespace": "istio-system"}, "data": before.mesh}])
        sweep_run_namespaces(baseline.kube, leftover[0].rsplit("-", 1)[1])
    assert_unchanged(before, baseline, result.stdout)
