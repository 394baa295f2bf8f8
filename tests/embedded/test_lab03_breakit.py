"""The Lab 3 tests go red when what they check is wrong: the lab module itself, run by pytester
on a fresh embedded cluster, against a wrong manifest or a deliberately broken mesh model.

* a 90/10 ``virtual-service-reviews-50-v3.yaml`` (through ``$ISTIOLAB_MANIFESTS``): the 50/50
  test (L3.2-C02) fails with the binomial test's message;
* three breakages of the embedded mesh at once, each caught by a different test:
  VirtualService header matches ignored (everyone gets jason's reviews v2: L3.1-C03 fails),
  route weights ignored (the first destination always wins: L3.2-C02 never sees v3) and
  Gateway/VirtualService host binding ignored (httpbin's routes answer any host: L3.5-C06
  fails). A ``-p`` plugin of the child pytest installs them; the child runs the embedded
  cluster in its own process.

Each run costs one embedded cluster start (about 3 s).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from pytest_istiolab import constants as c

LAB_FILE = Path(__file__).resolve().parents[1] / "labs" / "test_lab03_traffic_management.py"
MANIFESTS = Path(__file__).resolve().parents[2] / "manifests"
FIFTY_V3 = "samples/bookinfo/networking/virtual-service-reviews-50-v3.yaml"
BREAK_MESH = '''
"""Breaks three behaviours of the embedded mesh for this pytest run."""
import dataclasses

from pytest_istiolab import timeouts
from pytest_istiolab.embedded.mesh import gateways, matching, routing

# the embedded mesh applies configuration synchronously: waiting 10 s for a broken behaviour
# to come right proves nothing more than waiting 1 s
timeouts.EMBEDDED = dataclasses.replace(timeouts.EMBEDDED, eventually=1.0)
matching._headers_match = lambda rules, headers: True
routing.pick_destination = lambda destinations, rng: destinations[0]
gateways._shared_hosts = lambda server, vs: ["*"]
'''


@pytest.fixture
def child(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    for opt in c.OPTIONS:
        monkeypatch.delenv(opt.env, raising=False)
    monkeypatch.setenv("PYTHONPATH", str(pytester.path))
    return pytester


def run_lab(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess(str(LAB_FILE), "-p", "no:cacheprovider",
                                         "--istio-seed=11", "-q", *args, timeout=180)


def test_a_90_10_manifest_fails_the_fifty_fifty_check(child: pytest.Pytester,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    tree = child.path / "manifests"
    shutil.copytree(MANIFESTS, tree)
    doc = yaml.safe_load((tree / FIFTY_V3).read_text())
    doc["spec"]["http"][0]["route"][0]["weight"] = 90
    doc["spec"]["http"][0]["route"][1]["weight"] = 10
    (tree / FIFTY_V3).write_text(yaml.safe_dump(doc))
    monkeypatch.setenv("ISTIOLAB_MANIFESTS", str(tree))
    result = run_lab(child, "-k", "fifty_fifty_splits")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["E *share of reviews v3 under virtual-service-reviews-50-v3.yaml"
                                 "*of 100 (*exact two-sided binomial test gives p = * < "
                                 "alpha = 0.0001*"])


def test_a_broken_mesh_fails_the_tests_that_check_each_behaviour(child: pytest.Pytester) -> None:
    child.makepyfile(break_lab03_mesh=BREAK_MESH)
    result = run_lab(child, "-p", "break_lab03_mesh", "-k",
                     "everyone_else or fifty_fifty_splits or jason_gets or not_published")
    result.assert_outcomes(failed=5, passed=2)
    result.stdout.fnmatch_lines_random([
        "FAILED *test_everyone_else_still_gets_reviews_v1?anonymous?*",
        "FAILED *test_everyone_else_still_gets_reviews_v1?signed in as alice?*",
        "FAILED *test_everyone_else_still_gets_reviews_v1?anonymous sending end-user: jason?*",
        "FAILED *test_fifty_fifty_splits_reviews_between_v1_and_v3*",
        "FAILED *test_what_is_not_published_gets_404_from_the_gateway?/status/200-other*",
        "*expected reviews v1 on all 20 loads, saw 20 x v2*",
        "E *the 50/50 route serves reviews v3 and v1 only: not true after 1 s*last failure: "
        "20 x v1 *",
        "E *HEAD /status/200 (Host: other.example.com) is not published, yet it answered 200",
    ])
