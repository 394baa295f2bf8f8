"""Fixtures shared by the plugin's own tests (pytester and subprocess runs of the suite)."""

from __future__ import annotations

import pytest

from pytest_istiolab import constants as c


@pytest.fixture
def _no_istiolab_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The run under test sees no ISTIOLAB_* settings from the caller's environment (a
    developer's or CI's ``ISTIOLAB_PROFILE`` would otherwise change what it runs)."""
    for opt in c.OPTIONS:
        monkeypatch.delenv(opt.env, raising=False)
