"""After a reinstall and its restore, the suite reads the ingress gateway's NodePorts again.

Lab 3.4's switch (default profile) drops the demo profile's ``tcp`` and ``tls`` ports; its
cleanup (demo again) brings them back on new NodePorts. L3.5-C02 compares ``TCP_INGRESS_PORT``
with the Service, so it passes after the restore only if the cached ingress address was
refreshed. Each case runs real lab tests in a pytest subprocess under the realism profile: the
first reads the ingress address (L2-C07), then the mesh is switched and restored, then L3.5-C02
runs. Unbroken, all pass; with the refresh taken away, exactly L3.5-C02 goes red.

* ``this_worker``: the run's own Lab 3.4 switch and restore (``MeshWide`` reinstalls through
  the session's istioctl, whose ``on_mesh_change`` refreshes the ingress);
* ``other_worker``: as under xdist, another process switches and restores the mesh (the inner
  plugin runs the embedded istioctl itself, then counts the change beside the mesh lock as
  ``MeshWide`` does); this process must notice the count before its next lab test.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from selfcheck_testkit import failed_test_names

LABS = Path(__file__).resolve().parent.parent / "labs"
FIRST = f"{LABS}/test_lab02_bookinfo.py::test_gateway_url_is_node_address_and_http2_node_port"
SWITCH = f"{LABS}/test_lab03_service_entry_egress.py::test_switch_prunes_the_egress_gateway"
CHECK = f"{LABS}/test_lab03_traffic_management.py::" \
    "test_ingress_gateway_service_ports_give_the_ingress_variables"
RED = {"test_ingress_gateway_service_ports_give_the_ingress_variables"}

PATCHING = """
import pytest
_patch = pytest.MonkeyPatch()
def pytest_unconfigure(config):
    _patch.undo()
"""
OTHER_WORKER = """
import subprocess
from pytest_istiolab.deploy import MeshLock
SESSION = {}

@pytest.fixture(autouse=True)
def _grab_cluster(cluster):
    SESSION["cluster"] = cluster

@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    cluster = SESSION.get("cluster")
    if cluster is None or not item.name.startswith("test_ingress_gateway_service_ports"):
        return
    for profile in ("default", "demo"):  # not through cluster.istioctl: another process
        argv = cluster.istioctl.argv(["install", "--set", f"profile={profile}", "-y"])
        subprocess.run(argv, check=True, capture_output=True, timeout=300)
    cluster.kube.wait_for_rollouts("istio-system")
    MeshLock(f"{cluster.kube.server}|{cluster.handle.context}").count_change()
"""
BREAKERS = {
    "this_worker": """
from pytest_istiolab.cluster.session import ClusterSession
def pytest_configure(config):
    _patch.setattr(ClusterSession, "gateways_may_have_changed", lambda self: None)
""",
    "other_worker": OTHER_WORKER + """
def pytest_configure(config):
    _patch.setattr(MeshLock, "news", lambda self: False)
""",
}
UNBROKEN = {"this_worker": "", "other_worker": OTHER_WORKER}
TESTS = {"this_worker": [FIRST, SWITCH, CHECK], "other_worker": [FIRST, CHECK]}


@pytest.mark.parametrize("broken", [False, True], ids=["refreshed", "not_refreshed"])
@pytest.mark.parametrize("case", sorted(TESTS))
def test_l3_5_c02_goes_red_when_the_ingress_is_not_refreshed_after_a_restore(
        pytester: pytest.Pytester, case: str, broken: bool) -> None:
    source = PATCHING + (BREAKERS[case] if broken else UNBROKEN[case])
    pytester.makepyfile(**{f"reinstall_{case}": source})
    result = pytester.runpytest_subprocess(*TESTS[case], "-p", f"reinstall_{case}",
                                           "-p", "no:cacheprovider", "-q", "-rfE",
                                           "--istio-seed=16", "--istio-embedded-realism=on")
    failed = failed_test_names(result.outlines)
    assert failed == (RED if broken else set()), "\n".join(result.outlines[-40:])
    assert result.parseoutcomes().get("passed", 0) == len(TESTS[case]) - len(failed)
