"""Addons on a cluster shared by xdist workers: the last worker using them removes them.

An embedded cluster with Istio (no addons) is started here; a separate ``pytest -n 2
--dist loadfile --istio-cluster=existing`` runs two modules against it, one per worker
(``shared_addons_early.py`` ends first, ``shared_addons_late.py`` checks the addons are
still there after that, and that both workers have the same run id). Afterwards nothing the
run created remains.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from realcluster_testkit import (
    HERE,
    REPO,
    RUN_TIMEOUT,
    Target,
    _env,
    pytest_argv,
    start_target,
    stop_target,
)

from pytest_istiolab.constants import LABEL_RUN
from pytest_istiolab.kube import take_inventory


@pytest.fixture(scope="module")
def istio_only(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    target = start_target(tmp_path_factory.mktemp("shared-addons"))
    try:
        target.install_baseline(addons=False)
        yield target
    finally:
        stop_target(target)


def test_workers_share_the_addons_and_the_last_one_removes_them(istio_only: Target,
                                                                tmp_path: Path) -> None:
    before = take_inventory(istio_only.kube)
    env = {**_env(None), "ISTIOLAB_SHARED_ADDONS_DIR": str(tmp_path)}
    argv = pytest_argv(str(HERE / "shared_addons_early.py"), str(HERE / "shared_addons_late.py"),
                       *istio_only.options(), "-n", "2", "--dist", "loadfile")
    result = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True,
                            timeout=RUN_TIMEOUT)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "2 passed" in result.stdout
    run_id = (tmp_path / "early-run-id").read_text()
    assert (tmp_path / "late-has-addons").read_text() == run_id  # one run id on both workers
    left = [d["metadata"]["name"] for kind in ("Deployment", "Service", "ConfigMap")
            for d in istio_only.kube.list("apps/v1" if kind == "Deployment" else "v1", kind,
                                          "istio-system", label_selector=f"{LABEL_RUN}={run_id}")]
    assert not left, f"the run's addons remain: {left}"
    diff = before.diff(take_inventory(istio_only.kube))
    assert not diff, f"the run changed the cluster:\n{diff.describe()}"
