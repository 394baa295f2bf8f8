"""The Lab 5.1 and Lab 4.1 checks go red when fault injection breaks in the mesh model.

Each case runs lab tests (from ``tests/labs``) in-process with pytester against an embedded
cluster whose fault injection has one behaviour broken by a tiny plugin, and expects exactly
the named lab tests to fail while the rest of the selection passes:

* the fault's route ignores its ``end-user: jason`` match (everyone's ratings calls are
  delayed or aborted): only the direct ratings checks can see it, as everyone else is routed
  to reviews v1, which never calls ratings;
* ``percentage.value`` is ignored (Lab 5.1's samples set only that field): jason is no
  longer delayed or aborted.

(The deprecated integer ``percent`` of Lab 4.1's ``delay.yaml``, and percentages other than
100, are guarded by the model's own tests in ``test_faults.py``; each case here costs an
embedded cluster with Istio and Bookinfo, so there are only these two.)

The plugin also shortens the embedded cluster's ``eventually`` so the expected failures come
quickly.
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
    "match_ignored": """
from pytest_istiolab.embedded.mesh import routing
def pytest_configure(config):
    _quick()
    original = routing.route_matches
    def loose(route, ctx, namespace):
        return bool(route.get("fault")) or original(route, ctx, namespace)
    _patch.setattr(routing, "route_matches", loose)
""",
    "percentage_ignored": """
from pytest_istiolab.embedded.mesh import faults
def pytest_configure(config):
    _quick()
    _patch.setattr(faults, "_fraction", lambda spec, legacy: faults.Fraction(
        int(spec.get("percent") or 0), 100))
""",
}

CASES = [
    ("match_ignored", "test_lab05_fault_injection.py", "hits_only or black_stars",
     {"test_delay_hits_only_ratings_calls_of_jason",
      "test_abort_hits_only_ratings_calls_of_jason"}),
    ("percentage_ignored", "test_lab05_fault_injection.py",
     "six_seconds or shows_ratings or black_stars",
     {"test_delay_makes_jasons_reviews_unavailable_after_about_six_seconds",
      "test_abort_shows_ratings_unavailable_to_jason"}),
]


@pytest.mark.parametrize("breaker,module,selection,expected", CASES, ids=[c[0] for c in CASES])
def test_fault_checks_go_red_when_faults_break(pytester: pytest.Pytester, breaker: str,
                                               module: str, selection: str,
                                               expected: set[str]) -> None:
    pytester.makepyfile(**{f"break_{breaker}": PATCHING + BREAKERS[breaker]})
    pytester.syspathinsert()
    result = pytester.runpytest_inprocess(str(LABS / module), "-p", f"break_{breaker}",
                                          "-k", selection, "-p", "no:cacheprovider", "-q",
                                          "--istio-seed=7")
    failed = {r.nodeid.split("::")[-1].split("[")[0]
              for r in result.reprec.getreports("pytest_runtest_logreport") if r.failed}
    assert failed == expected
    assert result.parseoutcomes().get("passed", 0) > 0, "the rest of the selection must pass"
