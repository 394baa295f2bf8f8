"""Lab 6's checks fail when the embedded gateway's TLS breaks, and only the matching ones.

Each case runs ``tests/labs/test_lab06_tls_ingress.py`` in a pytest subprocess whose embedded
cluster has one TLS behaviour broken through the facade's test-only switch
(``EmbeddedCluster.break_tls``): a listener that ignores SNI, one that keeps serving the
certificate it loaded first after the Secret is rotated, and a MUTUAL server that lets a
client without a certificate in. The expected failures are exactly the tests of the checks
that behaviour is about; the rest of the module must still pass.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from selfcheck_testkit import failed_test_names

MODULE = Path(__file__).resolve().parent.parent / "labs" / "test_lab06_tls_ingress.py"

BREAKER = """
from pytest_istiolab.embedded import EmbeddedCluster
def pytest_configure(config):
    EmbeddedCluster.break_tls({fault!r})
def pytest_unconfigure(config):
    EmbeddedCluster.repair_tls()
"""

CASES = [
    # L6.2-C01 (helloworld gets httpbin's certificate) and L6-X01 (an unknown name is served)
    ("ignore-sni", {"test_helloworld_over_https_by_sni",
                    "test_a_name_no_server_has_gets_no_certificate"}),
    # L6.1-C02 (the new CA never validates) and L6.1-C03 (the old CA still does)
    ("stale-certificate", {"test_after_rotation_the_new_ca_gets_the_teapot",
                           "test_after_rotation_the_old_ca_is_rejected"}),
    # L6.3-C01 (no client certificate still gets the teapot)
    ("optional-client-certificate", {"test_mutual_tls_without_a_client_certificate_is_rejected"}),
]


@pytest.mark.parametrize("fault,expected", CASES, ids=[c[0] for c in CASES])
def test_lab6_checks_go_red_when_tls_breaks(pytester, fault, expected):
    name = "break_" + fault.replace("-", "_")
    pytester.makepyfile(**{name: BREAKER.format(fault=fault)})
    result = pytester.runpytest_subprocess(str(MODULE), "-p", name, "-p", "no:cacheprovider",
                                           "-q", "-rfE", "--istio-seed=7")
    failed = failed_test_names(result.outlines)
    assert failed == expected, "\n".join(result.outlines[-30:])
    assert result.parseoutcomes().get("passed", 0) > 0, "the rest of the lab must still pass"
