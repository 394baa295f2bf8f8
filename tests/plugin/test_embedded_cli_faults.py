"""``istiolab-embedded`` given a busy port, or interrupted as it starts: one message naming the
cause (and the fix, for a usage error), the documented exit status, no traceback, and its
temporary directory gone."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys

import pytest

START = 120  # seconds: a bound against a hang, not a speed goal


def _cli(tmp_path, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "TMPDIR": str(tmp_path)}  # its temp dir lands here, where we look
    return subprocess.Popen([sys.executable, "-m", "pytest_istiolab.embedded", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _nothing_left(tmp_path) -> None:
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith("istiolab-embedded-")]


def test_a_port_in_use_is_one_usage_error_and_leaves_nothing(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = _cli(tmp_path, "--port", str(port))
        out, err = proc.communicate(timeout=START)
    assert proc.returncode == 2, err
    assert err.splitlines() == [
        f"istiolab-embedded: error: 127.0.0.1:{port} is already in use, so the API server "
        "cannot listen there",
        "  fix: pass a free --port, or --port 0 (the default) for any free port"]
    assert out == ""
    _nothing_left(tmp_path)


@pytest.mark.parametrize("port", ["-1", "70000"])
def test_a_port_out_of_range_is_refused_by_the_parser(tmp_path, port):
    proc = _cli(tmp_path, "--port", port)
    _, err = proc.communicate(timeout=START)
    assert proc.returncode == 2
    assert f"--port {port} is not a TCP port" in err and "Traceback" not in err
    _nothing_left(tmp_path)


@pytest.mark.parametrize("after", ["API server:", "Serving;"])
def test_ctrl_c_as_it_prints_its_banner_stops_it_cleanly(tmp_path, after):
    proc = _cli(tmp_path)
    assert proc.stdout is not None
    seen = []
    for line in proc.stdout:  # Ctrl-C as soon as the line is out
        seen.append(line)
        if line.startswith(after):
            proc.send_signal(signal.SIGINT)
            break
    out, err = proc.communicate(timeout=START)
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    stopped = (0, "")  # it was serving: Ctrl-C is the documented way to stop it
    interrupted = (130, "istiolab-embedded: interrupted while starting; stopped, nothing left "
                        "behind\n")  # the banner was not all out: one line says so
    # After the first line the signal may land before or after the banner ends: either answer
    # is right, a traceback or a leftover never is.
    assert (proc.returncode, err) in ([stopped] if after == "Serving;" else
                                      [stopped, interrupted]), (proc.returncode, err)
    _nothing_left(tmp_path)
