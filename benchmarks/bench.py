"""Benchmark of the embedded cluster: start time, and wall time of lab modules.

    python benchmarks/bench.py                 # start time (5 starts) + every lab module
    python benchmarks/bench.py --labs 1 2      # only Labs 1 and 2
    python benchmarks/bench.py --starts 20 --labs

Goals on a 2-core machine: start < 1 s; Labs 1-2 < 15 s; Lab 3 < 20 s; Labs 4-5 < 20 s.
Speed is measured here, never by timed tests.
"""

from __future__ import annotations

import argparse
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
    from pytest_istiolab.embedded import EmbeddedCluster

    times, peaks = [], []
    for _ in range(count):
        with tempfile.TemporaryDirectory() as tmp:
            tracemalloc.start()
            t0 = time.perf_counter()
            cluster = EmbeddedCluster(Path(tmp), seed=1).start()
            times.append(time.perf_counter() - t0)
            peaks.append(tracemalloc.get_traced_memory()[1])
            tracemalloc.stop()
            cluster.stop()
    print(f"embedded cluster start: median {statistics.median(times) * 1000:.0f} ms, "
          f"max {max(times) * 1000:.0f} ms over {count} starts "
          f"(goal < 1000 ms); peak Python allocations {max(peaks) / 2**20:.1f} MiB")


def bench_lab(module: Path) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "-p", "no:randomly", str(module)], cwd=ROOT, capture_output=True,
                          text=True)
    elapsed = time.perf_counter() - t0
    last = (proc.stdout.strip().splitlines() or ["(no output)"])[-1]
    print(f"{module.name}: {elapsed:.1f} s wall  [{last}]")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--starts", type=int, default=5)
    parser.add_argument("--labs", nargs="*", type=int, default=None,
                        help="lab numbers to time (default: all lab modules)")
    args = parser.parse_args()
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
