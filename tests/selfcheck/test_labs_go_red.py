"""The lab checks fail when the documented behaviour breaks.

Each case runs real lab tests (from ``tests/labs``) in a pytest subprocess, against an
embedded cluster whose model has one behaviour broken by a tiny plugin, and expects those
lab tests to go red — and the rest of the module to stay green, so the failure is precise.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from selfcheck_testkit import failed_test_names

LABS = Path(__file__).resolve().parent.parent / "labs"

PATCHING = """
import pytest
_patch = pytest.MonkeyPatch()
def pytest_unconfigure(config):
    _patch.undo()
"""

BREAKERS = {
    # the product page loses its title -> the in-mesh and ingress title checks fail
    "no_title": """
from pytest_istiolab.embedded.workloads import bookinfo_html
def pytest_configure(config):
    _patch.setattr(bookinfo_html, "HEAD",
                   bookinfo_html.HEAD.replace("Simple Bookstore App", "Bookstore"))
""",
    # sidecar injection stops working -> pods are 1/1 and have no istio-proxy
    "no_injection": """
from pytest_istiolab.embedded import injection
def pytest_configure(config):
    _patch.setattr(injection, "maybe_inject", lambda runtime, pod: pod)
""",
    # the ingress gateway ignores every VirtualService -> 404 through the gateway
    "gateway_ignores_routes": """
import dataclasses
from pytest_istiolab.embedded.mesh import gateways
def pytest_configure(config):
    original = gateways.route_gateway
    def broken(snap, pod, port, request):
        return original(snap, pod, port, dataclasses.replace(request, path="/nowhere"))
    _patch.setattr(gateways, "route_gateway", broken)
""",
}

CASES = [
    ("no_title", "test_lab02_bookinfo.py",
     {"test_ratings_pod_fetches_the_product_page_title",
      "test_product_page_through_the_ingress_gateway"}),
    ("gateway_ignores_routes", "test_lab02_bookinfo.py",
     {"test_product_page_through_the_ingress_gateway"}),
    ("no_injection", "test_lab02_bookinfo.py", None),  # many checks: at least 2/2 and env ones
]


@pytest.mark.parametrize("breaker,module,expected", CASES, ids=[c[0] for c in CASES])
def test_lab_checks_go_red_when_the_mesh_breaks(pytester, breaker, module, expected):
    pytester.makepyfile(**{f"break_{breaker}": PATCHING + BREAKERS[breaker]})
    result = pytester.runpytest_subprocess(str(LABS / module), "-p", f"break_{breaker}",
                                           "-p", "no:cacheprovider", "-q", "-rf",
                                           "--istio-seed=7")
    failed = failed_test_names(result.outlines, ("FAILED ",))
    if expected is None:
        assert {"test_pod_runs_with_its_sidecar_2_of_2",
                "test_productpage_has_init_app_and_proxy_containers"} <= failed
    else:
        assert failed == expected
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed", 0) > 0, "the rest of the lab must still pass"


def test_unbroken_lab_module_passes(pytester):
    module = str(LABS / "test_lab02_bookinfo.py")
    collected = pytester.runpytest_subprocess(module, "-p", "no:cacheprovider", "-q",
                                              "--collect-only")
    count = sum(1 for line in collected.outlines if "::" in line)
    assert count >= 46  # the manual's checks and the companion checks of Lab 2
    result = pytester.runpytest_subprocess(module, "-p", "no:cacheprovider", "-q", "--istio-seed=7")
    result.assert_outcomes(passed=count)
