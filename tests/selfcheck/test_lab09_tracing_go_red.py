"""Lab 9.4 goes red exactly where trace-context propagation breaks.

The lab module runs in a pytest subprocess against an embedded cluster whose productpage no
longer copies ``traceparent`` onto its calls to details and reviews (a Bookinfo that does not
forward the trace headers): each of its outbound sidecars then starts a new trace, so the
gateway's trace ends at productpage's inbound span. The full-trace, call-chain and Trace
Graph checks must fail; the search, services, operations and span-tag checks (which do not
depend on one trace spanning the chain) must pass.
"""

from __future__ import annotations

from pathlib import Path

from selfcheck_testkit import failed_test_names

LABS = Path(__file__).resolve().parent.parent / "labs"

BREAK_PROPAGATION = """
import pytest
from pytest_istiolab.embedded.workloads import productpage
_patch = pytest.MonkeyPatch()
def pytest_configure(config):
    _patch.setattr(productpage, "FORWARDED",
                   tuple(h for h in productpage.FORWARDED if h != "traceparent"))
def pytest_unconfigure(config):
    _patch.undo()
"""


def test_broken_propagation_turns_exactly_the_trace_chain_checks_red(pytester):
    pytester.makepyfile(break_propagation=BREAK_PROPAGATION)
    result = pytester.runpytest_subprocess(str(LABS / "test_lab09_tracing.py"), "-p",
                                           "break_propagation", "-p", "no:cacheprovider", "-q",
                                           "-rfE", "--istio-seed=7")
    assert failed_test_names(result.outlines) == {
        "test_a_full_trace_has_the_spans_of_the_manual",
        "test_parent_child_links_follow_the_bookinfo_flow",
        "test_trace_graph_is_one_tree_through_the_call_chain"}
    assert result.parseoutcomes().get("passed", 0) == 5, "the other checks must still pass"
