"""Overhead of istiolab-probe: the request rate it sustains and what it costs its host.

    python benchmarks/probe_overhead.py                      # rates 5, 20, 50 for 20 s each
    python benchmarks/probe_overhead.py --rates 5 --seconds 60

An embedded cluster with Istio is served from this process; the probe runs as its own process
against it as an existing context (as a platform team runs it), so its peak RSS and CPU time
(``wait4`` of the child) are the probe's alone. Reports per rate: requests sent per second on
each path (the asked-for rate is the ceiling), failures, peak RSS, CPU seconds per 1000
requests, and the continuity report's size (it grows with the run: one timeline entry per
second and path). Run it with two ``--seconds`` to see whether memory grows with duration.
On a real cluster the in-mesh path costs one ``exec`` per second (a batch) and the ingress
path one HTTP request per request; the cluster's own latency sets the ceiling there.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from pytest_istiolab.cluster import ClusterSession
from pytest_istiolab.deploy import ensure_istio
from pytest_istiolab.settings import Settings


def run_probe(session: ClusterSession, rate: float, seconds: float, report: Path) -> dict:
    argv = [sys.executable, "-m", "pytest_istiolab.probe", "--istio-cluster", "existing",
            "--istio-context", "embedded", "--istio-kubeconfig", str(session.kubeconfig),
            "--rate", f"{rate:g}", "--duration", f"{seconds:g}", "--report", str(report),
            "--progress", "3600"]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode not in (0, 1):
        err = proc.stderr.read().decode() if proc.stderr else ""
        raise SystemExit(f"probe exited {proc.returncode}: {err}")
    data = json.loads(report.read_text())
    requests = sum(p["requests"] for p in data["paths"].values())
    return {
        "rate": rate, "duration_s": data["duration_s"],
        "rps": {name: round(p["requests"] / data["duration_s"], 1)
                for name, p in data["paths"].items()},
        "failed": {name: p["failed"] for name, p in data["paths"].items()},
        "max_rss_mib": round(usage.ru_maxrss / 1024, 1),
        "cpu_s_per_1000_requests": round((usage.ru_utime + usage.ru_stime) * 1000
                                         / max(requests, 1), 2),
        "cpu_s_total": round(usage.ru_utime + usage.ru_stime, 2),
        "report_kib": round(report.stat().st_size / 1024, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", type=float, nargs="+", default=[5.0, 20.0, 50.0])
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(cluster="embedded", workdir=Path(tmp), seed=1)
        session = ClusterSession.open(settings)
        try:
            ensure_istio(session, settings.profile)
            for rate in args.rates:
                result = run_probe(session, rate, args.seconds, Path(tmp) / f"r{rate:g}.json")
                print(json.dumps(result), flush=True)
        finally:
            session.close()


if __name__ == "__main__":
    main()
