"""The per-lab conformance summary and its JSON report, with and without xdist."""

from __future__ import annotations

import json

import pytest

LAB_TESTS = """
import pytest

@pytest.mark.lab(1)
@pytest.mark.check("L1-C05")
def test_ok():
    pass

@pytest.mark.lab(1)
@pytest.mark.check("L1-C06")
def test_broken():
    assert False

@pytest.mark.lab(2)
@pytest.mark.check("L2-C01", "L2-C02")
@pytest.mark.requires("egress-gateway")
def test_needs_egress():
    pass

@pytest.mark.lab(4)
@pytest.mark.check("L4.1-X01")
def test_companion():
    pass

def test_not_a_lab():
    pass
"""


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["single", "xdist"])
def test_summary_and_json_report(pytester, xdist):
    pytester.makepyfile(LAB_TESTS)
    report = pytester.path / "conformance.json"
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--istio-profile=default",
                                           f"--istio-conformance-report={report}", *xdist)
    result.stdout.fnmatch_lines([
        "*istiolab conformance*",
        "Lab 1: FAILURE - 1 passed, 1 failed, 0 skipped; checks passed: 1 of 12",
        "Lab 2: PARTIAL - 0 passed, 0 failed, 1 skipped; checks passed: 0 of 8",
        "Lab 4: SUCCESS - 1 passed, 0 failed, 0 skipped; checks passed: 0 of 9",
        "companion checks (beyond the catalogue): 1 of 1 passed",
        "failed: L1-C06",
        "skipped (profile 'default' has no egress-gateway): L2-C01..C02",
        "not run (not built, or not selected in this run): L1-C01..C04, L1-C07..C12, "
        "L2-C03..C08, L3.1-C01..C03, *",
        "1 of 120 catalogue checks passed",
    ])
    after = result.stdout.lines[result.stdout.lines.index(
        "1 of 120 catalogue checks passed") + 1]
    assert after.startswith("="), f"the count ends the istiolab summary, then came {after!r}"
    data = json.loads(report.read_text())
    run = data["run"]
    assert (run["profile"], run["requested_version"], run["cluster"]) == ("default", "1.26.0",
                                                                         "embedded")
    statuses = {check: entry["status"] for check, entry in data["checks"].items()}
    assert {k: statuses[k] for k in ("L1-C05", "L1-C06", "L2-C01", "L2-C02")} == {
        "L1-C05": "passed", "L1-C06": "failed", "L2-C01": "skipped", "L2-C02": "skipped"}
    assert data["labs"]["2"]["status"] == "PARTIAL"
    assert data["labs"]["1"]["status"] == "FAILURE"
