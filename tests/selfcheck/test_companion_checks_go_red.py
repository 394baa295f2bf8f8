"""Every feature a lab configures has a lab check that fails when the mesh ignores it.

Issue 10: the manual's own scenarios pass on a mesh that ignores some of what the labs apply
(fault percentages, retries, ``maxConnections``, outlier detection, injection only where asked,
the access-log flags of faults and timeouts, the mirror's ``-shadow`` authority). Each case
here runs a selection of one or two lab modules (from ``tests/labs``) in-process against an
embedded cluster whose data-plane model ignores exactly one feature — a test double put in by
a tiny plugin, never in the Kubernetes API paths — and expects exactly the named lab tests to
fail while the rest of the selection passes.

Run with ``-s`` to see the table feature -> check ID -> test name the runs produce.

The plugin shortens the embedded cluster's ``eventually`` so the expected failures come
quickly. Each run costs an embedded cluster with Istio and the lab's apps (a few seconds), so
a selection holds the companion checks and the manual's checks of the same feature, not whole
modules.
"""

from __future__ import annotations

from pathlib import Path

# pytester's in-process runs drop the modules they imported. cryptography's Rust bindings
# cannot be imported a second time, and the kubernetes client's CoreV1Api takes seconds to
# import: both are imported here once, before the runs.
import kubernetes.client.api.core_v1_api  # noqa: F401
import pytest
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: F401

LABS = Path(__file__).resolve().parent.parent / "labs"

PATCHING = """
import dataclasses
import pytest
from pytest_istiolab import timeouts
_patch = pytest.MonkeyPatch()
def pytest_unconfigure(config):
    _patch.undo()
def _quick():
    _patch.setattr(timeouts, "EMBEDDED", dataclasses.replace(timeouts.EMBEDDED, eventually=1.5))
"""

BREAKERS = {
    # a fault with a percentage hits every request (or none): all-or-nothing sampling
    "percentage_all_or_nothing": """
from pytest_istiolab.embedded.mesh import faults
def pytest_configure(config):
    _quick()
    original = faults._fraction
    def whole(spec, legacy):
        f = original(spec, legacy=legacy)
        return faults.Fraction(1, 1) if f.numerator else f
    _patch.setattr(faults, "_fraction", whole)
""",
    # the router never retries (no VirtualService retry policy, no default one)
    "no_retries": """
from pytest_istiolab.embedded.mesh import resilience
def pytest_configure(config):
    _quick()
    _patch.setattr(resilience, "retry_policy", lambda route, mesh: None)
""",
    # the router retries one time fewer than ``attempts`` says
    "one_retry_fewer": """
from pytest_istiolab.embedded.mesh import resilience
def pytest_configure(config):
    _quick()
    original = resilience.retry_policy
    def fewer(route, mesh):
        policy = original(route, mesh)
        if policy is None or policy.retries <= 1:
            return None
        return dataclasses.replace(policy, retries=policy.retries - 1)
    _patch.setattr(resilience, "retry_policy", fewer)
""",
    # a VirtualService's ``retries`` is ignored: Istio's default policy applies
    "retries_ignored": """
from pytest_istiolab.embedded.mesh import resilience
def pytest_configure(config):
    _quick()
    original = resilience.retry_policy
    _patch.setattr(resilience, "retry_policy",
                   lambda route, mesh: original({k: v for k, v in (route or {}).items()
                                                 if k != "retries"}, mesh))
""",
    # ``perTryTimeout`` is ignored (the try runs until the route's or the client's deadline)
    "per_try_timeout_ignored": """
from pytest_istiolab.embedded.mesh import resilience
def pytest_configure(config):
    _quick()
    original = resilience.retry_policy
    def untimed(route, mesh):
        policy = original(route, mesh)
        return policy and dataclasses.replace(policy, per_try_timeout=None)
    _patch.setattr(resilience, "retry_policy", untimed)
""",
    # ``connectionPool.tcp.maxConnections`` is ignored (the pending limit still applies)
    "max_connections_ignored": """
from pytest_istiolab.embedded.mesh import pool
def pytest_configure(config):
    _quick()
    original = pool.limits_of
    _patch.setattr(pool, "limits_of", lambda policy: dataclasses.replace(
        original(policy), max_connections=pool.UNLIMITED))
""",
    # ``outlierDetection`` is ignored: no host is ever ejected
    "no_ejection": """
from pytest_istiolab.embedded.mesh import pool
def pytest_configure(config):
    _quick()
    _patch.setattr(pool, "outlier_policy", lambda policy: None)
""",
    # the webhook injects every pod outside the control plane, labelled namespace or not
    "inject_everywhere": """
import importlib
def pytest_configure(config):
    # not ``from ... import injection``: an earlier in-process run dropped the submodule from
    # sys.modules but left the package's attribute pointing at the old module object
    injection = importlib.import_module("pytest_istiolab.embedded.injection")
    _quick()
    _patch.setattr(injection, "injection_required", lambda labels, pod, namespace, **_: (
        namespace not in (*injection.IGNORED_NAMESPACES, "istio-system")))
""",
    # the access log leaves out the flags of injected faults and route timeouts
    "fault_flags_not_logged": """
from pytest_istiolab.embedded.mesh import accesslog
def pytest_configure(config):
    _quick()
    original = accesslog.text_line
    def unflagged(record):
        kept = [f for f in (record.flags or "").split(",") if f not in ("DI", "FI", "UT")]
        return original(dataclasses.replace(record, flags=",".join(kept) or "-"))
    _patch.setattr(accesslog, "text_line", unflagged)
""",
    # the mirrored copy keeps the original authority (no ``-shadow``)
    "no_shadow_suffix": """
from pytest_istiolab.embedded.mesh import mirror
def pytest_configure(config):
    _quick()
    original = mirror.shadow_request
    def unsuffixed(request, proxy_ip):
        copy = original(request, proxy_ip)
        copy.authority = request.authority
        return copy
    _patch.setattr(mirror, "shadow_request", unsuffixed)
""",
}

