"""What the real kubectl shows of an exec'd tool: write order, ``-quiet``, ``-it`` from a tty.

The mesh model (``mesh_testkit``) behind a real API server, the pinned kubectl in front of it:
``2>&1`` keeps fortio's order (headers on stderr before the body on stdout), and
``kubectl exec -it`` from a pseudo-terminal that is never closed answers as soon as the command
ends, because only commands that read stdin wait for it.
"""

from __future__ import annotations

import os
import pty
import select
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from api_testkit import KUBECTL, Kubectl
from mesh_testkit import Kit

from pytest_istiolab.embedded.api import ApiServer
from pytest_istiolab.embedded.tools import reads_stdin, run_in_container

FORTIO_POD = "fortio-deploy-6d5c7b8f9-k2x4q"
TTY_ANSWER_TIMEOUT = 20.0  # far below the 300 s the exec used to wait for stdin to close


@pytest.fixture
def mesh(tmp_path: Path) -> Iterator[Kubectl]:
    if not KUBECTL.exists():
        pytest.fail(f"the pinned kubectl is not installed at {KUBECTL}", pytrace=False)
    kit = Kit(seed=3)
    kit.httpbin()
    kit.sleep()
    kit.pod(FORTIO_POD, "default", "fortio/fortio:latest_release", {"app": "fortio"},
            ports=[8080])
    server = ApiServer(kit.rt, exec_handler=run_in_container, reads_stdin=reads_stdin)
    url = server.start()
    try:
        yield Kubectl(url, tmp_path)
    finally:
        server.stop()


def _merged(kubectl: Kubectl, *args: str) -> tuple[int, str]:
    """Run kubectl with stderr folded into stdout, as ``2>&1`` does."""
    env = {"HOME": str(kubectl.home), "KUBECONFIG": str(kubectl.kubeconfig),
           "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([str(KUBECTL), *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          stdin=subprocess.DEVNULL, env=env, timeout=30)
    return proc.returncode, proc.stdout.decode("utf-8", "replace")  # no newline translation


def test_fortio_curl_headers_come_before_the_body_in_a_merged_capture(mesh: Kubectl) -> None:
    code, text = _merged(mesh, "exec", FORTIO_POD, "-c", "fortio", "--", "fortio", "curl",
                         "http://httpbin:8000/get")
    assert code == 0, text
    status, body = text.find("HTTP/1.1 200 OK"), text.find('"url"')
    assert 0 <= status < body, text
    assert text.index("Starting") < status  # fortio's info log line comes first


def test_fortio_curl_quiet_drops_the_info_log(mesh: Kubectl) -> None:
    code, text = _merged(mesh, "exec", FORTIO_POD, "-c", "fortio", "--", "fortio", "curl",
                         "-quiet", "http://httpbin:8000/get")
    assert code == 0, text
    assert text.startswith("HTTP/1.1 200 OK\r\n"), text[:200]


def test_fortio_load_json_comes_between_the_summary_and_the_last_line(mesh: Kubectl) -> None:
    code, text = _merged(mesh, "exec", FORTIO_POD, "-c", "fortio", "--", "fortio", "load",
                         "-quiet", "-n", "4", "-json", "-", "http://httpbin:8000/get")
    assert code == 0, text
    assert text.index("All done") < text.index('"RunType"') < text.index("Successfully wrote")


def _run_in_pty(kubectl: Kubectl, *args: str, timeout: float) -> tuple[int | None, bytes]:
    """Run kubectl on a pseudo-terminal that stays open; (exit code or None on timeout, output)."""
    env = {"HOME": str(kubectl.home), "KUBECONFIG": str(kubectl.kubeconfig),
           "PATH": "/usr/bin:/bin", "TERM": "xterm"}
    leader, follower = pty.openpty()
    proc = subprocess.Popen([str(KUBECTL), *args], stdin=follower, stdout=follower,
                            stderr=follower, env=env, start_new_session=True)
    os.close(follower)
    out, deadline = bytearray(), time.monotonic() + timeout
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 0.2)
            if ready:
                try:
                    out += os.read(leader, 65536)
                except OSError:  # EIO: kubectl closed the terminal, it is exiting
                    break
        try:
            return proc.wait(timeout=max(0.0, deadline - time.monotonic())), bytes(out)
        except subprocess.TimeoutExpired:
            return None, bytes(out)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
        os.close(leader)


def test_exec_it_from_a_terminal_answers_without_waiting_for_stdin(mesh: Kubectl) -> None:
    sleep_pod = next(line.split()[0] for line in
                     mesh.run("get", "pods", "--no-headers").stdout.splitlines()
                     if line.startswith("sleep"))
    code, out = _run_in_pty(mesh, "exec", "-it", sleep_pod, "-c", "sleep", "--", "curl", "-s",
                            "-o", "/dev/null", "-w", "%{http_code}\n", "http://httpbin:8000/get",
                            timeout=TTY_ANSWER_TIMEOUT)
    assert code == 0, (f"kubectl exec -it did not end within {TTY_ANSWER_TIMEOUT:.0f}s with its "
                       f"terminal open: {out!r}")
    assert out.endswith(b"200\r\n"), out  # the container's terminal turns \n into \r\n


def test_a_command_that_reads_stdin_still_gets_it(mesh: Kubectl) -> None:
    sleep_pod = next(line.split()[0] for line in
                     mesh.run("get", "pods", "--no-headers").stdout.splitlines()
                     if line.startswith("sleep"))
    got = mesh.run("exec", "-i", sleep_pod, "-c", "sleep", "--", "curl", "-s", "--data-binary",
                   "@-", "http://httpbin:8000/post", stdin="piped body")
    assert '"data": "piped body"' in got.stdout


@pytest.mark.parametrize(("argv", "reads"), [
    (["curl", "-s", "http://x/"], False), (["curl", "-d", "@-", "http://x/"], True),
    (["curl", "--data-urlencode", "q@-", "http://x/"], True),
    (["curl", "--data-raw", "@-", "http://x/"], False), (["cat"], True), (["cat", "f"], False),
    (["sh", "-c", "cat -"], True), (["fortio", "curl", "http://x/"], False)])
def test_which_commands_read_stdin(argv: list[str], reads: bool) -> None:
    assert reads_stdin(argv) is reads
