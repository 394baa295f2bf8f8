"""pytest hooks of pytest-istiolab: options, ini keys, markers, header, skips, reports."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
import threading
from pathlib import Path

import pytest

from pytest_istiolab import constants as c
from pytest_istiolab.cluster import ClusterHandle, ClusterProvider, HandedOver, make_provider
from pytest_istiolab.cluster.providers.kind import handle_from_json, handle_to_json
from pytest_istiolab.deploy import inspect_cluster, runinstall
from pytest_istiolab.deploy.capabilities import MeshCapabilities
from pytest_istiolab.errors import IstioLabError
from pytest_istiolab.istioctl import resolve_istioctl
from pytest_istiolab.report import conformance, recording, reporting
from pytest_istiolab.settings import Settings, from_lookup

pytest_plugins = ["pytest_istiolab.fixtures"]

SETTINGS_KEY = pytest.StashKey[Settings]()
SHARED_PROVIDER_KEY = pytest.StashKey[ClusterProvider]()
SHARED_HANDLE_KEY = pytest.StashKey[ClusterHandle]()
RECORDER_KEY = pytest.StashKey[recording.Recorder]()
NEEDS_KEY = pytest.StashKey[tuple[str, ...]]()  # an item's required capabilities
MESH_KEY = pytest.StashKey[MeshCapabilities]()  # the installed mesh's, once read
HANDLE_INPUT = "istiolab_cluster_handle"
RUN_ID_INPUT = "istiolab_run_id"  # the controller's run id, the same on every xdist worker
WORKDIR_INPUT = "istiolab_workdir"  # the controller's workdir: workers' are inside it


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("istiolab", "Istio lab conformance (pytest-istiolab)")
    for opt in c.OPTIONS:
        env = f" [env {opt.env}]"
        default = f" (default: {opt.default})" if opt.default else ""
        group.addoption(opt.flag, dest=opt.dest, default=None, help=opt.help + default + env)
        parser.addini(opt.ini, help=opt.help + default, default=None)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{c.MARK_LAB}(n): the lab of the manual this test "
                            "belongs to; also selectable as -m labN")
    for n in c.LAB_NUMBERS:
        config.addinivalue_line("markers", f"lab{n}: tests of lab {n} of the manual")
    config.addinivalue_line("markers", f"{c.MARK_CHECK}(*ids): catalogue check IDs this test "
                            "covers, e.g. check('L1-C06')")
    config.addinivalue_line("markers", f"{c.MARK_REQUIRES}(*capabilities): what the test needs "
                            f"from the installation ({', '.join(c.CAPABILITIES)}); skipped with "
                            "the reason when the installed mesh lacks it")
    config.pluginmanager.register(RequiresSkip(), "istiolab-requires")
    try:
        settings = _settings(config)
        config.stash[SETTINGS_KEY] = settings
        if not _is_worker(config):
            config.pluginmanager.register(conformance.Collector(config), "istiolab-conformance")
            _check_report_target(config)
            config.stash[RECORDER_KEY] = recording.configure(config, settings)
        if not _is_worker(config):
            _html_environment(config, settings)
            _CONFIG[:] = [config]
        if config.pluginmanager.hasplugin("xdist"):  # its hooks exist only when it is loaded
            config.pluginmanager.register(XdistHooks(), "istiolab-xdist")
        _preflight(config, settings)
    except IstioLabError as err:
        raise pytest.UsageError(str(err)) from None


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def _uses_xdist(config: pytest.Config) -> bool:
    return bool(getattr(config.option, "numprocesses", None)) or bool(
        getattr(config.option, "dist", "no") not in ("no", None))


def _preflight(config: pytest.Config, settings: Settings) -> None:
    """Fail before collection when the cluster cannot work; share one kind cluster under xdist."""
    if _is_worker(config):
        return
    if settings.istioctl and not config.option.collectonly:
        resolve_istioctl(settings.istioctl, None)  # an explicit path is checked once, up front
    if settings.cluster == "kind" and not _uses_xdist(config) and not config.option.collectonly:
        provider = make_provider(settings)
        preflight = getattr(provider, "preflight", None)
        if preflight is not None:
            preflight()  # kind CLI and a working Docker engine, once, before any test
    if settings.cluster == "existing" and not config.option.collectonly:
        handle = make_provider(settings).start()  # context and reachability (bounded: 10 s)
        reporting.register_plan(config, inspect_cluster(settings, handle))  # header lines
    if settings.cluster in ("existing", "kind") and not settings.istioctl and \
            not config.option.collectonly:
        # The istioctl of the version (PATH, cache, or a download) once, before any test:
        # --istio-offline without one, or a failed download, is one error, not one per test.
        from pytest_istiolab.istioctl import DEFAULT_RELEASE_URL, provision_istioctl

        provision_istioctl(settings.version, offline=settings.offline,
                           base_url=settings.release_url or DEFAULT_RELEASE_URL)
    if settings.cluster == "kind" and _uses_xdist(config) and not config.option.collectonly:
        provider = make_provider(settings)
        config.stash[SHARED_HANDLE_KEY] = provider.start()
        config.stash[SHARED_PROVIDER_KEY] = provider


def shared_provider(config: pytest.Config) -> ClusterProvider | None:
    """The cluster the xdist controller created for this worker, if any."""
    if _is_worker(config) and HANDLE_INPUT in config.workerinput:  # type: ignore[attr-defined]
        return HandedOver(handle_from_json(config.workerinput[HANDLE_INPUT]))  # type: ignore[attr-defined]
    return None


def pytest_unconfigure(config: pytest.Config) -> None:
    provider = config.stash.get(SHARED_PROVIDER_KEY, None)
    settings = config.stash.get(SETTINGS_KEY, None)
    if provider is not None and settings is not None:
        if settings.keep == "on-failure" and reporting.any_failed(config):
            provider.keep = True  # type: ignore[attr-defined]
        provider.stop()
    if settings is not None and not _is_worker(config):
        _remove_worker_dirs(settings)


def _settings(config: pytest.Config) -> Settings:
    def lookup(opt: c.Option) -> str | None:
        value = config.getoption(opt.dest, default=None)
        if value is None:
            value = config.getini(opt.ini) or None
        if value is None:
            value = os.environ.get(opt.env) or None
        if value is None and opt is c.OPT_SEED and hasattr(config, "workerinput"):
            value = config.workerinput.get("istiolab_seed")  # same seed on every xdist worker
        return value

    workerinput = getattr(config, "workerinput", {})
    return from_lookup(lookup, _workdir(config), run_id=workerinput.get(RUN_ID_INPUT),
                       worker=workerinput.get("workerid", ""))


def _workdir(config: pytest.Config) -> Path:
    """Where this process keeps cluster files (created on first use, removed at the end).

    An xdist worker's is inside the controller's, so the controller removes what a worker it
    stopped (Ctrl-C, a crash) could not."""
    workerinput = getattr(config, "workerinput", {})
    if WORKDIR_INPUT in workerinput:
        return Path(workerinput[WORKDIR_INPUT]) / workerinput.get("workerid", "gw")
    root = Path(tempfile.gettempdir()) / f"pytest-istiolab-{os.getuid()}"
    return root / f"main-{os.getpid()}"


def _remove_worker_dirs(settings: Settings) -> None:
    """On the controller, once its workers are gone: their directories (``gw*``) and the
    run's install records."""
    with contextlib.suppress(OSError):
        runinstall.forget(settings.run_dir)
    with contextlib.suppress(OSError):
        for child in settings.workdir.iterdir():
            if child.name.startswith("gw") and child.is_dir():
                shutil.rmtree(child, ignore_errors=True)
    with contextlib.suppress(OSError):
        settings.workdir.rmdir()  # when the controller kept nothing of its own there


