"""``istiolab-probe``: keep traffic flowing through the mesh during an upgrade, and report.

Start it before the upgrade, stop it after (Ctrl-C, SIGTERM, or ``--duration``). It connects
like the suite (``--istio-cluster existing --istio-context NAME``, or ``embedded`` for
self-tests), deploys sleep and httpbin with sidecars into a namespace of its own, exposes
httpbin through the ingress gateway for one host of its own, sends bounded, rate-limited
requests on both paths, removes everything it deployed, and writes the continuity report.

Exit status: 0 within budget, 1 an error budget was exceeded (named on stdout), 2 bad input,
3 the cluster or the probe's workloads could not be used (nothing was measured).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pytest_istiolab import __version__
from pytest_istiolab import constants as c
from pytest_istiolab.cluster import ClusterSession
from pytest_istiolab.deploy import ensure_istio
from pytest_istiolab.deploy.installation import find_istio
from pytest_istiolab.errors import IstioLabError, UsageError
from pytest_istiolab.probe.continuity import REPORT_VERSION, Budget, PathRecord, summary
from pytest_istiolab.probe.runner import IngressLoop, InMeshLoop, Limits
from pytest_istiolab.probe.target import ProbeTarget
from pytest_istiolab.settings import Settings, from_lookup

PROG = "istiolab-probe"
EXIT_OK, EXIT_BUDGET, EXIT_USAGE, EXIT_CLUSTER = 0, 1, 2, 3
MAX_RATE = 50.0
DEFAULT_MAX_REQUESTS = 50_000
CLUSTER_OPTIONS = (c.OPT_CLUSTER, c.OPT_CONTEXT, c.OPT_KUBECONFIG, c.OPT_SEED, c.OPT_PROFILE)


class Stopped(BaseException):
    """SIGTERM, raised in the main thread like Ctrl-C's KeyboardInterrupt."""


# ------------------------------------------------------------------ argument types
def _number(text: str, what: str, example: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a number ({what}); e.g. {example}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be a finite number >= 0; e.g. {example}")
    return value


def seconds(text: str) -> float:
    """``90``, ``90s``, ``5m``, ``1h``."""
    units = {"s": 1, "m": 60, "h": 3600}
    raw = text.strip().lower()
    factor = units.get(raw[-1:], None)
    value = _number(raw[:-1] if factor else raw, "seconds, or with a unit s/m/h", "90s or 5m")
    return value * (factor or 1)


def rate(text: str) -> float:
    value = _number(text, "requests per second per path", "5")
    if not 0 < value <= MAX_RATE:
        raise argparse.ArgumentTypeError(f"{text} is outside 0 < rate <= {MAX_RATE:g} requests "
                                         "per second per path")
    return value


def error_rate(text: str) -> float:
    """``0.01`` or ``1%``."""
    raw = text.strip()
    percent = raw.endswith("%")
    value = _number(raw[:-1] if percent else raw, "a fraction like 0.01 or a percentage like 1%",
                    "0.01 or 1%")
    value = value / 100 if percent else value
    if value > 1:
        raise argparse.ArgumentTypeError(f"{text!r} is more than 100 %; pass a fraction like "
                                         "0.01 or a percentage like 1%")
    return value


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number; e.g. 1000") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} must be at least 1")
    return value


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[1],
                                epilog=__doc__.split("\n\n")[2])
    for opt in CLUSTER_OPTIONS:
        choices = ("embedded", "existing") if opt is c.OPT_CLUSTER else None
        p.add_argument(opt.flag, dest=opt.dest, default=None, choices=choices,
                       help=f"{opt.help} (env {opt.env})")
    p.add_argument("--rate", type=rate, default=5.0,
                   help=f"requests per second on each path (default 5, at most {MAX_RATE:g})")
    p.add_argument("--duration", type=seconds, default=None,
                   help="stop after this long (90, 90s, 5m, 1h); default: until Ctrl-C/SIGTERM")
    p.add_argument("--max-requests", type=positive_int, default=DEFAULT_MAX_REQUESTS,
                   help=f"stop a path after this many requests (default {DEFAULT_MAX_REQUESTS})")
    p.add_argument("--request-timeout", type=seconds, default=5.0,
                   help="limit of one request (curl --max-time, httpx timeout; default 5 s)")
    p.add_argument("--max-error-rate", type=error_rate, default=None,
                   help="error budget: the failed share of a path's requests (0.01 or 1%%)")
    p.add_argument("--max-gap", type=seconds, default=None,
                   help="error budget: the longest time a path may go without a success")
    p.add_argument("--report", type=Path, default=Path("istiolab-probe-report.json"),
                   help="where the JSON continuity report goes (rewritten at each progress "
                        "line, so a killed probe leaves what it measured)")
    p.add_argument("--progress", type=seconds, default=10.0,
                   help="seconds between progress lines on stderr (default 10)")
    p.add_argument("--revision", default=None,
                   help="label the probe's namespace istio.io/rev=REVISION instead of "
                        "istio-injection=enabled (revision-based upgrades)")
    return p


