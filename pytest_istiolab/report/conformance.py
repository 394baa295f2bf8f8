"""The conformance result of a run: per lab and per catalogue check, on the terminal and as JSON.

Works under xdist: workers attach the lab number and check IDs to each report's
``user_properties`` (which also land in JUnit XML), and the controller tallies the reports.
The JSON report (``--istio-conformance-report``) is ``runreport``'s, written by ``recording``.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import pytest

from pytest_istiolab import constants as c
from pytest_istiolab.report.catalogue import CATALOGUE, is_companion

LAB_PROPERTY = "istiolab_lab"
CHECKS_PROPERTY = "istiolab_checks"
TALLY_KEY = pytest.StashKey["Tally"]()


@dataclass
class Tally:
    """Outcomes by lab, and the outcome of each check (worst outcome of the tests naming it)."""

    labs: dict[int, dict[str, int]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(int)))
    checks: dict[str, str] = field(default_factory=dict)
    check_lab: dict[str, int] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)  # check -> first skip reason

    def add(self, lab: int, checks: list[str], outcome: str, reason: str = "") -> None:
        self.labs[lab][outcome] += 1
        for check in checks:
            self.check_lab[check] = lab
            self.checks[check] = _worse(self.checks.get(check), outcome)
            if outcome == "skipped" and reason:
                self.reasons.setdefault(check, reason)

    def passed(self, lab: int | None = None, companion: bool = False) -> list[str]:
        """Checks whose every test passed (a failed or skipped test leaves a check uncovered)."""
        return sorted(i for i, o in self.checks.items()
                      if o == "passed" and is_companion(i) == companion
                      and (lab is None or self.check_lab[i] == lab))

    def status(self, lab: int) -> str:
        counts = self.labs[lab]
        if counts["failed"]:
            return "FAILURE"
        return "PARTIAL" if counts["skipped"] else "SUCCESS"


_RANK = {"passed": 0, "skipped": 1, "failed": 2}


def _worse(a: str | None, b: str) -> str:
    return b if a is None or _RANK[b] > _RANK[a] else a


def annotate(item: pytest.Item) -> None:
    """Record the test's lab and check IDs where xdist and JUnit carry them."""
    lab = item.get_closest_marker(c.MARK_LAB)
    if lab is None or not lab.args:
        return
    ids = [i for m in item.iter_markers(c.MARK_CHECK) for i in m.args]
    props = dict(item.user_properties)
    if LAB_PROPERTY not in props:
        item.user_properties.append((LAB_PROPERTY, int(lab.args[0])))
        item.user_properties.append((CHECKS_PROPERTY, ",".join(ids)))


def collect(config: pytest.Config, report: pytest.TestReport) -> None:
    """Tally one report (call phase, or a setup that failed or skipped)."""
    if report.when != "call" and report.outcome == "passed":
        return
    props = dict(report.user_properties)
    if LAB_PROPERTY not in props:
        return
    outcome = "failed" if report.failed else report.outcome
    checks = [i for i in str(props.get(CHECKS_PROPERTY, "")).split(",") if i]
    lab = int(str(props[LAB_PROPERTY]))
    config.stash.setdefault(TALLY_KEY, Tally()).add(lab, checks, outcome, _skip_reason(report))


def _skip_reason(report: pytest.TestReport) -> str:
    if not report.skipped:
        return ""
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr or "")


class Collector:
    """Registered on the controller (or the only process): sees every test report."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        collect(self.config, report)


def write_terminal(terminalreporter: Any, config: pytest.Config) -> None:
    """Per lab: test outcomes and checks passed; then the checks not passed, by why; last line
    ``N of 120 catalogue checks passed``. Companion checks (``-X``) are counted apart."""
    tally = config.stash.get(TALLY_KEY, None)
    if tally is None or not tally.labs:
        return
    write = terminalreporter.write_line
    terminalreporter.section("istiolab conformance")
    for lab in sorted(tally.labs):
        counts = tally.labs[lab]
        in_lab = sum(1 for i in CATALOGUE if _lab(i) == lab)
        write(f"Lab {lab}: {tally.status(lab)} - {counts['passed']} passed, {counts['failed']} "
              f"failed, {counts['skipped']} skipped; checks passed: {len(tally.passed(lab))} of "
              f"{in_lab}")
    companions = sorted(i for i in tally.checks if is_companion(i))
    if companions:
        write(f"companion checks (beyond the catalogue): {len(tally.passed(companion=True))} of "
              f"{len(companions)} passed")
    failed = sorted(i for i, o in tally.checks.items() if o == "failed")
    if failed:
        write(f"failed: {compress(failed)}")
    skipped = sorted(i for i, o in tally.checks.items() if o == "skipped")
    by_reason: dict[str, list[str]] = defaultdict(list)
    for check in skipped:
        by_reason[tally.reasons.get(check, "no reason given")].append(check)
    for reason, ids in sorted(by_reason.items()):
        write(f"skipped ({reason}): {compress(ids)}")
    not_run = [i for i in CATALOGUE if i not in tally.checks]
    if not_run:
        write(f"not run (not built, or not selected in this run): {compress(not_run)}")
    write(f"{len(tally.passed())} of {len(CATALOGUE)} catalogue checks passed")


def _lab(check: str) -> int:
    return int(check[1:].split("-")[0].split(".")[0])


def compress(ids: list[str]) -> str:
    """``L6.1-C01, L6.1-C02, L6.1-C03, L7-C01`` -> ``L6.1-C01..C03, L7-C01``."""
    out: list[str] = []
    run: list[tuple[str, int]] = []

    def flush() -> None:
        if run:
            first = f"{run[0][0]}-{_KIND}{run[0][1]:02d}"
            out.append(first if len(run) == 1 else f"{first}..{_KIND}{run[-1][1]:02d}")
            run.clear()

    for check in ids:
        prefix, _, number = check.rpartition("-")
        kind, n = number[0], int(number[1:])
        if kind != _KIND:
            flush()
            out.append(check)
        elif run and run[-1][0] == prefix and run[-1][1] + 1 == n:
            run.append((prefix, n))
        else:
            flush()
            run.append((prefix, n))
    flush()
    return ", ".join(out)


_KIND = "C"

