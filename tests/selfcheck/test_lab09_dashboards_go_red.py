"""Lab 9.2's Grafana checks go red exactly where the mesh's metrics are broken.

Each case runs ``test_lab09_dashboards.py`` in a pytest subprocess against an embedded
cluster whose telemetry has one fault (a tiny plugin), and expects exactly the named tests to
fail or error (parameters dropped) while the rest of the module passes. The plugin also
shortens the embedded scrape timeout to 3 s, so a red check gives up quickly (a green one
answers at once: the embedded Prometheus sees a request as soon as it is served).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from selfcheck_testkit import failed_test_names

LABS = Path(__file__).resolve().parent.parent / "labs"

PATCHING = """
import dataclasses
import pytest
from pytest_istiolab import timeouts
from pytest_istiolab.embedded.mesh import telemetry
_patch = pytest.MonkeyPatch()
_original = telemetry.request_labels
def pytest_unconfigure(config):
    _patch.undo()
def _quick():
    _patch.setattr(timeouts, "EMBEDDED", dataclasses.replace(timeouts.EMBEDDED, scrape=3.0))
"""

BREAKERS = {
    # Istio's metrics lose the destination_service label
    "no_destination_service_label": """
def pytest_configure(config):
    _quick()
    def broken(hop):
        labels = _original(hop)
        labels.pop("destination_service", None)
        return labels
    _patch.setattr(telemetry, "request_labels", broken)
""",
    # every 200 is counted as a 503
    "ok_counted_as_503": """
def pytest_configure(config):
    _quick()
    def broken(hop):
        labels = _original(hop)
        if labels["response_code"] == "200":
            labels["response_code"] = "503"
        return labels
    _patch.setattr(telemetry, "request_labels", broken)
""",
    # the kubelets' cAdvisor reports no istio-proxy container (sidecars and gateways alike)
    "cadvisor_without_proxies": """
def pytest_configure(config):
    _quick()
    from pytest_istiolab.embedded.workloads import cadvisor
    original = cadvisor.series
    def broken(runtime, node, base):
        return (row for row in original(runtime, node, base)
                if row[0].get("container") != "istio-proxy")
    _patch.setattr(cadvisor, "series", broken)
""",
}

SERVICE = {"test_service_request_volume_is_positive", "test_service_success_rate_is_100_percent",
           "test_service_request_duration_quantiles",
           "test_service_incoming_requests_come_from_the_gateway_over_mtls"}
CASES = [
    # the Service dashboard's $service list is empty; productpage's outbound services too
    ("no_destination_service_label",
     SERVICE | {"test_workload_productpage_calls_details_and_reviews"}),
    # every success rate drops to 0, and the gateway's series says 503: volumes, latencies,
    # bytes and versions stay green
    ("ok_counted_as_503",
     {"test_mesh_stat_panels_have_a_value",
      "test_mesh_workloads_table_lists_bookinfo_at_full_success",
      "test_service_success_rate_is_100_percent",
      "test_service_incoming_requests_come_from_the_gateway_over_mtls",
      "test_workload_incoming_volume_and_success",
      "test_workload_productpage_calls_details_and_reviews"}),
    # the Performance dashboard's vCPU and memory panels have no proxy series: exactly its
    # three resource checks (bytes and versions come from the proxies' own stats)
    ("cadvisor_without_proxies",
     {"test_performance_vcpu", "test_performance_vcpu_per_1k_rps", "test_performance_memory"}),
]


@pytest.mark.parametrize("breaker,expected", CASES, ids=[c[0] for c in CASES])
def test_dashboard_checks_go_red_when_the_metrics_break(pytester, breaker, expected):
    pytester.makepyfile(**{f"break_{breaker}": PATCHING + BREAKERS[breaker]})
    result = pytester.runpytest_subprocess(str(LABS / "test_lab09_dashboards.py"),
                                           "-p", f"break_{breaker}", "-p", "no:cacheprovider",
                                           "-q", "-rfE", "--istio-seed=7")
    assert failed_test_names(result.outlines) == expected
    assert result.parseoutcomes().get("passed", 0) > 0, "the rest of the lab must still pass"
