"""pytest plugin for the benchmark: counts ``Kube.exec`` calls per test.

Used as ``-p execcount`` with ``benchmarks/`` on ``sys.path``; writes ``{nodeid: count}`` to
the file named by ``ISTIOLAB_EXEC_COUNTS`` at the end of the run.
"""

from __future__ import annotations

import json
import os
from collections import Counter

import pytest

from pytest_istiolab.kube import podexec as kube_exec

COUNTS: Counter[str] = Counter()
CURRENT: dict[str, str] = {}
_original = kube_exec.ExecMixin.exec


def _counting_exec(self, *args, **kwargs):  # type: ignore[no-untyped-def]
    COUNTS[CURRENT.get("test", "(setup)")] += 1
    return _original(self, *args, **kwargs)


def pytest_configure(config: pytest.Config) -> None:
    kube_exec.ExecMixin.exec = _counting_exec  # type: ignore[method-assign]


def pytest_runtest_call(item: pytest.Item) -> None:
    CURRENT["test"] = item.nodeid
    COUNTS.setdefault(item.nodeid, 0)


def pytest_runtest_teardown(item: pytest.Item) -> None:
    CURRENT.pop("test", None)


def pytest_unconfigure(config: pytest.Config) -> None:
    kube_exec.ExecMixin.exec = _original  # type: ignore[method-assign]
    target = os.environ.get("ISTIOLAB_EXEC_COUNTS")
    if target:
        with open(target, "w") as handle:
            json.dump(dict(COUNTS), handle)
