"""Lab 9.3 goes red exactly where Kiali's graph is wrong: metrics that report reviews v3's
requests as served by reviews v2 (``destination_workload``/``version``/canonical revision)
give a Kiali edge to the wrong version. The graph is computed from Prometheus, so the
topology, the reviews split and nothing else fail; the health and list pages (Deployments,
inbound 200s) stay green.
"""

from __future__ import annotations

from pathlib import Path

from selfcheck_testkit import failed_test_names

LABS = Path(__file__).resolve().parent.parent / "labs"

WRONG_VERSION = """
import pytest
from pytest_istiolab.embedded.mesh import telemetry
_patch = pytest.MonkeyPatch()
def pytest_configure(config):
    original = telemetry.request_labels
    def wrong_version(hop):
        labels = original(hop)
        if labels["destination_workload"] == "reviews-v3":
            labels.update(destination_workload="reviews-v2", destination_version="v2",
                          destination_canonical_revision="v2")
        return labels
    _patch.setattr(telemetry, "request_labels", wrong_version)
def pytest_unconfigure(config):
    _patch.undo()
"""

EXPECTED = {"test_versioned_app_graph_has_the_manual_nodes_and_edges",
            "test_every_graph_edge_carries_http_traffic_without_errors",
            "test_app_edges_without_service_nodes",
            "test_reviews_versions_share_the_traffic_about_equally"}


def test_a_kiali_edge_to_the_wrong_version_turns_the_graph_checks_red(pytester):
    pytester.makepyfile(break_wrong_version=WRONG_VERSION)
    result = pytester.runpytest_subprocess(str(LABS / "test_lab09_topology.py"), "-p",
                                           "break_wrong_version", "-p", "no:cacheprovider",
                                           "-q", "-rfE", "--istio-seed=7")
    assert failed_test_names(result.outlines) == EXPECTED
    assert result.parseoutcomes().get("passed", 0) > 0, "the rest of the lab must still pass"
