"""The Lab 4.2 and Lab 5.2 checks go red when circuit breaking or mirroring breaks.

One in-process pytester run of both lab modules (``tests/labs``) against an embedded cluster
whose mesh model has two behaviours broken by a tiny plugin:

* every sidecar ignores the DestinationRule's connection pool (``Lane.configure`` keeps
  Istio's unlimited defaults): fortio never gets a 503, so the Lab 4.2 trips, the overflow
  access-log check and the overflow counter check fail, and so do the companion checks of
  ``maxConnections`` (L4.2-X01) and outlier detection (L4.2-X02, its ejection is part of the
  pool), while the rule's content and the single request still pass;
* the router never sends mirror copies: the Lab 5.2 mirror rule never takes effect, so its
  C03/C04/X01 tests fail (in their ``mirroring`` set-up) while C01/C02 still pass.

The plugin shortens the embedded cluster's ``eventually`` (0.3 s: a broken model never comes
right) so the failures come quickly. One
run costs one embedded cluster start with Istio, httpbin, fortio and sleep (a few seconds).
"""

from __future__ import annotations

from pathlib import Path

# pytester's in-process runs drop the modules they imported: cryptography's Rust bindings
# cannot be imported twice and the kubernetes client takes seconds to import, so both are
# imported once here, before the run.
import kubernetes.client.api.core_v1_api  # noqa: F401
import pytest
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: F401

LABS = Path(__file__).resolve().parent.parent / "labs"
BREAKER = """
import dataclasses
import pytest
from pytest_istiolab import timeouts
from pytest_istiolab.embedded.mesh import mirror, pool

_patch = pytest.MonkeyPatch()


def pytest_configure(config):
    _patch.setattr(timeouts, "EMBEDDED", dataclasses.replace(timeouts.EMBEDDED, eventually=0.3))
    _patch.setattr(pool.Lane, "configure", lambda self, rule, port, subset: None)
    _patch.setattr(mirror, "fire", lambda *args, **kwargs: [])


def pytest_unconfigure(config):
    _patch.undo()
"""
RED = {"test_two_connections_trip_the_breaker", "test_three_connections_trip_the_breaker",
       "test_every_refused_call_is_an_envoy_overflow_in_the_client_sidecar_log",
       "test_the_client_sidecar_counts_the_overflows",
       "test_the_connection_limit_overflows", "test_a_5xx_ejects_httpbin_then_no_healthy_upstream",
       "test_with_the_mirror_the_client_still_gets_v1s_answer",
       "test_every_request_is_mirrored_to_v2_with_the_shadow_authority",
       "test_v2s_sidecar_receives_the_copy_for_httpbin_shadow",
       "test_the_copy_reaches_v2_for_the_shadow_host_without_access_logs"}
GREEN = {"test_the_rule_is_the_manuals_tiny_pool_with_outlier_detection",
         "test_a_single_request_gets_through",
         "test_the_request_is_served_through_both_sidecars", "test_gunicorn_logs_its_start",
         "test_without_the_mirror_only_v1_logs_the_request"}


def test_lab_checks_go_red_when_pools_and_mirrors_break(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(break_pools_and_mirrors=BREAKER)
    pytester.syspathinsert()
    result = pytester.runpytest_inprocess(
        str(LABS / "test_lab04_circuit_breaking.py"), str(LABS / "test_lab05_traffic_mirroring.py"),
        "-p", "break_pools_and_mirrors", "-p", "no:cacheprovider", "-q", "--istio-seed=7")
    reports = result.reprec.getreports("pytest_runtest_logreport")
    red = {r.nodeid.split("::")[-1].split("[")[0] for r in reports if r.failed}
    green = {r.nodeid.split("::")[-1].split("[")[0] for r in reports
             if r.passed and r.when == "call"}
    assert red == RED
    assert green == GREEN
