"""The versioned conformance report (``--istio-conformance-report``): built from plain records.

No pytest here: ``recording`` turns test reports into :class:`TestRecord` s and what the run found
on the cluster into a ``found`` dict; this module builds the JSON document, which
``conformance-report.schema.json`` (beside this file) describes. Two such documents are compared
by ``compare``.

A check's status is the worst outcome of the tests that name it (error > failed > skipped >
passed); a catalogue check that no collected test names is ``not-run``, with the reason.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from pytest_istiolab.report.catalogue import CATALOGUE, is_companion, lab_of

SCHEMA_VERSION = 1
SCHEMA_PATH = Path(__file__).with_name("conformance-report.schema.json")
STATUS_RANK = {"passed": 0, "skipped": 1, "failed": 2, "error": 3}


@dataclass
class TestRecord:
    """One test's result: outcome ``passed | failed | error | skipped``, all phases together."""

    nodeid: str
    lab: int
    checks: list[str]
    outcome: str = "passed"
    duration: float = 0.0
    message: str | None = None  # first line of the failure, or the skip reason

    def merge(self, outcome: str, duration: float, message: str | None) -> None:
        self.duration += duration
        if STATUS_RANK[outcome] > STATUS_RANK[self.outcome]:
            self.outcome, self.message = outcome, message


@dataclass
class RunInfo:
    """What the run was and what it found (``found``: istiod, proxies, Kubernetes, server)."""

    profile: str
    requested_version: str
    cluster: str
    context: str | None
    seed: int | None
    started: str
    finished: str = ""
    exit_status: int = 0
    found: dict[str, Any] = field(default_factory=dict)


def suite_version() -> str:
    try:
        return metadata.version("pytest-istiolab")
    except metadata.PackageNotFoundError:  # pragma: no cover - run from a bare checkout
        return "unknown"


def check_statuses(records: list[TestRecord]) -> dict[str, dict[str, Any]]:
    """Per check ID: status, the tests behind it, and what failed or skipped (first lines)."""
    checks: dict[str, dict[str, Any]] = {}
    for record in sorted(records, key=lambda r: r.nodeid):
        for check in record.checks:
            entry = checks.setdefault(check, {"status": "passed", "tests": []})
            entry["tests"].append({"nodeid": record.nodeid, "outcome": record.outcome,
                                   "duration": round(record.duration, 3),
                                   **({"message": record.message} if record.message else {})})
            if STATUS_RANK[record.outcome] > STATUS_RANK[entry["status"]]:
                entry["status"] = record.outcome
    return checks


def build(run: RunInfo, records: list[TestRecord]) -> dict[str, Any]:
    """The report document (see the schema for every field)."""
    checks = check_statuses(records)
    for check, title in CATALOGUE.items():
        entry = checks.get(check)
        if entry is None:
            checks[check] = {"status": "not-run", "tests": [], "title": title,
                             "reason": "no collected test names it (not built, or deselected)"}
        else:
            entry["title"] = title
    labs: dict[str, dict[str, Any]] = {}
    for check, entry in checks.items():
        lab = labs.setdefault(str(lab_of(check)), {"passed": 0, "failed": 0, "error": 0,
                                                   "skipped": 0, "not-run": 0})
        if not is_companion(check) and check in CATALOGUE:
            lab[entry["status"]] += 1
    for lab_key, lab in labs.items():
        lab["status"] = ("FAILURE" if lab["failed"] or lab["error"] else
                         "PARTIAL" if lab["skipped"] or lab["not-run"] else "SUCCESS")
        lab["tests"] = sum(1 for r in records if str(r.lab) == lab_key)
    catalogue_passed = sum(1 for c in CATALOGUE if checks[c]["status"] == "passed")
    companions = {c: e for c, e in checks.items() if is_companion(c)}
    return {
        "schema_version": SCHEMA_VERSION,
        "suite": {"name": "pytest-istiolab", "version": suite_version()},
        "run": {k: v for k, v in asdict(run).items() if k != "found"},
        "found": run.found,
        "summary": {"catalogue_checks": len(CATALOGUE), "catalogue_passed": catalogue_passed,
                    "companion_checks": len(companions),
                    "companion_passed": sum(1 for e in companions.values()
                                            if e["status"] == "passed"),
                    "tests": len(records)},
        "labs": dict(sorted(labs.items(), key=lambda kv: int(kv[0]))),
        "checks": dict(sorted(checks.items())),
    }


def write(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(document, indent=2, sort_keys=False) + "\n")
    tmp.replace(path)


def schema() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(SCHEMA_PATH.read_text())
    return loaded