class XdistHooks:
    """pytest-xdist's hooks, registered only when xdist is loaded (``-p no:xdist`` works)."""

    def pytest_configure_node(self, node: object) -> None:
        """The controller's seed, run id and shared cluster go to every worker."""
        config: pytest.Config = node.config  # type: ignore[attr-defined]
        settings = config.stash[SETTINGS_KEY]
        node.workerinput["istiolab_seed"] = str(settings.seed)  # type: ignore[attr-defined]
        node.workerinput[RUN_ID_INPUT] = settings.run_id  # type: ignore[attr-defined]
        node.workerinput[WORKDIR_INPUT] = str(settings.workdir)  # type: ignore[attr-defined]
        handle = config.stash.get(SHARED_HANDLE_KEY, None)
        if handle is not None:
            node.workerinput[HANDLE_INPUT] = handle_to_json(handle)  # type: ignore[attr-defined]

    @pytest.hookimpl(tryfirst=True)
    def pytest_xdist_make_scheduler(self, config: pytest.Config, log: object) -> object | None:
        """A module's tests on one worker, unless the user chose ``--dist``: a lab module sets
        up its namespace, apps and rules once (per worker), so xdist's default spread of one
        module over all workers repeats that set-up on each."""
        chosen = getattr(config.known_args_namespace, "dist", "no") != "no" or getattr(
            config.known_args_namespace, "distload", False)
        if chosen or config.getoption("dist") != "load":
            return None
        from xdist.scheduler import LoadFileScheduling

        return LoadFileScheduling(config, log)


