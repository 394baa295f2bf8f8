"""Run by test_shared_addons (not collected otherwise): the worker that finishes first.

It waits until the other worker uses the addons too, then ends; its session fixture
``_signal_done`` (set up before ``addons``, so torn down after it) writes a marker once the
addons fixture's teardown is over.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_istiolab.waiting import poll_until

SHARED = Path(os.environ.get("ISTIOLAB_SHARED_ADDONS_DIR", "."))
WAIT = 60.0


@pytest.fixture(scope="session")
def _signal_done(istio_settings) -> Iterator[None]:  # type: ignore[no-untyped-def]
    yield
    (SHARED / "early-done").write_text(istio_settings.run_id)


def test_early_uses_the_addons_then_ends(_signal_done, addons, istio_settings) -> None:  # type: ignore[no-untyped-def]
    assert addons.created or addons.found
    (SHARED / "early-run-id").write_text(istio_settings.run_id)
    assert poll_until(lambda: (SHARED / "late-has-addons").exists(), timeout=WAIT,
                      interval=0.05), "the other worker never got the addons"
