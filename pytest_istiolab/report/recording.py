"""pytest glue of the versioned conformance report and the before/after comparison.

On the controller (or the only process) a :class:`Recorder` turns every test report into a
``runreport.TestRecord``; what the run found on the cluster (istiod, the proxies the labs used,
Kubernetes) comes from the fixtures through :func:`note_found`, and from xdist workers through
``workeroutput`` (:class:`XdistFound`, registered only when xdist is active). At the end the
report is written (``--istio-conformance-report``), compared with ``--istio-compare`` and the
exit status set by ``--istio-compare-fail-on``.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from pytest_istiolab import constants as c
from pytest_istiolab.deploy.found import summarize_proxies
from pytest_istiolab.errors import UsageError
from pytest_istiolab.report import compare, runreport
from pytest_istiolab.report.conformance import CHECKS_PROPERTY, LAB_PROPERTY
from pytest_istiolab.settings import Settings

FOUND_KEY = pytest.StashKey[dict[str, Any]]()
WORKER_FOUND = "istiolab_found"
PROXY_PODS = "proxy_pods"  # internal: summarized as "proxies" in the report


def option(config: pytest.Config, opt: c.Option) -> str | None:
    """An option's value: command line, else ini key, else environment variable."""
    value = config.getoption(opt.dest, default=None)
    return value or config.getini(opt.ini) or os.environ.get(opt.env) or None


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def note_found(config: pytest.Config, found: dict[str, Any]) -> None:
    """Merge what a fixture found on the cluster (see :func:`merge_found`)."""
    merged = config.stash.setdefault(FOUND_KEY, {})
    merge_found(merged, found)
    workeroutput = getattr(config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput[WORKER_FOUND] = json.dumps(merged)


def merge_found(into: dict[str, Any], found: dict[str, Any]) -> None:
    """``proxy_pods`` (pod uid -> image, revision) are united; other keys: the newest value."""
    for key, value in found.items():
        if key == PROXY_PODS:
            into.setdefault(PROXY_PODS, {}).update(value)
        elif key == "istiod_revisions":
            into[key] = sorted(set(into.get(key, [])) | set(value))
        elif value is not None or key not in into:
            into[key] = value


class Recorder:
    """Registered on the controller: one record per test, the comparison, the report file."""

    def __init__(self, config: pytest.Config, settings: Settings, target: Path | None,
                 baseline: dict[str, Any] | None, fail_on: str) -> None:
        self.config, self.settings = config, settings
        self.target, self.baseline, self.fail_on = target, baseline, fail_on
        self.records: dict[str, runreport.TestRecord] = {}
        self.started = now()
        self.comparison: compare.Comparison | None = None

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        props = dict(report.user_properties)
        if LAB_PROPERTY not in props:
            return
        checks = [i for i in str(props.get(CHECKS_PROPERTY, "")).split(",") if i]
        record = self.records.setdefault(report.nodeid, runreport.TestRecord(
            report.nodeid, int(str(props[LAB_PROPERTY])), checks))
        if report.skipped:
            outcome = "skipped"
        elif report.failed:
            outcome = "failed" if report.when == "call" else "error"
        else:
            outcome = "passed"
        record.merge(outcome, float(report.duration or 0.0), _first_line(report))

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if self.target is None and self.baseline is None:
            return
        stored = self.config.stash.get(FOUND_KEY, {})
        found = dict(stored)
        pods = found.pop(PROXY_PODS, None)
        if pods is not None:
            found["proxies"] = summarize_proxies(pods)
        run = runreport.RunInfo(
            profile=self.settings.profile, requested_version=self.settings.version,
            cluster=self.settings.cluster, context=self.settings.context,
            seed=self.settings.seed if self.settings.cluster == "embedded" else None,
            started=self.started, finished=now(), exit_status=int(exitstatus), found=found)
        document = runreport.build(run, list(self.records.values()))
        if self.baseline is not None:
            self.comparison = compare.compare(self.baseline, document)
            document["comparison"] = self.comparison.to_json()
            if self.comparison.fails(self.fail_on) and session.exitstatus == 0:
                session.exitstatus = pytest.ExitCode.TESTS_FAILED
                document["run"]["exit_status"] = int(session.exitstatus)
        if self.target is not None:
            runreport.write(self.target, document)

    def write_terminal(self, terminalreporter: Any) -> None:
        if self.comparison is not None:
            terminalreporter.section("istiolab comparison with the baseline")
            for line in self.comparison.lines():
                terminalreporter.write_line(line)
            if self.comparison.fails(self.fail_on):
                terminalreporter.write_line(
                    f"istiolab: the comparison fails the run (--istio-compare-fail-on="
                    f"{self.fail_on})", red=True)
        if self.target is not None:
            terminalreporter.write_line(f"istiolab conformance report: {self.target}")


class XdistFound:
    """xdist's controller side: what each worker found on its cluster."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        raw = getattr(node, "workeroutput", {}).get(WORKER_FOUND)
        if raw:
            merge_found(self.config.stash.setdefault(FOUND_KEY, {}), json.loads(raw))


def configure(config: pytest.Config, settings: Settings) -> Recorder:
    """Check the comparison options now, before any test runs (UsageError)."""
    raw_target = option(config, c.OPT_CONFORMANCE_REPORT)
    target = Path(raw_target).expanduser() if raw_target else None  # checked by the plugin
    raw_baseline = option(config, c.OPT_COMPARE)
    baseline = compare.load(Path(raw_baseline).expanduser()) if raw_baseline else None
    fail_on = option(config, c.OPT_COMPARE_FAIL_ON) or "regression"
    if fail_on not in c.COMPARE_FAIL_ON:
        raise UsageError(f"{c.OPT_COMPARE_FAIL_ON.flag}={fail_on!r} is not one of "
                         f"{', '.join(c.COMPARE_FAIL_ON)}",
                         f"pass {c.OPT_COMPARE_FAIL_ON.flag}=regression")
    recorder = Recorder(config, settings, target, baseline, fail_on)
    config.pluginmanager.register(recorder, "istiolab-recorder")
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(XdistFound(config), "istiolab-xdist-found")
    return recorder


def _first_line(report: pytest.TestReport) -> str | None:
    if report.passed:
        return None
    if report.skipped and isinstance(report.longrepr, tuple):
        return str(report.longrepr[2]).removeprefix("Skipped: ")
    crash = getattr(report.longrepr, "reprcrash", None)
    text = getattr(crash, "message", None) or str(report.longrepr or "")
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[0][:300] if lines else None
