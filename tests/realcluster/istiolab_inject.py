"""A pytest plugin loaded into the suite under test (``-p istiolab_inject``) by the cleanup proof.

Environment (set by ``realcluster_testkit``):

* ``ISTIOLAB_INJECT_FAIL``: comma-separated test names that fail on entry, as a broken mesh
  would make them fail (their fixtures are set up, so everything they need exists);
* ``ISTIOLAB_INJECT_BLOCK``: a test name that, once its fixtures are set up, writes the file
  ``ISTIOLAB_INJECT_MARKER`` and waits for the process to be interrupted (Ctrl-C);
* ``ISTIOLAB_INJECT_BREAK``: ``mesh-restore`` and/or ``namespace-delete`` turn that cleanup
  off, so the proof can be shown to fail when cleanup is broken.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

BLOCK_LIMIT = 60.0  # seconds a blocked test waits for the interrupt before failing


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_call(item: pytest.Item) -> None:
    failing = [n for n in os.environ.get("ISTIOLAB_INJECT_FAIL", "").split(",") if n]
    if item.name in failing:
        pytest.fail(f"injected failure in {item.name} (istiolab_inject)")
    if item.name == os.environ.get("ISTIOLAB_INJECT_BLOCK"):
        Path(os.environ["ISTIOLAB_INJECT_MARKER"]).write_text(item.nodeid)
        if not threading.Event().wait(BLOCK_LIMIT):  # KeyboardInterrupt ends the wait
            pytest.fail(f"{item.name} was never interrupted (istiolab_inject)")


def pytest_configure(config: pytest.Config) -> None:
    """``ISTIOLAB_INJECT_BREAK``: disable parts of the cleanup, to show the proof notices."""
    broken = os.environ.get("ISTIOLAB_INJECT_BREAK", "").split(",")
    if "mesh-restore" in broken:
        from pytest_istiolab.deploy import MeshWide

        MeshWide.restore = lambda self: None  # type: ignore[method-assign]
    if "namespace-delete" in broken:
        from pytest_istiolab import fixtures
        from pytest_istiolab.kube import Namespaces

        Namespaces.delete = lambda self, name: None  # type: ignore[method-assign]
        fixtures.sweep_run_namespaces = lambda kube, run_id: []  # type: ignore[assignment]