def _html_environment(config: pytest.Config, settings: Settings) -> None:
    """The run's target in pytest-html's Environment table (pytest-metadata's stash)."""
    try:
        from pytest_metadata.plugin import metadata_key
    except ImportError:  # pragma: no cover - pytest-html brings pytest-metadata
        return
    metadata = config.stash.get(metadata_key, None)
    if metadata is None:
        return
    metadata.update({
        "istiolab cluster": settings.cluster,
        "istiolab context": settings.context or "(the provider's)",
        "istiolab profile": settings.profile,
        "istiolab seed": str(settings.seed) if settings.cluster == "embedded" else "-",
        "istiolab Istio version": settings.version,
    })


ENV_PROPERTY = "istiolab_environment"  # worker -> controller: what the cluster runs


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """On the controller: the cluster's versions a worker found go to pytest-html's table;
    the workers' outcomes and kept namespaces are noted (for ``--istio-keep``)."""
    if not _CONFIG:
        return
    reporting.record_report(_CONFIG[0], report)
    for name, value in report.user_properties:
        if name == ENV_PROPERTY:
            _found_environment(_CONFIG[0], dict(value))  # type: ignore[call-overload]
            reporting.note_tested(_CONFIG[0], _worker_of(report), dict(value))  # type: ignore[call-overload]
        elif name == reporting.KEPT_PROPERTY:
            reporting.note_kept(_CONFIG[0], list(value))  # type: ignore[call-overload]


_CONFIG: list[pytest.Config] = []


def _worker_of(report: pytest.TestReport) -> str:
    """The xdist worker a report came from ("" in a run without workers)."""
    node = getattr(report, "node", None)  # set by xdist's controller
    return str(getattr(node, "workerinput", {}).get("workerid", ""))


def _found_environment(config: pytest.Config, found: dict[str, str]) -> None:
    try:
        from pytest_metadata.plugin import metadata_key
    except ImportError:  # pragma: no cover
        return
    metadata = config.stash.get(metadata_key, None)
    if metadata is not None:
        metadata.update(found)


