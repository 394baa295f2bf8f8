"""The versioned conformance report, its JSON Schema, and the before/after comparison."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest

from pytest_istiolab.report import compare, runreport
from pytest_istiolab.report.catalogue import CATALOGUE

MODULE = """
import os
import pytest

pytestmark = [pytest.mark.lab(1)]

@pytest.mark.check("L1-C05")
def test_steady():
    pass

@pytest.mark.check("L1-C06")
def test_turns():
    if os.environ.get("ISTIOLAB_TEST_REGRESS") == "1":
        assert False, "proxy count 0 != 2"

@pytest.mark.check("L1-C07")
def test_may_skip():
    if os.environ.get("ISTIOLAB_TEST_SKIP") == "1":
        pytest.skip("profile 'minimal' has no ingress-gateway")
"""


def _record(nodeid: str, checks: list[str], outcome: str, message: str | None = None):
    record = runreport.TestRecord(nodeid, 1, checks)
    record.merge(outcome, 0.25, message)
    return record


def _doc(statuses: dict[str, str], version: str = "0.1.0") -> dict:
    run = runreport.RunInfo("demo", "1.26.0", "embedded", None, 7, "2026-12-01T00:00:00+00:00",
                            "2026-12-01T00:01:00+00:00")
    doc = runreport.build(run, [_record(f"t.py::{c}", [c], s) for c, s in statuses.items()])
    doc["suite"]["version"] = version
    return doc


def test_report_validates_and_names_every_catalogue_check() -> None:
    run = runreport.RunInfo("demo", "1.26.0", "embedded", None, 7, "2026-12-01T00:00:00+00:00",
                            "2026-12-01T00:01:00+00:00", found={
                                "provider": "embedded", "istio_version": "1.26.0",
                                "proxies": [{"image": "docker.io/istio/proxyv2:1.26.0",
                                             "version": "1.26.0", "revision": "default",
                                             "count": 3}]})
    doc = runreport.build(run, [_record("t.py::a", ["L1-C05", "L1-X01"], "passed"),
                                _record("t.py::b", ["L1-C05"], "failed", "assert 2 == 4")])
    jsonschema.validate(doc, runreport.schema())
    assert doc["checks"]["L1-C05"]["status"] == "failed"
    assert doc["checks"]["L1-C05"]["tests"][1] == {"nodeid": "t.py::b", "outcome": "failed",
                                                   "duration": 0.25, "message": "assert 2 == 4"}
    assert doc["checks"]["L9.4-C05"]["status"] == "not-run"
    assert set(CATALOGUE) <= set(doc["checks"])
    assert doc["summary"]["companion_checks"] == 1 and doc["summary"]["catalogue_passed"] == 0
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**doc, "schema_version": 2}, runreport.schema())


def test_comparison_sorts_changes() -> None:
    before = _doc({"L1-C05": "passed", "L1-C06": "failed", "L1-C07": "passed",
                   "L1-C08": "passed"})
    after = _doc({"L1-C05": "failed", "L1-C06": "passed", "L1-C07": "skipped"})
    result = compare.compare(before, after)
    assert result.regressions == [("L1-C05", "passed", "failed")]
    assert result.fixes == [("L1-C06", "failed", "passed")]
    assert result.newly_skipped == [("L1-C07", "passed", "skipped")]
    assert result.newly_not_run == [("L1-C08", "passed", "not-run")]
    assert (result.fails("regression"), result.fails("never")) == (True, False)
    assert not compare.compare(before, before).fails("any-change")


def test_comparison_says_when_reports_differ_in_kind() -> None:
    before, after = _doc({"L1-C05": "passed"}, "0.1.0"), _doc({"L1-C05": "passed"}, "0.2.0")
    assert any("suite versions differ" in n for n in compare.compare(before, after).notes)
    other = {**after, "schema_version": 99}
    result = compare.compare(before, other)
    assert result.changes == [] and "not comparable" in result.notes[0]


@pytest.mark.parametrize("content", ["", "{not json", "[]", '{"labs": {}}'])
def test_a_baseline_that_is_not_a_report_is_one_usage_error(pytester, content) -> None:
    pytester.makepyfile(MODULE)
    baseline = pytester.path / "baseline.json"
    baseline.write_text(content)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider",
                                           f"--istio-compare={baseline}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--istio-compare: *baseline.json*"])
    assert "Traceback" not in result.stderr.str() + result.stdout.str()


def test_unwritable_report_path_is_refused_before_the_run(pytester) -> None:
    pytester.makepyfile(MODULE)
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", f"--istio-conformance-report={pytester.path}/no/such/r.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--istio-conformance-report=*does not exist*"])


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["single", "xdist"])
def test_before_and_after(pytester, monkeypatch, xdist) -> None:
    pytester.makepyfile(MODULE)
    base, after = pytester.path / "before.json", pytester.path / "after.json"
    first = pytester.runpytest_subprocess("-p", "no:cacheprovider",
                                          f"--istio-conformance-report={base}", *xdist)
    assert first.ret == 0
    jsonschema.validate(json.loads(base.read_text()), runreport.schema())

    same = pytester.runpytest_subprocess("-p", "no:cacheprovider", f"--istio-compare={base}",
                                         *xdist)
    assert same.ret == 0
    same.stdout.fnmatch_lines(["*istiolab comparison with the baseline*", "regressions: 0"])

    monkeypatch.setenv("ISTIOLAB_TEST_REGRESS", "1")
    worse = pytester.runpytest_subprocess("-p", "no:cacheprovider", f"--istio-compare={base}",
                                          f"--istio-conformance-report={after}", *xdist)
    assert worse.ret == 1
    worse.stdout.fnmatch_lines(["regressions: 1", "  L1-C06*passed -> failed",
                                "*the comparison fails the run*"])
    doc = json.loads(after.read_text())
    jsonschema.validate(doc, runreport.schema())
    assert doc["comparison"]["regressions"] == [
        {"check": "L1-C06", "before": "passed", "after": "failed"}]
    assert doc["checks"]["L1-C06"]["tests"][0]["message"].startswith("AssertionError")

    # a green run still fails when the comparison says so: the changed test is deselected
    monkeypatch.delenv("ISTIOLAB_TEST_REGRESS")
    deselected = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", f"--istio-compare={base}", "--istio-compare-fail-on=any-change",
        "-k", "not turns", *xdist)
    assert deselected.ret == 1
    deselected.stdout.fnmatch_lines(["newly not run: 1", "  L1-C06*passed -> not-run"])
    tolerant = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", f"--istio-compare={base}", "-k", "not turns", *xdist)
    assert tolerant.ret == 0


def test_junit_xml_carries_the_check_ids(pytester) -> None:
    pytester.makepyfile(MODULE)
    junit = pytester.path / "junit.xml"
    pytester.runpytest_subprocess("-p", "no:cacheprovider", f"--junitxml={junit}")
    props = {(p.get("name"), p.get("value")) for p in ET.parse(junit).iter("property")}
    assert ("istiolab_checks", "L1-C06") in props


def test_found_names_istiod_and_the_proxies_the_labs_used(pytester) -> None:
    """On the embedded cluster: istiod's version from its image, the sidecars of the lab's
    sleep pod, the Kubernetes version; merged from the xdist worker that ran the module."""
    pytester.makepyfile(test_lab02_found="""
        import pytest

        @pytest.mark.lab(2)
        @pytest.mark.check("L2-C01")
        def test_sleep_runs(sleep):
            assert sleep.pod
    """)
    report = pytester.path / "r.json"
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "1",
                                           f"--istio-conformance-report={report}")
    assert result.ret == 0, result.stdout.str()[-2000:]
    found = json.loads(report.read_text())["found"]
    assert found["istio_version"] == "1.26.0" and found["provider"] == "embedded"
    assert found["kubernetes_version"].startswith("v1.")
    assert found["istiod_revisions"] == ["default"]
    assert [(p["version"], p["count"]) for p in found["proxies"]] == [("1.26.0", 1)]
    assert Path(found["server"].split("://", 1)[0] + ":").name in ("http:", "https:")
