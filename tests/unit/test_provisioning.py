"""istioctl provisioning (L1-C01) against a loopback release server: checksum, 404, interrupts,
concurrent workers, PATH matching, offline mode."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import tarfile
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from pytest_istiolab.errors import IstioctlError
from pytest_istiolab.istioctl import provision_istioctl, provisioning

VERSION = "1.26.0"
ARCHIVE = f"istio-{VERSION}-linux-amd64.tar.gz"


def fake_istioctl(version: str) -> bytes:
    return f'#!/bin/sh\necho "client version: {version}"\n'.encode()


def release_tarball(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o755
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@dataclass
class Route:
    body: bytes
    status: int = 200
    truncate: bool = False   # announce the full length, send half, close


@dataclass
class ReleaseServer:
    url: str
    routes: dict[str, Route] = field(default_factory=dict)
    hits: Counter[str] = field(default_factory=Counter)

    def publish(self, version: str, filename: str, data: bytes, sha: str | None = None) -> None:
        self.routes[f"/{version}/{filename}"] = Route(data)
        digest = sha or hashlib.sha256(data).hexdigest()
        self.routes[f"/{version}/{filename}.sha256"] = Route(f"{digest}  {filename}\n".encode())


@pytest.fixture
def server() -> Iterator[ReleaseServer]:
    state = ReleaseServer(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            state.hits[self.path] += 1
            route = state.routes.get(self.path, Route(b"Not Found", 404))
            self.send_response(route.status)
            self.send_header("Content-Length", str(len(route.body)))
            self.end_headers()
            if route.truncate:
                self.wfile.write(route.body[: len(route.body) // 2])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(route.body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield state
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def no_istioctl_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    monkeypatch.setenv("PATH", str(bindir))
    return bindir


def on_linux(version: str, cache: Path, **kw: Any) -> Path:
    """provision_istioctl as seen from a linux/amd64 machine."""
    return provision_istioctl(version, cache_dir=cache, os_name="linux", arch="x86_64", **kw)


def provision(server: ReleaseServer, cache: Path, **kw: Any) -> Path:
    return on_linux(VERSION, cache, base_url=server.url, **kw)


def cache_files(cache: Path) -> list[str]:
    return sorted(str(p.relative_to(cache)) for p in cache.rglob("*"))


@pytest.fixture
def release(server: ReleaseServer) -> bytes:
    data = release_tarball({f"istio-{VERSION}/samples/x.yaml": b"kind: List\n",
                            f"istio-{VERSION}/bin/istioctl": fake_istioctl(VERSION)})
    server.publish(VERSION, ARCHIVE, data)
    return data


# ----------------------------------------------------------------------- naming
@pytest.mark.parametrize(("os_name", "arch", "expected"), [
    ("Linux", "x86_64", ("linux", "amd64")), ("linux", "aarch64", ("linux", "arm64")),
    ("Darwin", "arm64", ("osx", "arm64")), ("Darwin", "x86_64", ("osx", "amd64")),
])
def test_platform_tags_use_istio_release_names(os_name: str, arch: str,
                                               expected: tuple[str, str]) -> None:
    assert provisioning.platform_tag(os_name, arch) == expected


def test_unsupported_platform_is_refused_with_the_fix() -> None:
    with pytest.raises(IstioctlError, match="(?s)no istioctl for windows/x86_64.*--istio-istioctl"):
        provisioning.platform_tag("Windows", "x86_64")


def test_asset_urls_follow_github_layout_or_a_flat_mirror_template() -> None:
    name = provisioning.archive_name(VERSION, "linux", "amd64")
    assert provisioning.asset_url(provisioning.DEFAULT_RELEASE_URL + "/", VERSION, name) == (
        "https://github.com/istio/istio/releases/download/1.26.0/istio-1.26.0-linux-amd64.tar.gz")
    mirror = "https://chengzhstor.blob.core.windows.net/k8slab/{file}"
    assert provisioning.asset_url(mirror, VERSION, name).endswith("/k8slab/" + ARCHIVE)
    assert provisioning.archive_name(VERSION, "osx", "arm64", "istioctl") == (
        "istioctl-1.26.0-osx-arm64.tar.gz")


def test_default_cache_dir_honours_xdg_cache_home(monkeypatch: pytest.MonkeyPatch,
                                                  tmp_path: Path) -> None:
    monkeypatch.delenv(provisioning.ENV_CACHE_DIR, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert provisioning.default_cache_dir() == tmp_path / "pytest-istiolab" / "istioctl"


# ----------------------------------------------------------------------- download
@pytest.mark.usefixtures("no_istioctl_on_path")
def test_download_verifies_unpacks_only_istioctl_and_caches(
        server: ReleaseServer, release: bytes, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    path = provision(server, cache)
    assert path == cache / VERSION / "linux-amd64" / "istioctl"
    assert os.access(path, os.X_OK)
    assert subprocess.run([path, "version", "--remote=false"], capture_output=True,
                          text=True, check=True).stdout == f"client version: {VERSION}\n"
    assert cache_files(cache) == [".lock", VERSION, f"{VERSION}/linux-amd64",
                                  f"{VERSION}/linux-amd64/istioctl"]
    assert provision(server, cache) == path                 # second call: from the cache
    assert server.hits[f"/{VERSION}/{ARCHIVE}"] == 1


@pytest.mark.usefixtures("no_istioctl_on_path")
def test_standalone_istioctl_archive(server: ReleaseServer, tmp_path: Path) -> None:
    name = f"istioctl-{VERSION}-linux-amd64.tar.gz"
    server.publish(VERSION, name, release_tarball({"istioctl": fake_istioctl(VERSION)}))
    path = provision(server, tmp_path / "c", kind="istioctl")
    assert path.read_bytes() == fake_istioctl(VERSION)


@pytest.mark.usefixtures("no_istioctl_on_path")
def test_bad_checksum_names_both_digests_and_the_url_and_caches_nothing(
        server: ReleaseServer, release: bytes, tmp_path: Path) -> None:
    server.publish(VERSION, ARCHIVE, release, sha="0" * 64)
    cache = tmp_path / "cache"
    with pytest.raises(IstioctlError) as err:
        provision(server, cache)
    message = str(err.value)
    assert f"expected sha256 {'0' * 64}" in message
    assert hashlib.sha256(release).hexdigest() in message
    assert f"{server.url}/{VERSION}/{ARCHIVE}" in message
    assert not cache.exists()  # nothing left, not even the lock file


@pytest.mark.usefixtures("no_istioctl_on_path")
def test_pinned_digest_replaces_the_published_one(server: ReleaseServer, release: bytes,
                                                  tmp_path: Path) -> None:
    del server.routes[f"/{VERSION}/{ARCHIVE}.sha256"]           # a mirror without .sha256
    with pytest.raises(IstioctlError, match="no sha256 published"):
        provision(server, tmp_path / "a")
    pinned = hashlib.sha256(release).hexdigest()
    assert provision(server, tmp_path / "b", sha256=pinned).is_file()


@pytest.mark.usefixtures("no_istioctl_on_path")
def test_unknown_version_404_says_so_and_where_to_look(server: ReleaseServer,
                                                       tmp_path: Path) -> None:
    with pytest.raises(IstioctlError) as err:
        on_linux("1.99.7", tmp_path / "c", base_url=server.url)
    assert str(err.value).startswith(
        f"Istio 1.99.7 has no release at {server.url}/1.99.7/istio-1.99.7-linux-amd64.tar.gz "
        "(is the version right? available versions: see https://github.com/istio/istio/releases)")
    assert not (tmp_path / "c").exists()  # nothing left, not even the lock file


@pytest.mark.usefixtures("no_istioctl_on_path")
def test_interrupted_download_fails_and_leaves_nothing(server: ReleaseServer, release: bytes,
                                                       tmp_path: Path) -> None:
    server.routes[f"/{VERSION}/{ARCHIVE}"].truncate = True
    cache = tmp_path / "cache"
    with pytest.raises(IstioctlError, match="downloading .* failed"):
        provision(server, cache)
    assert not cache.exists()  # nothing left, not even the lock file


@pytest.mark.usefixtures("no_istioctl_on_path")
def test_archive_without_istioctl_or_with_a_link_is_refused(server: ReleaseServer,
                                                            tmp_path: Path) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        link = tarfile.TarInfo(f"istio-{VERSION}/bin/istioctl")
        link.type, link.linkname = tarfile.SYMTYPE, "../../../../etc/passwd"
        tar.addfile(link)
    server.publish(VERSION, ARCHIVE, buf.getvalue())
    with pytest.raises(IstioctlError, match="has no regular file istio-1.26.0/bin/istioctl"):
        provision(server, tmp_path / "c")
    assert not (tmp_path / "c").exists()  # nothing left, not even the lock file


# ----------------------------------------------------------------------- concurrency
@pytest.mark.usefixtures("no_istioctl_on_path")
def test_concurrent_workers_download_once(server: ReleaseServer, release: bytes,
                                          tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """All threads miss the cache together (a barrier), then the lock lets one download."""
    workers = 4
    barrier = threading.Barrier(workers, timeout=10)
    seen = threading.local()
    original = provisioning._usable

    def usable_after_everyone_missed(path: Path) -> bool:
        result = original(path)
        if not getattr(seen, "passed", False):
            seen.passed = True
            barrier.wait()
        return result

    monkeypatch.setattr(provisioning, "_usable", usable_after_everyone_missed)
    results: list[Path | BaseException] = []

    def work() -> None:
        try:
            results.append(provision(server, tmp_path / "cache"))
        except BaseException as err:  # noqa: BLE001 - reported by the assertion below
            results.append(err)

    threads = [threading.Thread(target=work) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    assert len(set(results)) == 1 and isinstance(results[0], Path), results
    assert server.hits[f"/{VERSION}/{ARCHIVE}"] == 1


@pytest.mark.usefixtures("no_istioctl_on_path")
def test_concurrent_processes_share_one_download(server: ReleaseServer, release: bytes,
                                                 tmp_path: Path) -> None:
    code = ("import sys; from pathlib import Path; "
            "from pytest_istiolab.istioctl.provisioning import "
            "provision_istioctl as p; print(p(sys.argv[1], cache_dir=Path(sys.argv[2]), "
            "base_url=sys.argv[3], os_name='linux', arch='x86_64'))")
    argv = [sys.executable, "-c", code, VERSION, str(tmp_path / "cache"), server.url]
    procs = [subprocess.Popen(argv, stdout=subprocess.PIPE, text=True) for _ in range(3)]
    outputs = {proc.communicate(timeout=30)[0].strip() for proc in procs}
    assert all(proc.returncode == 0 for proc in procs)
    assert outputs == {str(tmp_path / "cache" / VERSION / "linux-amd64" / "istioctl")}
    assert server.hits[f"/{VERSION}/{ARCHIVE}"] == 1


# ----------------------------------------------------------------------- PATH and offline
def test_matching_istioctl_on_path_is_used_without_network(
        no_istioctl_on_path: Path, tmp_path: Path) -> None:
    on_path = no_istioctl_on_path / "istioctl"
    on_path.write_bytes(fake_istioctl(VERSION))
    on_path.chmod(0o755)
    found = on_linux(VERSION, tmp_path / "c", base_url="http://127.0.0.1:9/unreachable")
    assert found == on_path
    assert not (tmp_path / "c").exists()


def test_mismatched_istioctl_on_path_is_ignored(no_istioctl_on_path: Path, server: ReleaseServer,
                                                release: bytes, tmp_path: Path) -> None:
    on_path = no_istioctl_on_path / "istioctl"
    on_path.write_bytes(fake_istioctl("1.25.3"))
    on_path.chmod(0o755)
    found = provision(server, tmp_path / "c")
    assert found == tmp_path / "c" / VERSION / "linux-amd64" / "istioctl"
    assert not provision(server, tmp_path / "d", path_lookup=False).samefile(on_path)


def test_offline_without_cache_fails_with_the_fix(no_istioctl_on_path: Path,
                                                  tmp_path: Path) -> None:
    on_path = no_istioctl_on_path / "istioctl"
    on_path.write_bytes(fake_istioctl("1.25.3"))
    on_path.chmod(0o755)
    with pytest.raises(IstioctlError) as err:
        on_linux(VERSION, tmp_path / "c", offline=True)
    assert "--istio-offline forbids downloading" in str(err.value)
    assert "the istioctl on PATH reports 1.25.3" in str(err.value)
    assert "fix: run once without --istio-offline" in str(err.value)


@pytest.mark.usefixtures("no_istioctl_on_path")
def test_offline_uses_the_cache(server: ReleaseServer, release: bytes, tmp_path: Path) -> None:
    path = provision(server, tmp_path / "c")
    assert on_linux(VERSION, tmp_path / "c", offline=True, base_url="http://127.0.0.1:9") == path


def test_client_version_parsing_accepts_short_and_long_forms(tmp_path: Path) -> None:
    for output, expected in [("client version: 1.26.0\n", "1.26.0"), ("1.27.1\n", "1.27.1"),
                             ("no ready Istio pods\n1.26.4\n", "1.26.4"), ("garbage\n", None)]:
        script = tmp_path / "istioctl"
        script.write_text(f"#!/bin/sh\nprintf '{output}'\n")
        script.chmod(0o755)
        assert provisioning.istioctl_client_version(script) == expected
