"""Fixtures of the real-cluster tests: embedded clusters started here and used by a separate
pytest process only through their kubeconfig (see ``realcluster_testkit``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from realcluster_testkit import Target, start_target, stop_target


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    """A cluster as a platform team has it before the suite runs: Istio demo and the addons."""
    target = start_target(tmp_path_factory.mktemp("baseline"))
    try:
        target.install_baseline(addons=True)
        yield target
    finally:
        stop_target(target)


@pytest.fixture
def bare(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    """A cluster without Istio."""
    target = start_target(tmp_path_factory.mktemp("bare"))
    try:
        yield target
    finally:
        stop_target(target)