RETRIES = ("test_lab04_timeouts_retries.py",
           "retries_a_503 or retry_policy or two_calls or per_try or fails_fast")
CASES = [
    # (feature, breaker, modules, -k selection, expected failures)
    ("partial fault percentage", "percentage_all_or_nothing",
     ("test_lab05_fault_injection.py",), "fifty_percent or shows_ratings or black_stars",
     {"test_a_fifty_percent_abort_hits_about_half_of_jasons_calls"}),
    ("Envoy retries: none", "no_retries", RETRIES[:1], RETRIES[1],
     {"test_envoy_retries_a_503_as_often_as_the_policy_says",
      "test_the_per_try_timeout_of_retry_yaml_cuts_a_slow_answer"}),
    ("Envoy retries: one fewer than attempts", "one_retry_fewer", RETRIES[:1], RETRIES[1],
     {"test_envoy_retries_a_503_as_often_as_the_policy_says"}),
    ("Envoy retries: VirtualService retries ignored", "retries_ignored", RETRIES[:1], RETRIES[1],
     {"test_envoy_retries_a_503_as_often_as_the_policy_says",
      "test_the_per_try_timeout_of_retry_yaml_cuts_a_slow_answer"}),
    ("Envoy retries: perTryTimeout ignored", "per_try_timeout_ignored", RETRIES[:1], RETRIES[1],
     {"test_the_per_try_timeout_of_retry_yaml_cuts_a_slow_answer"}),
    ("connectionPool.tcp.maxConnections", "max_connections_ignored",
     ("test_lab04_circuit_breaking.py",), "connections or overflow",
     {"test_the_connection_limit_overflows"}),
    ("outlier detection", "no_ejection", ("test_lab04_circuit_breaking.py",),
     "ejects or rule or single",
     {"test_a_5xx_ejects_httpbin_then_no_healthy_upstream"}),
    ("injection only where asked", "inject_everywhere", ("test_lab02_bookinfo.py",),
     "unlabelled or sidecar_2_of_2 or namespace_is_labelled",
     {"test_a_pod_in_an_unlabelled_namespace_gets_no_sidecar"}),
    ("access-log flags DI, FI, UT", "fault_flags_not_logged",
     ("test_lab05_fault_injection.py", "test_lab04_timeouts_retries.py"),
     "callers_sidecar or hits_only or fails_fast",
     {"test_the_callers_sidecar_logs_the_injected_fault[delay]",
      "test_the_callers_sidecar_logs_the_injected_fault[abort]",
      "test_the_callers_sidecar_logs_the_route_timeout"}),
    ("the mirror's -shadow authority", "no_shadow_suffix", ("test_lab05_traffic_mirroring.py",),
     "shadow or served_through",
     {"test_v2s_sidecar_receives_the_copy_for_httpbin_shadow",
      "test_the_copy_reaches_v2_for_the_shadow_host_without_access_logs"}),
    # the same mesh on a profile that writes no access logs: C04's sidecar check skips, and
    # the body-size comparison alone would pass (the copy is larger anyway); X01 goes red
    ("the mirror's -shadow authority, no access logs", "no_shadow_suffix",
     ("test_lab05_traffic_mirroring.py",), "shadow or served_through",
     {"test_the_copy_reaches_v2_for_the_shadow_host_without_access_logs"},
     ("--istio-profile=default",)),
]
CASES = [(*case, ()) if len(case) == 5 else case for case in CASES]


@pytest.fixture(scope="module")
def table():
    rows: list[str] = []
    yield rows
    if rows:
        print("\n| feature broken | check ID | lab test that goes red |\n|---|---|---|")
        print("\n".join(rows))


@pytest.mark.parametrize("feature,breaker,modules,selection,expected,options", CASES,
                         ids=[c[1] + "".join(c[5]).replace("--istio-profile=", "-")
                              for c in CASES])
def test_a_lab_check_goes_red_when_the_mesh_ignores_a_feature(
        pytester: pytest.Pytester, table: list[str], feature: str, breaker: str,
        modules: tuple[str, ...], selection: str, expected: set[str],
        options: tuple[str, ...]) -> None:
    pytester.makepyfile(**{f"break_{breaker}": PATCHING + BREAKERS[breaker]})
    pytester.syspathinsert()
    result = pytester.runpytest_inprocess(*(str(LABS / m) for m in modules),
                                          "-p", f"break_{breaker}", "-k", selection,
                                          "-p", "no:cacheprovider", "-q", "--istio-seed=7",
                                          *options)
    failed = {}
    for report in result.reprec.getreports("pytest_runtest_logreport"):
        if report.failed:
            checks = dict(report.user_properties).get("istiolab_checks", "")
            failed[report.nodeid.split("::")[-1]] = str(checks)
    assert set(failed) == expected, result.outlines[-30:]
    assert result.parseoutcomes().get("passed", 0) > 0, "the rest of the selection must pass"
    table.extend(f"| {feature} | {failed[name]} | `{name}` |" for name in sorted(failed))
