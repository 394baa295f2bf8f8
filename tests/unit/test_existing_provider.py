"""ExistingProvider: explicit contexts, clear usage errors, and a bounded reachability check
against loopback servers (one answering /version, a closed port, one that never answers)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from pytest_istiolab.cluster import ClusterHandle
from pytest_istiolab.cluster.providers import existing
from pytest_istiolab.cluster.providers.existing import ExistingProvider
from pytest_istiolab.errors import ClusterError, UsageError

VERSION_BODY: dict[str, object] = {
    "major": "1", "minor": "32", "gitVersion": "v1.32.2", "gitCommit": "4b8e8", "gitTreeState":
    "clean", "buildDate": "2025-02-12T21:17:52Z", "goVersion": "go1.23.6", "compiler": "gc",
    "platform": "linux/amd64"}


def kubeconfig(path: Path, servers: dict[str, str], current: str | None = None) -> Path:
    """A kubeconfig with one context (and cluster, user) per entry of ``servers``."""
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": current or next(iter(servers)),
        "clusters": [{"name": n, "cluster": {"server": s}} for n, s in servers.items()],
        "users": [{"name": n, "user": {"token": "t0ken"}} for n in servers],
        "contexts": [{"name": n, "context": {"cluster": n, "user": n}} for n in servers],
    }))
    return path


@pytest.fixture
def api_server() -> Iterator[tuple[str, list[str]]]:
    """Answers GET /version like kube-apiserver; records the Authorization headers it saw."""
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            seen.append(self.headers.get("Authorization", ""))
            found = self.path in ("/version", "/version/")
            status, body = (200, VERSION_BODY) if found else (404, {})
            if self.headers.get("Authorization") != "Bearer t0ken":
                status, body = 401, {"kind": "Status", "reason": "Unauthorized", "code": 401}
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", seen
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def closed_port() -> str:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return f"http://127.0.0.1:{port}"


class SilentServer(str):
    """The URL of a listener that accepts connections and never answers; ``connections``
    counts the ones it accepted (how many attempts the client made)."""

    connections: list[socket.socket]


@pytest.fixture
def silent_server() -> Iterator[SilentServer]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    url = SilentServer(f"http://127.0.0.1:{sock.getsockname()[1]}")
    url.connections = []

    def accept() -> None:
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            url.connections.append(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield url
    sock.close()
    for conn in url.connections:
        conn.close()
    thread.join(timeout=5)


# ----------------------------------------------------------------------- success
def test_start_checks_version_and_describes_the_cluster(api_server: tuple[str, list[str]],
                                                        tmp_path: Path) -> None:
    url, seen = api_server
    path = kubeconfig(tmp_path / "kc", {"prod": "https://10.0.0.1:6443", "staging": url})
    provider = ExistingProvider("staging", path)
    handle = provider.start()
    assert handle == ClusterHandle(
        kubeconfig=path, context="staging", provider="existing",
        description=f"existing context staging (server {url})",
        extra={"server": url, "server_version": "v1.32.2"})
    assert seen == ["Bearer t0ken"]                   # the context's own credentials
    provider.stop()                                   # nothing to remove, no error


def test_kubeconfig_env_list_picks_the_file_defining_the_context(
        api_server: tuple[str, list[str]], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    first = kubeconfig(tmp_path / "a", {"other": "https://10.0.0.1:6443"})
    second = kubeconfig(tmp_path / "b", {"mesh": api_server[0]})
    monkeypatch.setenv("KUBECONFIG", os.pathsep.join([str(tmp_path / "missing"), str(first),
                                                      str(second)]))
    assert ExistingProvider("mesh").start().kubeconfig == second


# ----------------------------------------------------------------------- usage errors
def test_context_is_required_and_the_error_lists_them(tmp_path: Path) -> None:
    path = kubeconfig(tmp_path / "kc", {"a": "https://1.2.3.4", "b": "https://1.2.3.5"})
    with pytest.raises(UsageError) as err:
        ExistingProvider(None, path).start()
    assert str(err.value).startswith(
        f"--istio-cluster=existing needs --istio-context NAME; contexts in {path}: a, b")


def test_unknown_context_lists_the_available_ones(tmp_path: Path) -> None:
    path = kubeconfig(tmp_path / "kc", {"a": "https://1.2.3.4", "b": "https://1.2.3.5"})
    with pytest.raises(UsageError, match=r"context 'kind-x' is not in .*; contexts there: a, b"):
        ExistingProvider("kind-x", path).start()


def test_missing_kubeconfig_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="(?s)does not exist.*--istio-kubeconfig"):
        ExistingProvider("a", tmp_path / "nope").start()


def test_garbage_kubeconfig_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "kc").write_text("- just\n- a list\n")
    with pytest.raises(UsageError, match="is not a kubeconfig"):
        ExistingProvider("a", tmp_path / "kc").start()


def test_context_without_usable_credentials_is_a_usage_error(tmp_path: Path) -> None:
    path = tmp_path / "kc"
    path.write_text(yaml.safe_dump({
        "contexts": [{"name": "a", "context": {"cluster": "gone", "user": "gone"}}],
        "clusters": [], "users": []}))
    with pytest.raises(UsageError, match="context 'a' in .* cannot be loaded"):
        ExistingProvider("a", path).start()


# ----------------------------------------------------------------------- reachability
def test_closed_port_is_a_cluster_error_naming_context_server_and_fix(
        closed_port: str, tmp_path: Path) -> None:
    path = kubeconfig(tmp_path / "kc", {"dev": closed_port})
    with pytest.raises(ClusterError) as err:
        ExistingProvider("dev", path).start()
    assert str(err.value) == (
        f"the API server of context 'dev' ({closed_port}) is not usable: connection refused\n"
        "  fix: check that the cluster runs and is reachable from here (VPN, proxy, firewall): "
        "`kubectl --context dev version`")


def test_silent_server_fails_after_the_read_timeout_without_retries(
        silent_server: SilentServer, tmp_path: Path) -> None:
    path = kubeconfig(tmp_path / "kc", {"dev": str(silent_server)})
    with pytest.raises(ClusterError, match="no answer in time"):
        ExistingProvider("dev", path, read_timeout=0.5).start()
    assert len(silent_server.connections) == 1      # one attempt, not the client's four


def test_hard_deadline_bounds_the_whole_check(silent_server: str, tmp_path: Path) -> None:
    path = kubeconfig(tmp_path / "kc", {"dev": str(silent_server)})
    started = time.monotonic()
    with pytest.raises(ClusterError, match=r"not usable: no answer within 1 s"):
        ExistingProvider("dev", path, read_timeout=30, deadline=1.0).start()
    # the deadline, not the 30 s read timeout, ended it (a wide margin, not a speed goal)
    assert time.monotonic() - started < 15


def test_default_timeouts_fit_in_ten_seconds() -> None:
    assert existing.DEADLINE == 10.0
    assert existing.CONNECT_TIMEOUT + existing.READ_TIMEOUT <= existing.DEADLINE


def test_refused_credentials_say_to_refresh_them(api_server: tuple[str, list[str]],
                                                 tmp_path: Path) -> None:
    path = kubeconfig(tmp_path / "kc", {"dev": api_server[0]})
    path.write_text(path.read_text().replace("t0ken", "expired"))
    with pytest.raises(ClusterError, match="(?s)HTTP 401.*credentials of context 'dev'"):
        ExistingProvider("dev", path).start()


# ----------------------------------------------------------------------- a real API server
@pytest.fixture
def embedded_cluster(tmp_path: Path) -> Iterator[Path]:
    """An embedded cluster in its own process, known to us only through its kubeconfig."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest_istiolab.embedded", "--dir", str(tmp_path / "emb")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        cwd=Path(__file__).resolve().parents[2])
    assert proc.stdout is not None and proc.stderr is not None
    stdout, found = proc.stdout, []

    def read_until_kubeconfig() -> None:
        for line in stdout:
            if line.startswith("export KUBECONFIG="):
                found.append(Path(line.split("=", 1)[1].strip()))
                return

    reader = threading.Thread(target=read_until_kubeconfig, daemon=True)
    reader.start()
    reader.join(timeout=30)
    kubeconfig_path = found[0] if found else None
    if kubeconfig_path is None:
        proc.kill()
        stderr = proc.communicate(timeout=10)[1]
        if "ModuleNotFoundError: No module named 'pytest_istiolab.embedded." in stderr:
            pytest.skip("the embedded cluster is not complete yet: " + stderr.splitlines()[-1])
        pytest.fail(f"the embedded cluster did not start:\n{stderr[-2000:]}")
    yield kubeconfig_path
    proc.terminate()
    proc.communicate(timeout=15)


def test_existing_provider_against_an_embedded_cluster(embedded_cluster: Path) -> None:
    handle = ExistingProvider("embedded", embedded_cluster).start()
    assert handle.context == "embedded" and handle.extra["server_version"].startswith("v1.")
    assert handle.description.startswith("existing context embedded (server http")
