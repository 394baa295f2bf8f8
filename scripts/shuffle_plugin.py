"""A seeded shuffle of the collected tests (used by ``scripts/isolation``): modules in a random
order, and the tests inside each module in a random order (``ISTIOLAB_SHUFFLE_SCOPE=modules``:
modules only, each module's tests in file order). Seed from ``ISTIOLAB_SHUFFLE_SEED``
(the same on every xdist worker, so they all collect one order, as xdist requires).

Load it with ``-p shuffle_plugin`` and ``scripts`` on ``PYTHONPATH``."""

from __future__ import annotations

import os
import random

import pytest


def pytest_report_header(config: pytest.Config) -> str:
    return (f"shuffle seed {os.environ.get('ISTIOLAB_SHUFFLE_SEED', '0')}, scope "
            f"{os.environ.get('ISTIOLAB_SHUFFLE_SCOPE', 'tests')}")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rng = random.Random(int(os.environ.get("ISTIOLAB_SHUFFLE_SEED", "0")))
    modules: dict[str, list[pytest.Item]] = {}
    for item in items:
        modules.setdefault(item.nodeid.split("::")[0], []).append(item)
    order = list(modules)
    rng.shuffle(order)
    shuffled = []
    for name in order:
        tests = modules[name]
        if os.environ.get("ISTIOLAB_SHUFFLE_SCOPE", "tests") != "modules":
            rng.shuffle(tests)
        shuffled.extend(tests)
    items[:] = shuffled
