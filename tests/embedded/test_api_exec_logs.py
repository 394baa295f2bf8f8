"""pods/exec over websockets and pods/log, through the kubernetes client's stream()."""

from __future__ import annotations

import json
import threading
import time

import httpx
import pytest
import websocket
from api_testkit import BLOCK_ENTERED, BLOCK_RELEASE, Api, api_fixture, eventually  # noqa: F401
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from kubernetes.stream import stream

from pytest_istiolab.embedded.api import wsexec

FOLLOW_TIMEOUT = 10.0
SUBSCRIBE_TIMEOUT = 5.0


def _exec(api: Api, pod: str, argv: list[str], container: str | None = None,
          stdin: bytes | None = None) -> tuple[int | None, str, str]:
    core = client.CoreV1Api(api.client())  # a dedicated ApiClient: stream() patches it
    kwargs = {"container": container} if container else {}
    ws = stream(core.connect_get_namespaced_pod_exec, pod, "default", command=argv,
                stdout=True, stderr=True, stdin=stdin is not None, tty=False,
                _preload_content=False, **kwargs)
    if stdin is not None:
        ws.write_stdin(stdin.decode())
        ws.close_channel(0)
    ws.run_forever(timeout=10)
    code = ws.returncode
    out, err = ws.read_stdout(), ws.read_stderr()
    return code, out, err


def test_exec_returns_stdout_and_exit_code_zero(api: Api) -> None:
    api.add_pod("p")
    assert _exec(api, "p", ["echo", "hello", "world"]) == (0, "hello world\n", "")


def test_exec_failure_carries_the_exit_code(api: Api) -> None:
    api.add_pod("p")
    assert _exec(api, "p", ["exit", "7"])[0] == 7
    assert _exec(api, "p", ["fail", "boom"]) == (3, "", "boom\n")


def test_exec_reads_stdin_until_channel_close(api: Api) -> None:
    api.add_pod("p")
    assert _exec(api, "p", ["cat"], stdin=b"piped\ninput\n") == (0, "piped\ninput\n", "")


def test_exec_preloaded_returns_output(api: Api) -> None:
    api.add_pod("p")
    core = client.CoreV1Api(api.client())
    out = stream(core.connect_get_namespaced_pod_exec, "p", "default", command=["whoami"],
                 stdout=True, stderr=True, stdin=False, tty=False)
    assert out == "p/app\n"


def test_exec_container_choice_follows_the_api_server(api: Api) -> None:
    api.add_pod("two", containers=("main", "istio-proxy"))
    assert _exec(api, "two", ["whoami"], container="istio-proxy")[1] == "two/istio-proxy\n"
    r = httpx.get(f"{api.url}/api/v1/namespaces/default/pods/two/exec?command=whoami&stdout=1")
    assert r.status_code == 400
    assert r.json()["message"] == ("a container name must be specified for pod two, choose one "
                                   "of: [main istio-proxy]")
    bad = httpx.get(f"{api.url}/api/v1/namespaces/default/pods/two/exec?command=x&container=zz")
    assert bad.status_code == 400
    assert bad.json()["message"] == "container zz is not valid for pod two"


def test_exec_on_missing_pod_fails_the_handshake_with_404(api: Api) -> None:
    with pytest.raises(ApiException) as err:
        _exec(api, "ghost", ["echo"])
    assert "Handshake status 404" in str(err.value)


def test_exec_needs_a_running_pod(api: Api) -> None:
    api.add_pod("pending", phase="Pending")
    api.add_pod("done", phase="Succeeded")
    for pod, text in (("pending", 'container not found ("app")'),
                      ("done", "current phase is Succeeded")):
        r = httpx.get(f"{api.url}/api/v1/namespaces/default/pods/{pod}/exec?command=x")
        assert r.status_code == 400 and text in r.json()["message"]


def test_exec_without_websocket_upgrade_says_spdy_is_not_modelled(api: Api) -> None:
    api.add_pod("p")
    r = httpx.post(f"{api.url}/api/v1/namespaces/default/pods/p/exec?command=echo",
                   headers={"Upgrade": "SPDY/3.1", "Connection": "Upgrade"})
    assert r.status_code == 400 and "SPDY" in r.json()["message"]


def _log(api: Api, pod: str, text: str, container: str = "app", when: float | None = None
         ) -> None:
    api.runtime.logs.append("default", pod, container, text, when or api.runtime.clock.now())


def test_logs_read_tail_and_timestamps(api: Api) -> None:
    api.add_pod("p")
    _log(api, "p", "one\ntwo\nthree")
    core = client.CoreV1Api(api.client())
    assert core.read_namespaced_pod_log("p", "default") == "one\ntwo\nthree\n"
    assert core.read_namespaced_pod_log("p", "default", tail_lines=1) == "three\n"
    stamped = core.read_namespaced_pod_log("p", "default", timestamps=True, tail_lines=1)
    assert stamped.endswith("Z three\n") and stamped[:4].isdigit()


