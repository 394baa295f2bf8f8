"""The 50/50 check of Lab 3.2 (L3.2-C02) is a real statistical test: proofs on the embedded mesh.

The check is ``assert_fifty_fifty_v1_v3`` of tests/labs/test_lab03_traffic_management.py (loaded
here from that file, so these proofs and the lab test share one function, one sample size and
one alpha): no reviews v2 at all, and an exact two-sided binomial test of the v3 share against
1/2 at alpha = 1e-4 over ``SPLIT_SAMPLES`` = 100 pages (accepts 31..69 v3 pages).

* It rejects wrong weights — a 90/10 route and routes that still serve v2 — with pages fetched
  through the whole embedded mesh (sleep -> productpage -> reviews -> ratings, sidecars and
  all), for several seeds. (tests/embedded/test_lab03_breakit.py also runs the lab test itself
  against a 90/10 manifest and sees it fail.)
* It passes 200 runs in a row with different seeds on the sample's own 50/50 manifest. Running
  the full mesh 200 x 100 times takes ~30 s, so these runs use the functions a sidecar uses for
  each request — ``routing.route_outbound`` (the decision; deterministic, so computed once per
  run), ``routing.pick_destination`` (the weighted choice, the only random step, once per
  request with the run's seeded rng) and ``clusters.resolve`` (which pod serves the subset).
* The arithmetic behind the stated rates is checked against the exact binomial distribution.
"""

from __future__ import annotations

import importlib.util
import math
import random
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest
import yaml
from mesh_testkit import MANIFESTS, Kit, request

from pytest_istiolab.embedded.mesh import clusters, config, request_from_pod, routing
from pytest_istiolab.traffic import stats

LAB_FILE = Path(__file__).resolve().parents[1] / "labs" / "test_lab03_traffic_management.py"
NETWORKING = MANIFESTS / "samples" / "bookinfo" / "networking"


