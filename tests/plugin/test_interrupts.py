"""Ctrl-C to an xdist run: one short message, no traceback, and no worker's files left.

The inner tests hold their workers busy (each writes a marker, then waits on a file that never
comes, bounded) while the controller is interrupted: alone (``kill -INT <controller>``, as a
supervisor does) or with its workers (a terminal's Ctrl-C reaches the process group)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from pytest_istiolab import constants as c
from pytest_istiolab import waiting

BUSY = """
import contextlib, os, pathlib
from pytest_istiolab import waiting

def _held(name):
    markers = pathlib.Path(os.environ["MARKERS"])
    (markers / name).touch()

    def released():
        assert (markers / "never").exists(), "held until interrupted"

    with contextlib.suppress(AssertionError):
        waiting.eventually(released, timeout=120, interval=0.2, description="held")

def test_a(cluster):
    _held("a")

def test_b(cluster):
    _held("b")
"""
SETTLE = 120  # seconds: bounds against a hang, not speed goals


@pytest.mark.parametrize("who", ["controller", "group"])
def test_ctrl_c_to_an_xdist_run_is_one_short_message_and_leaves_nothing(pytester, tmp_path,
                                                                         monkeypatch, who):
    for opt in c.OPTIONS:
        monkeypatch.delenv(opt.env, raising=False)
    (tmp_path / "test_busy.py").write_text(BUSY)
    markers = tmp_path / "markers"
    markers.mkdir()
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = {**os.environ, "MARKERS": str(markers), "TMPDIR": str(temp)}
    proc = subprocess.Popen([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-n", "2",
                             "--dist", "load", "test_busy.py"], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)

    def both_busy() -> None:
        assert proc.poll() is None, "the run ended before it was interrupted"
        assert len(list(markers.iterdir())) == 2, "the workers have not both started a test"

    waiting.eventually(both_busy, timeout=SETTLE, interval=0.2,
                       description="both xdist workers hold a test")
    if who == "group":
        os.killpg(proc.pid, signal.SIGINT)
    else:
        proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=SETTLE)
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, out
    assert "Traceback" not in out and "INTERNALERROR" not in out, out
    assert out.count("!!! KeyboardInterrupt !!!") == 1 and len(out.splitlines()) < 30, out
    left = [str(p.relative_to(temp)) for p in temp.rglob("*")]
    assert left == [] or left == [f"pytest-istiolab-{os.getuid()}"], left
