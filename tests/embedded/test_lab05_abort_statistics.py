"""The 50 % abort check of Lab 5.1 (L5.1-X01) is a real statistical test: proofs on the model.

The check is ``assert_half_aborted`` of tests/labs/test_lab05_fault_injection.py (loaded here
from that file, so these proofs and the lab test share one function, one sample size and one
alpha): only 200 and 500, and an exact two-sided binomial test of the aborted share against
1/2 at alpha = 1e-4 over ``HALF_SAMPLES`` = 40 calls (accepts 8..32 aborted).

* It passes 200 runs in a row with different seeds, drawing each call's abort as the fault
  filter does (``faults.parse_fault`` of the lab's edited sample, then the fraction's
  ``sample`` with the run's seeded generator, one draw per request), and it rejects the same
  runs when the percentage is ignored (the fault at 0 % or 100 %). Each run's generator is
  seeded with a string (``"L5.1-X01 run <i>"``). A false failure is expected in about 1 of
  24,000 runs, and the integer seeds 0..199 hold one: ``Random(149)`` aborts 34 of its first
  40 draws (p = 8.4e-6; 1 of the integer seeds 0..19,999 fails, 2 of the string seeds).
* Through the whole embedded mesh (sleep -> ratings, sidecars and all) the edited sample
  aborts about half of jason's calls and the check passes; at 100 % it fails.
* The arithmetic behind the stated rates is checked against the exact binomial distribution.
"""

from __future__ import annotations

import importlib.util
import math
import random
from pathlib import Path
from types import ModuleType

import pytest
import yaml
from mesh_testkit import MANIFESTS, Kit

from pytest_istiolab.embedded.mesh import faults, request_from_pod
from pytest_istiolab.embedded.mesh.headers import Headers
from pytest_istiolab.traffic import stats

LAB_FILE = Path(__file__).resolve().parents[1] / "labs" / "test_lab05_fault_injection.py"
NETWORKING = MANIFESTS / "samples" / "bookinfo" / "networking"


def _load_lab() -> ModuleType:
    spec = importlib.util.spec_from_file_location("lab05_shared_checks", LAB_FILE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


lab = _load_lab()


def abort_doc(percent: float, tmp_path: Path) -> dict:
    return yaml.safe_load(lab.abort_at(percent, tmp_path).read_text())


def run(fault: faults.Fault, rng: random.Random) -> list[int]:
    """One sample of ``HALF_SAMPLES`` calls: 500 where the fault filter aborts."""
    return [500 if fault.abort_fraction.sample(rng) else 200 for _ in range(lab.HALF_SAMPLES)]


def fault_of(doc: dict) -> faults.Fault:
    fault = faults.parse_fault(doc["spec"]["http"][0]["fault"])
    assert fault is not None
    return fault


def test_the_check_passes_200_runs_in_a_row_with_different_seeds(tmp_path: Path) -> None:
    fault = fault_of(abort_doc(50.0, tmp_path))
    shares = []
    for seed in range(200):
        statuses = run(fault, random.Random(f"L5.1-X01 run {seed}"))
        lab.assert_half_aborted(statuses)
        shares.append(statuses.count(500))
    assert len(set(shares)) > 5  # different seeds, different samples


@pytest.mark.parametrize("percent", [0.0, 100.0])
def test_the_same_runs_fail_when_the_percentage_is_ignored(tmp_path: Path,
                                                            percent: float) -> None:
    fault = fault_of(abort_doc(percent, tmp_path))
    for seed in range(200):
        with pytest.raises(AssertionError, match="aborted at 50 %"):
            lab.assert_half_aborted(run(fault, random.Random(f"L5.1-X01 run {seed}")))


def mesh_statuses(percent: float, tmp_path: Path, seed: int) -> list[int]:
    kit = Kit(seed=seed, access_log=False)
    for path in ("samples/bookinfo/platform/kube/bookinfo.yaml", "samples/sleep/sleep.yaml"):
        kit.deploy(path)
    kit.apply((NETWORKING / "destination-rule-all.yaml").read_text())
    kit.apply(yaml.safe_dump(abort_doc(percent, tmp_path)))
    sleep = kit.get_pod("sleep")
    return [request_from_pod(kit.rt, sleep, "GET", lab.RATINGS,
                             Headers({"end-user": "jason"})).status
            for _ in range(lab.HALF_SAMPLES)]


@pytest.mark.parametrize("seed", [1, 2])
def test_through_the_mesh_the_check_passes_at_50_and_fails_at_100(tmp_path: Path,
                                                                    seed: int) -> None:
    lab.assert_half_aborted(mesh_statuses(50.0, tmp_path, seed))
    with pytest.raises(AssertionError, match="aborted at 50 %"):
        lab.assert_half_aborted(mesh_statuses(100.0, tmp_path, seed))


def test_the_stated_false_failure_rate_and_power_hold() -> None:
    """HALF_SAMPLES's comment: accepts 8..32; false failure 4.2e-5 <= 1e-4 (200 runs pass
    with probability 0.992); 0 % and 100 % always fail; 25 % passes with probability 0.82."""
    n = lab.HALF_SAMPLES
    p_values = stats._p_values(n, 0.5)
    accept = [k for k in range(n + 1) if p_values[k] >= lab.HALF_ALPHA]
    reject = [k for k in range(n + 1) if p_values[k] < lab.HALF_ALPHA]

    def probability(outcomes: list[int], p: float) -> float:
        return sum(math.exp(stats._log_pmf(k, n, p)) for k in outcomes)

    assert (accept[0], accept[-1]) == (8, 32)
    assert probability(reject, 0.5) == pytest.approx(4.23e-5, rel=0.01)
    assert probability(reject, 0.5) <= 1e-4
    assert (1 - probability(reject, 0.5)) ** 200 == pytest.approx(0.992, abs=0.001)
    assert 0 in reject and n in reject
    assert probability(accept, 0.25) == pytest.approx(0.818, rel=0.01)