def test_logs_since_seconds_uses_the_cluster_clock(api: Api) -> None:
    api.add_pod("p")
    _log(api, "p", "old", when=api.runtime.clock.now() - 600)
    _log(api, "p", "new")
    core = client.CoreV1Api(api.client())
    assert core.read_namespaced_pod_log("p", "default", since_seconds=60) == "new\n"


def test_logs_container_rules_and_missing_pod(api: Api) -> None:
    api.add_pod("two", containers=("main", "istio-proxy"))
    _log(api, "two", "proxy line", container="istio-proxy")
    core = client.CoreV1Api(api.client())
    assert core.read_namespaced_pod_log("two", "default", container="istio-proxy") == \
        "proxy line\n"
    with pytest.raises(ApiException) as err:
        core.read_namespaced_pod_log("two", "default")
    assert err.value.status == 400 and "choose one of: [main istio-proxy]" in err.value.body
    with pytest.raises(ApiException) as err:
        core.read_namespaced_pod_log("ghost", "default")
    assert err.value.status == 404


def test_logs_follow_streams_new_lines_until_the_pod_goes(api: Api) -> None:
    api.add_pod("p")
    _log(api, "p", "first")
    got: list[str] = []
    with httpx.stream("GET", f"{api.url}/api/v1/namespaces/default/pods/p/log?follow=true",
                      timeout=FOLLOW_TIMEOUT) as r:
        lines = r.iter_lines()
        got.append(next(lines))
        _log(api, "p", "second")
        got.append(next(lines))
        api.store.delete(api.rt("", "pods"), "default", "p")
        got += list(lines)
    assert got == ["first", "second"]


def test_stop_ends_log_follow_promptly(api: Api) -> None:
    api.add_pod("p")
    _log(api, "p", "x")
    done = threading.Event()
    with httpx.stream("GET", f"{api.url}/api/v1/namespaces/default/pods/p/log?follow=1",
                      timeout=FOLLOW_TIMEOUT) as r:
        lines = r.iter_lines()
        assert next(lines) == "x"
        start = time.monotonic()
        api.server.stop()
        list(lines)
        done.set()
    assert done.is_set() and time.monotonic() - start < 5


def _raw_ws(api: Api, query: str, protocol: str) -> websocket.WebSocket:
    url = api.url.replace("http://", "ws://") + f"/api/v1/namespaces/default/pods/p/exec?{query}"
    return websocket.create_connection(url, subprotocols=[protocol], timeout=10)


def _frames(ws: websocket.WebSocket) -> list[bytes]:
    frames = []
    while True:
        opcode, data = ws.recv_data()
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            return frames
        frames.append(bytes(data))


def test_v4_protocol_exec_sends_channels_then_status(api: Api) -> None:
    api.add_pod("p")
    ws = _raw_ws(api, "command=fail&command=oops&stdout=true&stderr=true", "v4.channel.k8s.io")
    assert ws.subprotocol == "v4.channel.k8s.io"
    frames = _frames(ws)
    assert frames[0] == b"\x02oops\n"
    status = json.loads(frames[-1][1:])
    assert frames[-1][0] == 3 and status["reason"] == "NonZeroExitCode"
    assert status["details"]["causes"] == [{"reason": "ExitCode", "message": "3"}]


def test_v4_stdin_ends_after_a_quiet_spell(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wsexec, "V4_STDIN_IDLE_SECONDS", 0.2)
    api.add_pod("p")
    ws = _raw_ws(api, "command=cat&stdin=true&stdout=true", "v4.channel.k8s.io")
    ws.send_binary(b"\x00abc")
    frames = _frames(ws)
    assert frames[0] == b"\x01abc" and json.loads(frames[1][1:])["status"] == "Success"


def test_tty_folds_stderr_into_stdout_with_the_terminals_crlf(api: Api) -> None:
    api.add_pod("p")
    ws = _raw_ws(api, "command=fail&command=x&stdout=true&tty=true", "v5.channel.k8s.io")
    assert _frames(ws)[0] == b"\x01x\r\n"


def test_stop_does_not_wait_for_a_running_command(api: Api) -> None:
    api.add_pod("p")
    BLOCK_ENTERED.clear()
    BLOCK_RELEASE.clear()
    frames: list[list[bytes]] = []
    ws = _raw_ws(api, "command=block&stdout=true", "v5.channel.k8s.io")
    reader = threading.Thread(target=lambda: frames.append(_frames(ws)))
    reader.start()
    try:
        assert BLOCK_ENTERED.wait(5)
        start = time.monotonic()
        api.server.stop()
        assert time.monotonic() - start < 2
        reader.join(5)
        assert frames == [[]]  # closed without output or status
    finally:
        BLOCK_RELEASE.set()


def test_a_client_that_goes_away_leaves_no_watch_behind(api: Api) -> None:
    before = len(api.store._subscribers)
    with httpx.stream("GET", f"{api.url}/api/v1/namespaces/default/pods?watch=1",
                      timeout=FOLLOW_TIMEOUT) as r:
        assert r.status_code == 200
        assert eventually(lambda: len(api.store._subscribers) == before + 1, SUBSCRIBE_TIMEOUT)
    assert eventually(lambda: len(api.store._subscribers) == before, SUBSCRIBE_TIMEOUT)
