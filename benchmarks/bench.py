"""Benchmark of the embedded cluster: start time, and wall time of lab modules.

    python benchmarks/bench.py                 # start time (5 starts) + every lab module
    python benchmarks/bench.py --labs 1 2      # only Labs 1 and 2
    python benchmarks/bench.py --starts 20 --labs
    python benchmarks/bench.py --suite 3       # the lab suite serial and -n 2, alternating
    python benchmarks/bench.py --realism 3     # the lab suite -n 2, default profile vs realism

Goals on a 2-core machine: start < 1 s; Labs 1-2 < 15 s; Lab 3 < 20 s; Labs 4-5 < 20 s;
Lab 6 < 8 s; the lab suite under ``-n 2`` at least 1.6x faster than serially (``--suite``).
Speed is measured here, never by timed tests.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LABS = ROOT / "tests" / "labs"


def bench_start(count: int) -> None:
    """Starts in this process (imports paid once before timing); memory measured apart."""
    from pytest_istiolab.embedded import EmbeddedCluster

    times = []
    for _ in range(count + 1):
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            cluster = EmbeddedCluster(Path(tmp), seed=1).start()
            times.append(time.perf_counter() - t0)
            cluster.stop()
    times = times[1:]  # the first start also pays lazy imports: see the cold-start line
    with tempfile.TemporaryDirectory() as tmp:
        tracemalloc.start()
        cluster = EmbeddedCluster(Path(tmp), seed=1).start()
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        cluster.stop()
    print(f"embedded cluster warm start (same process): median "
          f"{statistics.median(times) * 1000:.0f} ms, max {max(times) * 1000:.0f} ms over "
          f"{count} starts (goal < 1000 ms); Python allocations at start {peak / 2**20:.1f} MiB")


COLD = """
import tempfile, time
from pathlib import Path
t0 = time.perf_counter()
from pytest_istiolab.embedded import EmbeddedCluster
t1 = time.perf_counter()
with tempfile.TemporaryDirectory() as tmp:
    cluster = EmbeddedCluster(Path(tmp), seed=1).start()
    t2 = time.perf_counter()
    cluster.stop()
print(f"{t1 - t0:.3f} {t2 - t1:.3f}")
"""


def bench_cold_start(count: int) -> None:
    """A fresh interpreter each time: imports, then start (what a pytest run pays once)."""
    imports, starts = [], []
    for _ in range(count):
        out = subprocess.run([sys.executable, "-c", COLD], capture_output=True, text=True,
                             check=True, cwd=ROOT).stdout.split()
        imports.append(float(out[0]))
        starts.append(float(out[1]))
    print(f"embedded cluster cold start (fresh process): imports median "
          f"{statistics.median(imports) * 1000:.0f} ms, start median "
          f"{statistics.median(starts) * 1000:.0f} ms, max {max(starts) * 1000:.0f} ms "
          f"over {count} processes")


def bench_lab(module: Path) -> float:
    """Wall time of one lab module in its own pytest process, and its execs per test."""
    with tempfile.TemporaryDirectory() as tmp:
        counts_file = Path(tmp) / "execs.json"
        env = {**os.environ, "ISTIOLAB_EXEC_COUNTS": str(counts_file),
               "PYTHONPATH": os.pathsep.join([str(ROOT / "benchmarks"),
                                              os.environ.get("PYTHONPATH", "")])}
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                               "-p", "execcount", str(module)], cwd=ROOT, capture_output=True,
                              text=True, env=env)
        elapsed = time.perf_counter() - t0
        counts = json.loads(counts_file.read_text()) if counts_file.exists() else {}
    last = (proc.stdout.strip().splitlines() or ["(no output)"])[-1]
    per_test = [n for test, n in counts.items() if test != "(setup)"]
    execs = (f"execs per test: median {statistics.median(per_test):.0f}, max {max(per_test)}; "
             f"fixture setup {counts.get('(setup)', 0)}") if per_test else "no execs"
    print(f"{module.name}: {elapsed:.1f} s wall  [{last}]  {execs}")
    return elapsed


def suite_wall(xdist: list[str]) -> tuple[float, str]:
    """Wall time of ``pytest tests/labs`` (with ``xdist`` arguments) in a fresh process."""
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rfE", "-p", "no:cacheprovider",
                           str(LABS), *xdist], cwd=ROOT, capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    lines = proc.stdout.strip().splitlines() or ["(no output)"]
    failed = [line for line in lines if line.startswith(("FAILED ", "ERROR "))]
    return elapsed, "; ".join([lines[-1], *failed])


def bench_suite(rounds: int) -> None:
    """Serial and ``-n 2`` runs of the lab suite, alternating (so load on a shared machine hits
    both alike); medians and the speed-up."""
    serial, parallel = [], []
    for n in range(rounds):
        for times, xdist in ((serial, ["-p", "no:xdist"]), (parallel, ["-n", "2"])):
            elapsed, last = suite_wall(xdist)
            times.append(elapsed)
            print(f"  round {n + 1} {'serial' if times is serial else '-n 2'}: "
                  f"{elapsed:.1f} s [{last}]", flush=True)
    s, p = statistics.median(serial), statistics.median(parallel)
    print(f"lab suite wall time: serial {s:.1f} s, -n 2 {p:.1f} s (median of {rounds}); "
          f"speed-up {s / p:.2f}x (goal >= 1.6x on 2 cores)")


def bench_realism(rounds: int, seed: int) -> None:
    """The lab suite under ``-n 2`` with the embedded cluster's default profile and with its
    realism profile (same seed), alternating; medians and the ratio."""
    plain, real = [], []
    for n in range(rounds):
        for times, extra in ((plain, []), (real, ["--istio-embedded-realism=on"])):
            elapsed, last = suite_wall(["-n", "2", f"--istio-seed={seed + n}", *extra])
            times.append(elapsed)
            print(f"  round {n + 1} {'realism' if extra else 'default'} (seed {seed + n}): "
                  f"{elapsed:.1f} s [{last}]", flush=True)
    d, r = statistics.median(plain), statistics.median(real)
    print(f"lab suite wall time under -n 2: default profile {d:.1f} s, realism profile {r:.1f} s "
          f"(median of {rounds}); realism costs {r / d:.2f}x")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--starts", type=int, default=5,
                        help="cluster starts to time (0: none, only the labs)")
    parser.add_argument("--labs", nargs="*", type=int, default=None,
                        help="lab numbers to time (default: all lab modules)")
    parser.add_argument("--suite", type=int, default=0, metavar="ROUNDS",
                        help="time the lab suite serial and -n 2 ROUNDS times, and nothing else")
    parser.add_argument("--realism", type=int, default=0, metavar="ROUNDS",
                        help="time the lab suite -n 2 with the default and the realism profile "
                        "ROUNDS times, and nothing else")
    parser.add_argument("--seed", type=int, default=1000, help="first seed of --realism rounds")
    args = parser.parse_args()
    if args.starts < 0:
        parser.error(f"--starts must be 0 or more, not {args.starts}")
    if args.realism:
        bench_realism(args.realism, args.seed)
        return 0
    if args.suite:
        bench_suite(args.suite)
        return 0
    if args.starts:
        bench_cold_start(args.starts)
        bench_start(args.starts)
    modules = sorted(LABS.glob("test_lab*.py"))
    if args.labs:
        modules = [m for m in modules if int(m.name[8:10]) in args.labs]
    total = sum(bench_lab(m) for m in modules)
    print(f"total lab wall time: {total:.1f} s over {len(modules)} modules "
          "(each module in its own pytest process, cluster start and Istio install included)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