def _check_report_target(config: pytest.Config) -> None:
    """``--istio-conformance-report``'s file must be writable before tests run, not after."""
    target = recording.option(config, c.OPT_CONFORMANCE_REPORT)
    if not target:
        return
    path = Path(target).expanduser()
    parent = path.parent if str(path.parent) else Path(".")
    fix = f"pass {c.OPT_CONFORMANCE_REPORT.flag} a file in a writable directory"
    if path.is_dir():
        raise IstioLabError(f"{c.OPT_CONFORMANCE_REPORT.flag}={target}: that is a directory", fix)
    if not parent.is_dir():
        raise IstioLabError(f"{c.OPT_CONFORMANCE_REPORT.flag}={target}: directory {parent} does "
                            "not exist", fix)
    if not os.access(parent, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise IstioLabError(f"{c.OPT_CONFORMANCE_REPORT.flag}={target}: not writable", fix)


def pytest_report_header(config: pytest.Config) -> list[str]:
    settings = config.stash.get(SETTINGS_KEY, None)
    return [settings.header(), *reporting.plan_lines(config)] if settings else []


@pytest.hookimpl(trylast=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    """What the run found on an existing cluster and will change is shown even when the header
    is not (``-q``, ``--no-header``): it must be seen before anything changes."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None and (not reporter.showheader or reporter.no_header):
        settings = session.config.stash.get(SETTINGS_KEY, None)
        if settings is not None and settings.cluster == "embedded" and not _is_worker(
                session.config):  # a statistical failure must be reproducible from any output
            realism = f" {c.OPT_EMBEDDED_REALISM.flag}=on" if settings.realism else ""
            reporter.write_line(f"istiolab: seed {settings.seed}{', realism on' if realism else ''}"
                                f" (reproduce: {c.OPT_SEED.flag}={settings.seed}{realism})")
        for line in reporting.plan_lines(session.config):
            reporter.write_line(line)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        conformance.annotate(item)
        lab = item.get_closest_marker(c.MARK_LAB)
        if lab is not None and lab.args:
            item.add_marker(f"lab{lab.args[0]}")
        needed = [cap for mark in item.iter_markers(c.MARK_REQUIRES) for cap in mark.args]
        if lab is not None and lab.args:
            needed += c.LAB_REQUIRES.get(int(lab.args[0]), ())
        if needed:  # decided at setup, by the installed mesh (see _skip_without)
            item.stash[NEEDS_KEY] = tuple(dict.fromkeys(needed))


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_setup(item: pytest.Item):  # type: ignore[no-untyped-def]
    reporting.mark_commands(item)
    _phase(item)
    return (yield)


class RequiresSkip:
    """Skips a test whose ``requires`` capabilities the installed mesh lacks, before its
    fixtures run (a plain hook inside every wrapper, like pytest's own skip marks). Until the
    mesh has been read (the first such test of a worker), the ``_requires`` fixture decides."""

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        needed = item.stash.get(NEEDS_KEY, ())
        mesh = item.config.stash.get(MESH_KEY, None)
        if needed and mesh is not None:
            missing = mesh.missing(needed)
            if missing:
                pytest.skip(mesh.reason(missing))


class PhaseTimeout(Exception):
    """A test phase ran past ``--istio-test-timeout``."""


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None):  # type: ignore[no-untyped-def]
    """Bound every phase of the test by ``--istio-test-timeout`` (SIGALRM, main thread only):
    a hung cluster fails the test in hand, and the run goes on, instead of hanging a nightly."""
    settings = item.config.stash.get(SETTINGS_KEY, None)
    bound = settings.test_timeout if settings is not None else 0.0
    if bound <= 0 or not hasattr(signal, "setitimer") or \
            threading.current_thread() is not threading.main_thread():
        return (yield)

    def expired(_signum: int, _frame: object) -> None:
        signal.setitimer(signal.ITIMER_REAL, 0)
        raise PhaseTimeout(f"{item.nodeid}: a test phase ran longer than {bound:g} s "
                           f"({c.OPT_TEST_TIMEOUT.flag}); the cluster may be hung")

    previous = signal.signal(signal.SIGALRM, expired)
    item.stash[_BOUND_KEY] = bound
    try:
        return (yield)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


_BOUND_KEY = pytest.StashKey[float]()


def _phase(item: pytest.Item) -> None:
    """(Re)start the phase's alarm."""
    bound = item.stash.get(_BOUND_KEY, 0.0)
    if bound > 0:
        signal.setitimer(signal.ITIMER_REAL, bound)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_call(item: pytest.Item):  # type: ignore[no-untyped-def]
    _phase(item)
    return (yield)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None):  # type: ignore[no-untyped-def]
    _phase(item)
    return (yield)



@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    report = yield
    if call.excinfo is not None and isinstance(call.excinfo.value, IstioLabError):
        report.longrepr = reporting.short_error(item, call.excinfo)
    if report.failed:
        reporting.attach_diagnostics(item, report)
    reporting.record_outcome(item, report)
    if report.when == "teardown" and _is_worker(item.config):
        kept = reporting.kept_since_last_report(item.config)
        if kept:
            report.user_properties.append((reporting.KEPT_PROPERTY, kept))
    found = reporting.environment(item.config)
    if found and report.when == "setup":
        report.user_properties.append((ENV_PROPERTY, found))
        if not _is_worker(item.config):
            _found_environment(item.config, found)
    return report


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:  # type: ignore[no-untyped-def]
    """Warnings, the JSON report's path, then the conformance section, whose last line is the
    count of catalogue checks passed."""
    reporting.write_warnings(terminalreporter, config)
    for line in reporting.tested_lines(config):
        terminalreporter.write_line(line)
    settings = config.stash.get(SETTINGS_KEY, None)
    recorder = config.stash.get(RECORDER_KEY, None)
    if recorder is not None:
        recorder.write_terminal(terminalreporter)
    if settings is not None and not _is_worker(config):
        session = config.stash.get(reporting.SESSION_KEY, None)
        handle = config.stash.get(SHARED_HANDLE_KEY, None) or (session.handle if session else None)
        created = handle is not None and handle.extra.get("created") == "true"
        for line in reporting.kept_lines(settings, reporting.any_failed(config),
                                         handle.extra.get("cluster_name") if handle and created
                                         else None,
                                         config.stash.get(reporting.KEPT_KEY, [])):
            terminalreporter.write_line(line, yellow=True)
    conformance.write_terminal(terminalreporter, config)


def pytest_internalerror(excrepr: object, excinfo: pytest.ExceptionInfo[BaseException]) -> None:
    if isinstance(excinfo.value, IstioLabError):  # pragma: no cover - defensive
        print(f"pytest-istiolab: {excinfo.value}")