def settings_from(args: argparse.Namespace, workdir: Path) -> Settings:
    def get(opt: c.Option) -> str | None:
        value = getattr(args, opt.dest, None)
        return value if value is not None else os.environ.get(opt.env)

    return from_lookup(get, workdir)


def check_report_path(path: Path) -> None:
    parent = path.expanduser().resolve().parent
    if not parent.is_dir() or not os.access(parent, os.W_OK):
        raise UsageError(f"--report {path}: directory {parent} does not exist or is not writable",
                         "pass --report in a writable directory")


# ------------------------------------------------------------------ the run
class Probe:
    def __init__(self, args: argparse.Namespace, session: ClusterSession) -> None:
        self.args, self.session = args, session
        self.namespace = f"istiolab-probe-{session.settings.run_id}"
        self.target = ProbeTarget(session, self.namespace, args.revision)
        self.budget = Budget(args.max_error_rate, args.max_gap)
        self.limits = Limits(args.rate, args.max_requests, args.request_timeout)
        self.stop = threading.Event()
        self.paths = [
            PathRecord("in-mesh",
                       f"sleep -> httpbin:8000 in {self.namespace} (curl, batched exec)"),
            PathRecord("ingress", f"this host -> istio-ingressgateway -> httpbin "
                                  f"(Host {self.target.host})"),
        ]
        self.t0: float | None = None
        self.end = 0.0
        self.started_at = self.ended_at = ""
        self.stopped_by = "not started"
        self.istiod: dict[str, str | None] = {"at_start": None, "at_end": None}

    def elapsed(self) -> float:
        return 0.0 if self.t0 is None else time.monotonic() - self.t0

    def setup(self) -> None:
        # the embedded cluster gets Istio installed; elsewhere install=never: found, or an error
        ensure_istio(self.session, self.session.settings.profile)
        self.istiod["at_start"] = self.istiod_image()
        say(f"deploying sleep and httpbin into namespace {self.namespace}")
        self.target.deploy()
        self.target.wait_serving()

    def traffic(self) -> None:
        self.t0 = time.monotonic()
        self.started_at = now()
        loops = [InMeshLoop(self.target, self.paths[0], self.limits, self.stop, self.t0),
                 IngressLoop(self.target, self.paths[1], self.limits, self.stop, self.t0)]
        for loop in loops:
            loop.start()
        say(f"traffic flowing at {self.limits.rate:g} rps per path; stop with Ctrl-C or SIGTERM")
        next_progress = self.args.progress
        try:
            while True:
                if self.stop.wait(0.1):
                    break
                if self.args.duration is not None and self.elapsed() >= self.args.duration:
                    self.stopped_by = f"stopped after --duration {self.args.duration:g} s"
                    break
                if not any(loop.is_alive() for loop in loops):
                    self.stopped_by = f"stopped after --max-requests {self.limits.max_requests}"
                    break
                if self.elapsed() >= next_progress:
                    next_progress += self.args.progress
                    self.progress()
        except KeyboardInterrupt:
            self.stopped_by = "stopped by Ctrl-C (SIGINT)"
        except Stopped:
            self.stopped_by = "stopped by SIGTERM"
        finally:
            self.end = self.elapsed()
            self.ended_at = now()
            self.istiod["at_end"] = self.istiod_image()
            self.stop.set()
            for loop in loops:
                loop.join(self.limits.request_timeout * 2 + 10)

    def istiod_image(self) -> str | None:
        """istiod's image now (an upgrade in place changes it); None when it cannot be read."""
        try:
            return find_istio(self.session.kube).image
        except IstioLabError:
            return None

    def progress(self) -> None:
        parts = [f"{p.name} {p.succeeded} ok {p.failed} failed" for p in self.paths]
        say(f"{self.elapsed():.0f}s " + " | ".join(parts))
        self.write_report(self.elapsed())

    def report(self, end: float) -> dict[str, Any]:
        handle = self.session.handle
        return {
            "report_version": REPORT_VERSION, "tool": PROG, "suite_version": __version__,
            "started_at": self.started_at, "ended_at": self.ended_at or now(),
            "duration_s": round(end, 3), "stopped_by": self.stopped_by,
            "cluster": {"provider": handle.provider, "context": handle.context,
                        "description": handle.description,
                        "ingress_via": self.session.ingress.via if self.t0 is not None else None},
            "istiod_image": dict(self.istiod),
            "namespace": self.namespace, "host": self.target.host,
            "limits": {"rate_per_path": self.limits.rate,
                       "max_requests_per_path": self.limits.max_requests,
                       "request_timeout_s": self.limits.request_timeout,
                       "duration_s": self.args.duration},
            "paths": {p.name: p.to_json(end) for p in self.paths},
            "budget": {"max_error_rate": self.budget.max_error_rate,
                       "max_gap_s": self.budget.max_gap,
                       "exceeded": self.budget.exceeded(self.paths, end)},
        }

    def write_report(self, end: float) -> dict[str, Any]:
        data = self.report(end)
        path = self.args.report
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(data, indent=2) + "\n")
        tmp.replace(path)
        return data


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def say(message: str) -> None:
    print(f"{PROG}: {message}", file=sys.stderr, flush=True)


