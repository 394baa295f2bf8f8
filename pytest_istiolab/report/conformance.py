"""The conformance result of a run: per lab and per catalogue check, on the terminal and as JSON.

Works under xdist: workers attach the lab number and check IDs to each report's
``user_properties`` (which also land in JUnit XML), and the controller tallies the reports.
The JSON file (``--istio-conformance-report``) is meant to be diffed between nightly runs and
before/after an upgrade.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pytest_istiolab import constants as c

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

    def add(self, lab: int, checks: list[str], outcome: str) -> None:
        self.labs[lab][outcome] += 1
        for check in checks:
            self.check_lab[check] = lab
            self.checks[check] = _worse(self.checks.get(check), outcome)

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
    config.stash.setdefault(TALLY_KEY, Tally()).add(lab, checks, outcome)


class Collector:
    """Registered on the controller (or the only process): sees every test report."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        collect(self.config, report)


def write_terminal(terminalreporter: Any, config: pytest.Config) -> None:
    tally = config.stash.get(TALLY_KEY, None)
    if tally is None or not tally.labs:
        return
    terminalreporter.section("istiolab conformance")
    for lab in sorted(tally.labs):
        counts = tally.labs[lab]
        covered = sum(1 for check, n in tally.check_lab.items() if n == lab)
        terminalreporter.write_line(
            f"Lab {lab}: {tally.status(lab)} - {counts['passed']} passed, {counts['failed']} "
            f"failed, {counts['skipped']} skipped; checks covered: {covered}")


def write_json(path: Path, config: pytest.Config, header: dict[str, Any]) -> None:
    tally = config.stash.get(TALLY_KEY, None) or Tally()
    labs = {str(lab): {"status": tally.status(lab), **dict(tally.labs[lab]),
                       "checks": {check: tally.checks[check]
                                  for check in sorted(tally.check_lab)
                                  if tally.check_lab[check] == lab}}
            for lab in sorted(tally.labs)}
    path.write_text(json.dumps({**header, "labs": labs}, indent=2) + "\n")
