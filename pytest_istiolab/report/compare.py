"""Compare two conformance reports: before and after an upgrade, or last night and tonight.

Pure functions over the report documents (``runreport``). A *regression* is a check that passed
in the baseline and failed or errored now; a *fix* the reverse; *newly skipped* and *newly not
run* are checks that passed or failed before and were skipped or not run now. Reports of
different schema versions cannot be compared; different suite versions or check sets are
compared on the checks both know, and the comparison says so instead of guessing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_istiolab.errors import UsageError

FAIL_ON = ("regression", "any-change", "never")
_BAD = {"failed", "error"}
_IDLE = {"skipped", "not-run"}


@dataclass
class Comparison:
    baseline: dict[str, Any]
    current: dict[str, Any]
    regressions: list[tuple[str, str, str]] = field(default_factory=list)
    fixes: list[tuple[str, str, str]] = field(default_factory=list)
    newly_skipped: list[tuple[str, str, str]] = field(default_factory=list)
    newly_not_run: list[tuple[str, str, str]] = field(default_factory=list)
    other_changes: list[tuple[str, str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def changes(self) -> list[tuple[str, str, str]]:
        return (self.regressions + self.fixes + self.newly_skipped + self.newly_not_run
                + self.other_changes)

    def fails(self, fail_on: str) -> bool:
        if fail_on == "never":
            return False
        if fail_on == "any-change":
            return bool(self.changes)
        return bool(self.regressions)

    def to_json(self) -> dict[str, Any]:
        def rows(items: list[tuple[str, str, str]]) -> list[dict[str, str]]:
            return [{"check": c, "before": b, "after": a} for c, b, a in items]
        return {"baseline": _describe(self.baseline), "current": _describe(self.current),
                "regressions": rows(self.regressions), "fixes": rows(self.fixes),
                "newly_skipped": rows(self.newly_skipped),
                "newly_not_run": rows(self.newly_not_run),
                "other_changes": rows(self.other_changes), "notes": list(self.notes)}

    def lines(self) -> list[str]:
        """The table printed after the run."""
        before, after = _describe(self.baseline), _describe(self.current)
        out = [f"baseline: Istio {before['istio_version']} ({before['profile']}, "
               f"{before['cluster']}, suite {before['suite_version']}, {before['started']})",
               f"current:  Istio {after['istio_version']} ({after['profile']}, "
               f"{after['cluster']}, suite {after['suite_version']}, {after['started']})"]
        out += [f"note: {note}" for note in self.notes]
        for title, items in (("regressions", self.regressions), ("fixes", self.fixes),
                             ("newly skipped", self.newly_skipped),
                             ("newly not run", self.newly_not_run),
                             ("other changes", self.other_changes)):
            out.append(f"{title}: {len(items)}")
            out += [f"  {check:<10} {b} -> {a}" for check, b, a in items]
        return out


def _describe(doc: dict[str, Any]) -> dict[str, Any]:
    found, run = doc.get("found") or {}, doc.get("run") or {}
    return {"istio_version": found.get("istio_version") or
            f"{run.get('requested_version')} (requested; none found)",
            "profile": run.get("profile"), "cluster": run.get("cluster"),
            "suite_version": (doc.get("suite") or {}).get("version"),
            "started": run.get("started")}


def load(path: Path) -> dict[str, Any]:
    """A report to compare against; UsageError naming the file when it cannot be one."""
    fix = "give the JSON file an earlier run wrote with --istio-conformance-report"
    try:
        doc = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise UsageError(f"--istio-compare: {path} does not exist", fix) from None
    except IsADirectoryError:
        raise UsageError(f"--istio-compare: {path} is a directory", fix) from None
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise UsageError(f"--istio-compare: {path} is not a JSON report ({err})", fix) from None
    if not isinstance(doc, dict) or "checks" not in doc or "schema_version" not in doc:
        raise UsageError(f"--istio-compare: {path} is not a pytest-istiolab conformance report "
                         "(no schema_version/checks)", fix)
    return doc


def compare(baseline: dict[str, Any], current: dict[str, Any]) -> Comparison:
    result = Comparison(baseline, current)
    if baseline.get("schema_version") != current.get("schema_version"):
        result.notes.append(f"report schema {baseline.get('schema_version')} vs "
                            f"{current.get('schema_version')}: not comparable; nothing compared")
        return result
    v_before = (baseline.get("suite") or {}).get("version")
    v_after = (current.get("suite") or {}).get("version")
    if v_before != v_after:
        result.notes.append(f"suite versions differ ({v_before} vs {v_after}): checks are "
                            "compared by ID; a check's test may have changed between them")
    before, after = baseline["checks"], current["checks"]
    only_before = sorted(set(before) - set(after))
    only_after = sorted(set(after) - set(before))
    if only_before:
        result.notes.append(f"checks only in the baseline (not compared): "
                            f"{', '.join(only_before)}")
    if only_after:
        result.notes.append(f"checks only in the current run (not compared): "
                            f"{', '.join(only_after)}")
    for check in sorted(set(before) & set(after)):
        b, a = before[check]["status"], after[check]["status"]
        if a == b:
            continue
        row = (check, b, a)
        if b == "passed" and a in _BAD:
            result.regressions.append(row)
        elif b in _BAD and a == "passed":
            result.fixes.append(row)
        elif a == "skipped" and b not in _IDLE:
            result.newly_skipped.append(row)
        elif a == "not-run" and b not in _IDLE:
            result.newly_not_run.append(row)
        else:
            result.other_changes.append(row)
    return result
