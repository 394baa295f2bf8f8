"""Lab 9.3 goes red exactly where Kiali's view of the metrics is wrong.

* ``wrong_version``: metrics that report reviews v3's requests as served by reviews v2
  (``destination_workload``/``version``/canonical revision) give a Kiali edge to the wrong
  version: the topology and the reviews split fail; health, lists, response times and the
  security badges (no claim about reviews v3) stay green.
* ``details_500``: metrics that report every details response as a 500 make Kiali's health
  and graph show errors: the app health, the error-free graph and the Applications view fail,
  while the topology and the split (rates of any code) stay green.

Both break only the metrics the mesh model emits, so they also show that the embedded Kiali
reads Prometheus, not the mesh.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from selfcheck_testkit import failed_test_names

LABS = Path(__file__).resolve().parent.parent / "labs"

PATCH = """
import pytest
from pytest_istiolab.embedded.mesh import telemetry
_patch = pytest.MonkeyPatch()
def pytest_configure(config):
    original = telemetry.request_labels
    def broken(hop):
        labels = original(hop)
        {edit}
        return labels
    _patch.setattr(telemetry, "request_labels", broken)
def pytest_unconfigure(config):
    _patch.undo()
"""
BREAKERS = {
    "wrong_version": """if labels["destination_workload"] == "reviews-v3":
            labels.update(destination_workload="reviews-v2", destination_version="v2",
                          destination_canonical_revision="v2")""",
    "details_500": """if labels["destination_service_name"] == "details":
            labels.update(response_code="500")""",
}
EXPECTED = {
    "wrong_version": {"test_versioned_app_graph_has_the_manual_nodes_and_edges",
                      "test_every_graph_edge_carries_http_traffic_without_errors",
                      "test_app_edges_without_service_nodes",
                      "test_reviews_versions_share_the_traffic_about_equally"},
    "details_500": {"test_overview_shows_four_healthy_applications_with_inbound_traffic",
                    "test_every_graph_edge_carries_http_traffic_without_errors",
                    "test_applications_view_lists_bookinfo_with_traffic"},
}


@pytest.mark.parametrize("breaker", list(BREAKERS))
def test_kiali_checks_go_red_when_the_metrics_are_wrong(pytester, breaker):
    pytester.makepyfile(**{f"break_{breaker}": PATCH.replace("{edit}", BREAKERS[breaker])})
    result = pytester.runpytest_subprocess(str(LABS / "test_lab09_topology.py"), "-p",
                                           f"break_{breaker}", "-p", "no:cacheprovider",
                                           "-q", "-rfE", "--istio-seed=7")
    assert failed_test_names(result.outlines) == EXPECTED[breaker]
    assert result.parseoutcomes().get("passed", 0) > 0, "the rest of the lab must still pass"