def _sigterm(_signum: int, _frame: object) -> None:
    raise Stopped()


def _shielded(fn: Any) -> None:
    """Run a cleanup step with Ctrl-C and SIGTERM ignored (a second Ctrl-C must not stop it)."""
    old_int = signal.signal(signal.SIGINT, signal.SIG_IGN)
    old_term = signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        fn()
    finally:
        signal.signal(signal.SIGINT, old_int)
        signal.signal(signal.SIGTERM, old_term)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="istiolab-probe-"))
    session: ClusterSession | None = None
    probe: Probe | None = None
    signal.signal(signal.SIGTERM, _sigterm)
    try:
        check_report_path(args.report)
        settings = settings_from(args, workdir)
        if settings.cluster != "embedded":  # never install or change Istio on a real cluster
            settings = Settings(**{**settings.__dict__, "install": "never"})
        say(settings.header())
        session = ClusterSession.open(settings)
        session.kube.on_command = None  # no command log: the probe runs for hours
        probe = Probe(args, session)
        probe.setup()
        probe.traffic()
    except (KeyboardInterrupt, Stopped):
        say("interrupted before traffic started; removing what was deployed")
        return _finish(probe, session, workdir, measured=False)
    except IstioLabError as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        _finish(probe, session, workdir, measured=False)
        return EXIT_USAGE if isinstance(err, UsageError) else EXIT_CLUSTER
    except AssertionError as err:  # a readiness wait (eventually) that never became true
        print(f"{PROG}: error: the probe's workloads never served: {err}", file=sys.stderr)
        _finish(probe, session, workdir, measured=False)
        return EXIT_CLUSTER
    return _finish(probe, session, workdir, measured=True)


def _finish(probe: Probe | None, session: ClusterSession | None, workdir: Path,
            measured: bool) -> int:
    status = EXIT_OK if measured else EXIT_CLUSTER
    try:
        if probe is not None:
            say(f"removing namespace {probe.namespace}")
            _shielded(probe.target.remove)
        if probe is not None and measured:
            data = probe.write_report(probe.end)
            print(summary(data))
            print(f"report: {probe.args.report}")
            status = EXIT_BUDGET if data["budget"]["exceeded"] else EXIT_OK
    except IstioLabError as err:
        print(f"{PROG}: error: cleaning up: {err}", file=sys.stderr)
        status = EXIT_CLUSTER
    finally:
        if session is not None:
            _shielded(session.close)
        shutil.rmtree(workdir, ignore_errors=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
