"""What a failing lab test reports (:mod:`diagnostics`), what the run found and will change
(header lines and warnings), and test outcomes for ``--istio-keep=on-failure``.

The per-lab conformance summary is :mod:`conformance`'s."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_istiolab.cluster import ClusterSession
from pytest_istiolab.deploy import RunPlan
from pytest_istiolab.kube import Applier
from pytest_istiolab.report import diagnostics

SESSION_KEY = pytest.StashKey["ClusterSession"]()
APPLIERS_KEY = pytest.StashKey[list[Applier]]()
COMMAND_MARK_KEY = pytest.StashKey[int]()
OUTCOMES_KEY = pytest.StashKey[dict[str, str]]()
PLAN_KEY = pytest.StashKey[RunPlan]()
WARNINGS_KEY = pytest.StashKey[list[str]]()
DUMPED_KEY = pytest.StashKey[dict[tuple[str, str], str]]()  # (module, namespace) -> first failure
SECTION = "istiolab diagnostics"


def register_session(config: pytest.Config, session: ClusterSession) -> None:
    config.stash[SESSION_KEY] = session


def register_applier(item: pytest.Item, applier: Applier) -> None:
    item.stash.setdefault(APPLIERS_KEY, []).append(applier)


def mark_commands(item: pytest.Item) -> None:
    session = item.config.stash.get(SESSION_KEY, None)
    item.stash[COMMAND_MARK_KEY] = session.commands.mark() if session else 0


def record_outcome(item: pytest.Item, report: pytest.TestReport) -> None:
    record_report(item.config, report)


def record_report(config: pytest.Config, report: pytest.TestReport) -> None:
    """Note a test's outcome (on an xdist controller too, from the workers' reports, so that
    ``--istio-keep=on-failure`` decides there on the run's failures, not on none)."""
    outcomes = config.stash.setdefault(OUTCOMES_KEY, {})
    if report.when == "call" or report.outcome != "passed":
        if outcomes.get(report.nodeid) != "failed":
            outcomes[report.nodeid] = report.outcome


KEPT_KEY = pytest.StashKey[list[str]]()
KEPT_SENT_KEY = pytest.StashKey[int]()
KEPT_PROPERTY = "istiolab_kept_namespaces"  # worker -> controller: the namespaces it kept


def note_kept(config: pytest.Config, names: list[str]) -> None:
    """Namespaces ``--istio-keep`` left in place (named at the end of the run)."""
    kept = config.stash.setdefault(KEPT_KEY, [])
    kept.extend(n for n in names if n not in kept)


def kept_since_last_report(config: pytest.Config) -> list[str]:
    """The namespaces kept since the previous call (sent with a teardown report)."""
    kept = config.stash.get(KEPT_KEY, [])
    sent = config.stash.get(KEPT_SENT_KEY, 0)
    config.stash[KEPT_SENT_KEY] = len(kept)
    return kept[sent:]


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
    """Add what :mod:`diagnostics` collects to a failed report: a terminal section, and a
    block in the pytest-html report when pytest-html is active. Bounded in size."""
    session = item.config.stash.get(SESSION_KEY, None)
    sources = [s for applier in item.stash.get(APPLIERS_KEY, []) for s in applier.sources]
    commands = [(d if d.startswith("$") else f"$ {d}", out) for d, out in
                session.commands.since(item.stash.get(COMMAND_MARK_KEY, 0))] if session else []
    namespace = _namespace_of(item)
    dumped = item.config.stash.setdefault(DUMPED_KEY, {})
    key = (str(item.path), namespace or "")
    parts = diagnostics.bound(diagnostics.collect(session, sources, commands, namespace,
                                                  dumped_by=dumped.get(key)))
    dumped.setdefault(key, item.nodeid)
    if not parts:
        return
    report.sections.append((SECTION, diagnostics.render_text(parts)))
    if item.config.pluginmanager.hasplugin("html"):
        from pytest_html import extras

        report.extras = [*getattr(report, "extras", []),  # type: ignore[attr-defined]
                         extras.html(diagnostics.render_html(parts))]


def _namespace_of(item: pytest.Item) -> str | None:
    funcargs: dict[str, Any] = getattr(item, "funcargs", {})
    ns = funcargs.get("lab_namespace")
    return ns if isinstance(ns, str) else None


