"""What a failing lab test reports, and the per-lab conformance summary at the end of a run."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pytest

from .applier import Applier
from .session import ClusterSession

SESSION_KEY = pytest.StashKey["ClusterSession"]()
APPLIERS_KEY = pytest.StashKey[list[Applier]]()
COMMAND_MARK_KEY = pytest.StashKey[int]()
OUTCOMES_KEY = pytest.StashKey[dict[str, str]]()
DIAGNOSTICS_LIMIT = 20_000  # characters per failed test


def register_session(config: pytest.Config, session: ClusterSession) -> None:
    config.stash[SESSION_KEY] = session


def register_applier(item: pytest.Item, applier: Applier) -> None:
    item.stash.setdefault(APPLIERS_KEY, []).append(applier)


def mark_commands(item: pytest.Item) -> None:
    session = item.config.stash.get(SESSION_KEY, None)
    item.stash[COMMAND_MARK_KEY] = session.commands.mark() if session else 0


def record_outcome(item: pytest.Item, report: pytest.TestReport) -> None:
    outcomes = item.config.stash.setdefault(OUTCOMES_KEY, {})
    if report.when == "call" or report.outcome != "passed":
        if outcomes.get(item.nodeid) != "failed":
            outcomes[item.nodeid] = report.outcome


def failed_under(config: pytest.Config, nodeid: str) -> bool:
    """Did any test at or below ``nodeid`` (a module or a test) fail so far?"""
    outcomes = config.stash.get(OUTCOMES_KEY, {})
    return any(o == "failed" and k.startswith(nodeid) for k, o in outcomes.items())


def short_error(item: pytest.Item, excinfo: pytest.ExceptionInfo[BaseException]) -> str:
    """Our errors name cause and fix already: show them with the test line, no traceback."""
    where = ""
    for entry in reversed(excinfo.traceback):
        if str(entry.path) == str(item.path):
            where = f"{entry.path}:{entry.lineno + 1}: "
            break
    return f"{where}{type(excinfo.value).__name__}: {excinfo.value}"


def any_failed(config: pytest.Config) -> bool:
    return any(o == "failed" for o in config.stash.get(OUTCOMES_KEY, {}).values())


def attach_diagnostics(item: pytest.Item, report: pytest.TestReport) -> None:
    """Add the applied manifests, the commands run, pod logs and events to a failed report."""
    session = item.config.stash.get(SESSION_KEY, None)
    parts: list[str] = []
    for applier in item.stash.get(APPLIERS_KEY, []):
        for manifest, text in applier.sources:
            parts.append(f"--- applied {manifest}\n{text}")
    if session is not None:
        for description, output in session.commands.since(item.stash.get(COMMAND_MARK_KEY, 0)):
            command = description if description.startswith("$") else f"$ {description}"
            parts.append(f"--- {command}\n{output}")
        namespace = _namespace_of(item)
        if namespace:
            parts.append(_namespace_diagnostics(session, namespace))
    if parts:
        text = "\n".join(parts)
        if len(text) > DIAGNOSTICS_LIMIT:
            more = len(text) - DIAGNOSTICS_LIMIT
            text = text[:DIAGNOSTICS_LIMIT] + f"\n... ({more} more characters)"
        report.sections.append(("istiolab diagnostics", text))


def _namespace_of(item: pytest.Item) -> str | None:
    funcargs: dict[str, Any] = getattr(item, "funcargs", {})
    ns = funcargs.get("lab_namespace")
    return ns if isinstance(ns, str) else None


def _namespace_diagnostics(session: ClusterSession, namespace: str) -> str:
    kube = session.kube
    lines = [f"--- pods and events in {namespace}"]
    try:
        for pod in kube.pods(namespace):
            name = pod["metadata"]["name"]
            phase = (pod.get("status") or {}).get("phase")
            lines.append(f"pod {name}: {phase}")
            for container in (pod.get("spec") or {}).get("containers", []):
                tail = kube.logs(namespace, name, container["name"], tail_lines=20)
                if tail.strip():
                    lines.append(f"  logs {container['name']} (last 20 lines):\n{tail}")
        for event in kube.events(namespace)[-30:]:
            obj = event.get("involvedObject") or {}
            lines.append(f"event {event.get('type')} {event.get('reason')} "
                         f"{obj.get('kind')}/{obj.get('name')}: {event.get('message')}")
    except Exception as exc:  # diagnostics must never hide the real failure
        lines.append(f"(diagnostics incomplete: {exc})")
    return "\n".join(lines)


def write_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """Per lab: checks covered and passed/failed/skipped, a conformance line per lab."""
    outcomes = config.stash.get(OUTCOMES_KEY, {})
    if not outcomes:
        return
    per_lab: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    checks: dict[str, set[str]] = defaultdict(set)
    items = {i.nodeid: i for i in getattr(terminalreporter._session, "items", [])}
    for nodeid, outcome in outcomes.items():
        item = items.get(nodeid)
        lab_mark = item.get_closest_marker("lab") if item else None
        if lab_mark is None or not lab_mark.args:
            continue
        lab = f"Lab {lab_mark.args[0]}"
        per_lab[lab][outcome] += 1
        for mark in item.iter_markers("check") if item else []:
            checks[lab].update(mark.args)
    if not per_lab:
        return
    terminalreporter.section("istiolab conformance")
    for lab in sorted(per_lab, key=lambda s: int(s.split()[1])):
        counts = per_lab[lab]
        status = "FAILURE" if counts["failed"] else ("PARTIAL" if counts["skipped"] else "SUCCESS")
        terminalreporter.write_line(
            f"{lab}: {status} - {counts['passed']} passed, {counts['failed']} failed, "
            f"{counts['skipped']} skipped; checks covered: {len(checks[lab])}")