def _load_lab() -> ModuleType:
    spec = importlib.util.spec_from_file_location("lab03_shared_checks", LAB_FILE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


lab = _load_lab()


def fifty_v3(weights: dict[str, int]) -> str:
    """The sample's virtual-service-reviews-50-v3.yaml with other weights."""
    doc = yaml.safe_load((NETWORKING / "virtual-service-reviews-50-v3.yaml").read_text())
    doc["spec"]["http"][0]["route"] = [
        {"destination": {"host": "reviews", "subset": subset}, "weight": weight}
        for subset, weight in weights.items()]
    return yaml.safe_dump(doc)


def bookinfo_kit(seed: int, virtual_service: str | None) -> Kit:
    kit = Kit(seed=seed, access_log=False)
    for path in ("samples/bookinfo/platform/kube/bookinfo.yaml", "samples/sleep/sleep.yaml"):
        kit.deploy(path)
    kit.apply((NETWORKING / "destination-rule-all.yaml").read_text())
    if virtual_service is not None:
        kit.apply(virtual_service)
    return kit


def mesh_sample(kit: Kit) -> tuple[list[str | None], str]:
    """``SPLIT_SAMPLES`` product pages through the whole mesh, classified as the lab does."""
    sleep = kit.get_pod("sleep")
    pages = [request_from_pod(kit.rt, sleep, "GET", "http://productpage:9080/productpage").text
             for _ in range(lab.SPLIT_SAMPLES)]
    return [lab.shown_version(p) for p in pages], lab.describe(pages)


# ------------------------------------------------------------------ (a) wrong weights fail
WRONG = {
    "90/10 v1/v3": fifty_v3({"v1": 90, "v3": 10}),
    "10/90 v1/v3": fifty_v3({"v1": 10, "v3": 90}),
    "v2 still in (34/33/33)": fifty_v3({"v1": 34, "v2": 33, "v3": 33}),
    "v2 still in (45/10/45)": fifty_v3({"v1": 45, "v2": 10, "v3": 45}),
    "no reviews route (round robin v1/v2/v3)": None,
}


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("case", list(WRONG))
def test_the_check_rejects_wrong_weights_through_the_mesh(case: str, seed: int) -> None:
    versions, seen = mesh_sample(bookinfo_kit(seed, WRONG[case]))
    with pytest.raises(AssertionError, match=r"reviews v2 was served|share of reviews v3"):
        lab.assert_fifty_fifty_v1_v3(versions, seen)


def test_the_check_passes_the_right_weights_through_the_mesh() -> None:
    versions, seen = mesh_sample(bookinfo_kit(1, (NETWORKING / "virtual-service-reviews-50-v3."
                                                  "yaml").read_text()))
    lab.assert_fifty_fifty_v1_v3(versions, seen)


# ------------------------------------------------------------------ (b) 200 runs in a row pass
def routed_versions(kit: Kit) -> Callable[[random.Random], list[str]]:
    """One run of ``SPLIT_SAMPLES`` requests productpage's sidecar routes to reviews."""
    snap = config.snapshot(kit.rt)
    source = kit.get_pod("productpage")
    ns = source["metadata"]["namespace"]
    decision = routing.route_outbound(snap, ns, 9080, request("/reviews/0", "reviews:9080"),
                                      source["metadata"]["labels"])
    served = {}
    for dest in decision.destinations:
        [endpoint] = clusters.resolve(snap, ns, dest, 9080).endpoints
        served[dest.subset] = endpoint.pod["metadata"]["labels"]["version"]

    def run(rng: random.Random) -> list[str]:
        return [served[routing.pick_destination(decision.destinations, rng).subset]
                for _ in range(lab.SPLIT_SAMPLES)]

    return run


def test_the_check_passes_200_runs_in_a_row_with_different_seeds() -> None:
    kit = bookinfo_kit(7, (NETWORKING / "virtual-service-reviews-50-v3.yaml").read_text())
    run = routed_versions(kit)
    shares = []
    for seed in range(200):
        versions = run(random.Random(seed))
        lab.assert_fifty_fifty_v1_v3(versions, f"seed {seed}")
        shares.append(versions.count("v3"))
    assert len(set(shares)) > 10  # different seeds, different samples


def test_the_same_runs_reject_90_10_every_time() -> None:
    run = routed_versions(bookinfo_kit(7, fifty_v3({"v1": 90, "v3": 10})))
    for seed in range(200):
        with pytest.raises(AssertionError, match="share of reviews v3"):
            lab.assert_fifty_fifty_v1_v3(run(random.Random(seed)), f"seed {seed}")


# ------------------------------------------------------------------ the stated numbers
def _outcomes(n: int) -> tuple[list[int], list[int]]:
    p_values = stats._p_values(n, 0.5)
    accept = [k for k in range(n + 1) if p_values[k] >= lab.SPLIT_ALPHA]
    reject = [k for k in range(n + 1) if p_values[k] < lab.SPLIT_ALPHA]
    return accept, reject


def _probability(outcomes: list[int], n: int, p: float) -> float:
    return sum(math.exp(stats._log_pmf(k, n, p)) for k in outcomes)


def test_the_stated_false_failure_rate_and_power_hold() -> None:
    """SPLIT_SAMPLES's comment: accepts 31..69; false failure 7.9e-5 <= 1e-4; a 90/10 split
    passes with probability 6.0e-9; v2 at 10 % shows up among 100 pages with p > 0.99997; the
    catalogue's 35-65 % band would fail a correct mesh once in about 560 runs."""
    n = lab.SPLIT_SAMPLES
    accept, reject = _outcomes(n)
    assert (accept[0], accept[-1]) == (31, 69)
    assert _probability(reject, n, 0.5) == pytest.approx(7.85e-5, rel=0.01)
    assert _probability(reject, n, 0.5) <= 1e-4
    assert _probability(accept, n, 0.1) == pytest.approx(6.05e-9, rel=0.01)
    assert _probability(accept, n, 0.9) == pytest.approx(6.05e-9, rel=0.01)
    assert 1 - 0.9 ** n > 0.99997
    catalogue = [k for k in range(n + 1) if not 35 <= k <= 65]  # its suggested 35-65 %
    assert 1 / _probability(catalogue, n, 0.5) == pytest.approx(560, rel=0.01)