def register_plan(config: pytest.Config, plan: RunPlan) -> None:
    """What the run found on the cluster and will change (header lines, summary warnings)."""
    config.stash[PLAN_KEY] = plan


def plan_lines(config: pytest.Config) -> list[str]:
    plan = config.stash.get(PLAN_KEY, None)
    return list(plan.lines) if plan else []


def note_warnings(config: pytest.Config, warnings: tuple[str, ...]) -> None:
    """Warnings found during the run (e.g. by the ``istio`` fixture) for the terminal summary."""
    config.stash.setdefault(WARNINGS_KEY, []).extend(warnings)


def write_warnings(terminalreporter: Any, config: pytest.Config) -> None:
    """The plan's warnings and those noted during the run, once each, in the summary."""
    plan = config.stash.get(PLAN_KEY, None)
    found = [*(plan.warnings if plan else ()), *config.stash.get(WARNINGS_KEY, [])]
    shown = list(dict.fromkeys(found))
    if shown:
        terminalreporter.section("istiolab warnings", yellow=True)
        for warning in shown:
            terminalreporter.write_line(f"istiolab: {warning}", yellow=True, bold=True)


def kept_lines(settings: Any, failed: bool, kind_cluster: str | None = None,
               namespaces: list[str] | None = None) -> list[str]:
    """What ``--istio-keep`` kept at the end of the run, and the one command that deletes it.

    ``failed``: did a test fail (the decision the keeping itself made); ``kind_cluster``: the
    kind cluster this run created; ``namespaces``: the lab namespaces left in place."""
    from pytest_istiolab import constants as c

    if settings.keep == "never" or (settings.keep == "on-failure" and not failed):
        return []
    flag = f"--istio-keep={settings.keep}"
    if settings.cluster == "embedded":
        return [f"istiolab: {flag}: nothing is kept on the embedded cluster, which stops with "
                "the run; keep needs a kind or existing cluster"]
    if settings.cluster == "kind" and kind_cluster:
        inside = f" with namespaces {', '.join(namespaces)}" if namespaces else ""
        return [f"istiolab: {flag} kept kind cluster {kind_cluster}{inside}; delete it with: "
                f"kind delete cluster --name {kind_cluster}"]
    context = f" --context {settings.context}" if settings.context else ""
    selector = f"{c.LABEL_SESSION}={settings.run_id}"
    if namespaces is not None and not namespaces:
        return [f"istiolab: {flag}: no lab namespace was kept (no test in one failed)"]
    which = (f"namespaces {', '.join(namespaces)}" if namespaces else
             "this run's lab namespaces")
    return [f"istiolab: {flag} kept {which} (label {selector}; Istio and "
            "the addons as the run left them); delete them with: "
            f"kubectl{context} delete namespace -l {selector}"]


ENVIRONMENT_KEY = pytest.StashKey[dict[str, str]]()
ISTIO_FOUND = "istiolab Istio found"
TESTED_KEY = pytest.StashKey[dict[str, str]]()


def note_environment(config: pytest.Config, istio_found: str, kubernetes: str) -> None:
    """What the cluster runs (for pytest-html's Environment table), once known."""
    config.stash[ENVIRONMENT_KEY] = {ISTIO_FOUND: istio_found,
                                     "istiolab Kubernetes version": kubernetes}


def note_tested(config: pytest.Config, worker: str, environment: dict[str, str]) -> None:
    """On the controller: the mesh a process tested (an xdist worker's id, or "")."""
    if ISTIO_FOUND in environment:
        config.stash.setdefault(TESTED_KEY, {})[worker] = environment[ISTIO_FOUND]


def tested_lines(config: pytest.Config) -> list[str]:
    """One summary line per mesh the run's processes tested, naming the xdist workers."""
    workers: dict[str, list[str]] = {}
    for worker, described in sorted(config.stash.get(TESTED_KEY, {}).items()):
        workers.setdefault(described, []).append(worker)
    return [f"istiolab: the mesh under test{' (' + ', '.join(w) + ')' if any(w) else ''}: "
            f"{mesh}" for mesh, w in workers.items()]


def environment(config: pytest.Config) -> dict[str, str]:
    return config.stash.get(ENVIRONMENT_KEY, {})
