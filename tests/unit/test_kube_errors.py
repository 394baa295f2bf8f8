"""Kube's failure paths without a cluster: bad kubeconfigs and servers that never answer.

Every unreachable case must fail with a ClusterError naming the context and the server, within
``Timeouts.api_request`` — also for a server that accepts connections and then stays silent,
and for one whose connect never completes (a listen backlog that is full drops the SYN).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from kubernetes.client.rest import ApiException

from pytest_istiolab.errors import ClusterError
from pytest_istiolab.kube import Kube, ObjectRef, status_message
from pytest_istiolab.timeouts import Timeouts

FAST = Timeouts(api_request=1.0)


def write_kubeconfig(path: Path, server: str, context: str = "lab") -> Path:
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": context,
        "clusters": [{"name": "c", "cluster": {"server": server}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": context, "context": {"cluster": "c", "user": "u"}}]}))
    return path


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def silent_server() -> Iterator[str]:
    """Accepts TCP connections (kernel backlog) and never sends a byte."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        yield f"http://127.0.0.1:{s.getsockname()[1]}"


@pytest.fixture
def blackhole_server() -> Iterator[str]:
    """A listener whose backlog is full: further connects hang in SYN-SENT."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    address = listener.getsockname()
    fillers = []
    for _ in range(4):
        filler = socket.socket()
        filler.setblocking(False)
        try:
            filler.connect(address)
        except BlockingIOError:
            pass
        fillers.append(filler)
    try:
        yield f"http://127.0.0.1:{address[1]}"
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


def _assert_unreachable(kube: Kube, server: str, limit: float) -> None:
    started = time.monotonic()
    with pytest.raises(ClusterError) as info:
        kube.ping()
    elapsed = time.monotonic() - started
    message = str(info.value)
    assert f"cannot reach the Kubernetes API server {server} (context lab)" in message
    assert "kubectl --context lab version" in message
    # A relation with a wide margin, not a speed goal: an unbounded ping hangs for good
    # (or for the kubernetes client's own minutes-long default), a bounded one ends well
    # inside ``limit`` even on a loaded 2-core machine.
    assert elapsed < limit, f"ping took {elapsed:.1f} s"


def test_ping_refused_connection_fails_fast(tmp_path: Path) -> None:
    server = f"http://127.0.0.1:{closed_port()}"
    kube = Kube(write_kubeconfig(tmp_path / "kc", server), timeouts=FAST)
    _assert_unreachable(kube, server, 10 * FAST.api_request)


def test_ping_silent_server_fails_within_the_request_timeout(tmp_path: Path,
                                                             silent_server: str) -> None:
    kube = Kube(write_kubeconfig(tmp_path / "kc", silent_server), "lab", FAST)
    _assert_unreachable(kube, silent_server, 10 * FAST.api_request)


def test_ping_blackholed_connect_fails_within_the_request_timeout(
        tmp_path: Path, blackhole_server: str) -> None:
    kube = Kube(write_kubeconfig(tmp_path / "kc", blackhole_server), "lab", FAST)
    _assert_unreachable(kube, blackhole_server, 10 * FAST.api_request)


def test_discovery_on_a_silent_server_is_bounded_too(tmp_path: Path, silent_server: str) -> None:
    kube = Kube(write_kubeconfig(tmp_path / "kc", silent_server), "lab", FAST)
    started = time.monotonic()
    with pytest.raises(ClusterError, match="cannot reach"):
        kube.get("v1", "Pod", "x", "default")
    assert time.monotonic() - started < 10 * FAST.api_request


def test_server_and_context_names(tmp_path: Path) -> None:
    kube = Kube(write_kubeconfig(tmp_path / "kc", "http://127.0.0.1:1", "kind-istio"))
    assert (kube.server, kube.context_name) == ("http://127.0.0.1:1", "kind-istio")


def test_missing_kubeconfig(tmp_path: Path) -> None:
    with pytest.raises(ClusterError) as info:
        Kube(tmp_path / "absent", "lab")
    assert f"cannot load kubeconfig {tmp_path / 'absent'} (context lab)" in str(info.value)
    assert "--istio-kubeconfig" in str(info.value)


def test_unknown_context(tmp_path: Path) -> None:
    path = write_kubeconfig(tmp_path / "kc", "http://127.0.0.1:1")
    with pytest.raises(ClusterError, match="context nope"):
        Kube(path, "nope")


def test_object_ref_reads_like_kubectl() -> None:
    assert str(ObjectRef("apps/v1", "Deployment", "x", "ns")) == "deployment.apps/x -n ns"
    assert str(ObjectRef("v1", "Namespace", "lab")) == "namespace/lab"
    assert str(ObjectRef("networking.istio.io/v1", "VirtualService", "r", "d")) == \
        "virtualservice.networking.istio.io/r -n d"
    assert ObjectRef("v1", "Pod", "a", "n") == ObjectRef("v1", "Pod", "a", "n")
    assert len({ObjectRef("v1", "Pod", "a", "n"), ObjectRef("v1", "Pod", "a", "n")}) == 1


def test_status_message_prefers_the_status_object() -> None:
    err = ApiException(status=422, reason="Unprocessable Entity")
    err.body = '{"kind":"Status","message":"spec.hosts: Required value"}'
    assert status_message(err) == "spec.hosts: Required value"
    assert status_message(ApiException(status=500, reason="boom")) == "500 boom"


class _Answer:
    def __init__(self, status: int, retry_after: str | None = None) -> None:
        self.status, self._retry_after = status, retry_after

    def getheader(self, name: str, default: object = None) -> object:
        return self._retry_after if name == "Retry-After" else default


def _replay(*answers: _Answer) -> tuple[list[float], object]:
    waits: list[float] = []
    queue = list(answers)
    from pytest_istiolab.kube.client import retry_throttled

    def send() -> _Answer:
        return queue.pop(0)

    return waits, lambda method: retry_throttled(method, send, sleep=waits.append)


def test_429_is_retried_after_its_retry_after_and_a_write_500_after_a_back_off() -> None:
    waits, call = _replay(_Answer(429, "3"), _Answer(500), _Answer(201))
    assert call("PATCH").status == 201  # type: ignore[attr-defined, operator]
    assert waits == [3.0, 0.4]


def test_a_read_500_is_not_retried_and_the_last_answer_surfaces() -> None:
    waits, call = _replay(_Answer(500), _Answer(200))
    assert call("GET").status == 500  # type: ignore[attr-defined, operator]
    assert waits == []
    waits, call = _replay(*[_Answer(429, "999")] * 6)
    assert call("POST").status == 429  # type: ignore[attr-defined, operator]
    assert waits == [10.0] * 5, "Retry-After is capped; the attempts are bounded"
