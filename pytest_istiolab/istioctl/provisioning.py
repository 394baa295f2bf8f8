"""Find or fetch the ``istioctl`` of a given Istio version (catalogue L1-C01, "Download").

Resolution order (the caller checks an explicit ``--istio-istioctl`` first):

1. an ``istioctl`` on ``PATH`` whose client version (``istioctl version --remote=false``) is
   the requested one;
2. the per-user cache, ``$XDG_CACHE_HOME/pytest-istiolab/istioctl/<version>/<os>-<arch>/istioctl``
   (``~/.cache/...`` without ``XDG_CACHE_HOME``; ``ISTIOLAB_CACHE_DIR`` overrides the root);
3. a download of the release archive ``{base_url}/{version}/istio-{version}-{os}-{arch}.tar.gz``
   (or the standalone ``istioctl-{version}-{os}-{arch}.tar.gz``), verified against the published
   ``.sha256`` (``"<hex>  <filename>"``) or a pinned digest, of which only ``istioctl`` is
   unpacked (the release's ``samples/`` are not needed: our manifests are ours).

Writes are atomic (a temporary file in the target directory, then ``os.replace``) and serialized
by ``fcntl.flock`` on ``<cache>/.lock``, so several xdist workers asking at once download once.
A failed or interrupted download, or a bad checksum, leaves nothing in the cache (not even
the lock file, when the cache held nothing before).

Not done: Windows (``.zip`` archives, no ``flock``), signature (cosign) verification, and running
the downloaded binary to confirm its version (it may be for another platform).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import platform
import re
import shutil
import stat
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Literal

import httpx

from pytest_istiolab.errors import IstioctlError

DEFAULT_RELEASE_URL = "https://github.com/istio/istio/releases/download"
RELEASES_PAGE = "https://github.com/istio/istio/releases"
ENV_CACHE_DIR = "ISTIOLAB_CACHE_DIR"
VERSION_TIMEOUT = 10.0          # seconds for `istioctl version --remote=false`
DOWNLOAD_TIMEOUT = 60.0         # seconds without progress before a download is abandoned
CONNECT_TIMEOUT = 10.0
ArchiveKind = Literal["release", "istioctl"]

_OS_NAMES = {"linux": "linux", "darwin": "osx", "osx": "osx", "macos": "osx"}
_ARCHES = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64",
           "armv7l": "armv7", "armv7": "armv7"}
_VERSION_LINE = re.compile(r"^\s*(?:client version:\s*)?v?(\d+\.\d+\.\d+\S*)\s*$", re.I | re.M)
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


# ------------------------------------------------------------------ names and places
def platform_tag(os_name: str | None = None, arch: str | None = None) -> tuple[str, str]:
    """Istio's names for an OS and CPU: ("linux" | "osx", "amd64" | "arm64" | "armv7")."""
    raw_os = (os_name or platform.system()).lower()
    raw_arch = (arch or platform.machine()).lower()
    if raw_os not in _OS_NAMES or raw_arch not in _ARCHES:
        raise IstioctlError(
            f"Istio publishes no istioctl for {raw_os}/{raw_arch}",
            "pass --istio-istioctl PATH with an istioctl built for this machine")
    return _OS_NAMES[raw_os], _ARCHES[raw_arch]


def archive_name(version: str, os_name: str, arch: str, kind: ArchiveKind = "release") -> str:
    """The release asset's file name, e.g. ``istio-1.26.0-linux-amd64.tar.gz``."""
    prefix = "istio" if kind == "release" else "istioctl"
    return f"{prefix}-{version}-{os_name}-{arch}.tar.gz"


def asset_url(base_url: str, version: str, filename: str) -> str:
    """``{base}/{version}/{file}`` (GitHub layout), or a template with ``{version}``/``{file}``.

    A flat mirror such as the manual's ``https://chengzhstor.blob.core.windows.net/k8slab/``
    is written ``https://chengzhstor.blob.core.windows.net/k8slab/{file}``.
    """
    if "{file}" in base_url:
        return base_url.format(version=version, file=filename)
    return f"{base_url.rstrip('/')}/{version}/{filename}"


def default_cache_dir() -> Path:
    """The per-user cache root for downloaded istioctl binaries."""
    if os.environ.get(ENV_CACHE_DIR):
        return Path(os.environ[ENV_CACHE_DIR]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "pytest-istiolab" / "istioctl"


def cached_path(version: str, cache_dir: Path, os_name: str, arch: str) -> Path:
    return cache_dir / version / f"{os_name}-{arch}" / "istioctl"


# ------------------------------------------------------------------ PATH and cache
def istioctl_client_version(executable: Path, timeout: float = VERSION_TIMEOUT) -> str | None:
    """The client version an istioctl reports without contacting a cluster (None if it fails)."""
    try:
        done = subprocess.run([str(executable), "version", "--remote=false"], capture_output=True,
                              text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = _VERSION_LINE.search(done.stdout)
    return match.group(1) if done.returncode == 0 and match else None


def find_on_path(version: str) -> tuple[Path | None, str | None]:
    """(the istioctl on PATH if it is ``version``, else None; what the one on PATH reported)."""
    found = shutil.which("istioctl")
    if not found:
        return None, None
    reported = istioctl_client_version(Path(found))
    return (Path(found) if reported == version else None), reported


def _usable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


@contextlib.contextmanager
def cache_lock(cache_dir: Path) -> Iterator[None]:
    """An exclusive lock across processes and threads (one open file description each).

    When the cache holds nothing else at the end (a failed download into a new cache), the
    lock file and the directories this call created are removed while the lock is held; a
    waiter that then holds a removed file notices (another inode, or none) and locks anew.
    """
    created = [d for d in (cache_dir, *cache_dir.parents) if not d.exists()]
    path = cache_dir / ".lock"
    while True:
        cache_dir.mkdir(parents=True, exist_ok=True)
        try:
            handle = open(path, "a+b")  # noqa: SIM115 - closed below, after the unlock
        except FileNotFoundError:  # the directory went away in between: make it again
            continue
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            if os.fstat(handle.fileno()).st_ino == os.stat(path).st_ino:
                break
        except FileNotFoundError:
            pass
        handle.close()
    try:
        yield
    finally:
        try:
            if [p.name for p in cache_dir.iterdir()] == [path.name]:  # nothing was cached
                path.unlink()
                for directory in created:  # innermost first, only if empty
                    directory.rmdir()
        except OSError:
            pass
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
            handle.close()


# ------------------------------------------------------------------ the entry point
def provision_istioctl(
    version: str, *, cache_dir: Path | None = None, base_url: str = DEFAULT_RELEASE_URL,
    offline: bool = False, path_lookup: bool = True, os_name: str | None = None,
    arch: str | None = None, timeout: float = DOWNLOAD_TIMEOUT, sha256: str | None = None,
    kind: ArchiveKind = "release",
) -> Path:
    """An executable ``istioctl`` reporting ``version``: from PATH, the cache, or a download."""
    osn, cpu = platform_tag(os_name, arch)
    reported = None
    if path_lookup:
        on_path, reported = find_on_path(version)
        if on_path is not None:
            return on_path
    root = cache_dir or default_cache_dir()
    target = cached_path(version, root, osn, cpu)
    if _usable(target):
        return target
    if offline:
        raise _offline_error(version, target, reported)
    with cache_lock(root):
        if _usable(target):                 # another worker finished while we waited
            return target
        _download_into_cache(version, target, base_url, osn, cpu, timeout, sha256, kind)
    return target


def _offline_error(version: str, target: Path, reported: str | None) -> IstioctlError:
    seen = f"; the istioctl on PATH reports {reported}" if reported else ""
    return IstioctlError(
        f"istioctl {version} is not on PATH nor cached at {target}{seen}, and --istio-offline "
        "forbids downloading it",
        f"run once without --istio-offline to fill the cache, put istioctl {version} on PATH, "
        "or pass --istio-istioctl PATH")


# ------------------------------------------------------------------ download and unpack
def _download_into_cache(version: str, target: Path, base_url: str, os_name: str, arch: str,
                         timeout: float, sha256: str | None, kind: ArchiveKind) -> None:
    filename = archive_name(version, os_name, arch, kind)
    url = asset_url(base_url, version, filename)
    target.parent.mkdir(parents=True, exist_ok=True)
    limits = httpx.Timeout(timeout, connect=CONNECT_TIMEOUT)
    try:
        with httpx.Client(timeout=limits, follow_redirects=True) as client, \
                tempfile.TemporaryFile(dir=target.parent, prefix=".download-") as archive:
            actual = _fetch(client, url, archive, version)
            expected = sha256.lower() if sha256 else _published_sha256(client, url)
            if actual != expected:
                raise IstioctlError(
                    f"checksum mismatch for {url}: expected sha256 {expected}, got {actual}; "
                    "nothing was cached",
                    "retry (the download may have been corrupted); if it persists the mirror "
                    "serves a different file than Istio published")
            archive.seek(0)
            _unpack_istioctl(archive, version, kind, target, url)
    except BaseException:
        _remove_empty_dirs(target.parent, stop=target.parents[2])
        raise


def _fetch(client: httpx.Client, url: str, sink: IO[bytes], version: str) -> str:
    """Stream ``url`` into ``sink``; return its sha256."""
    digest = hashlib.sha256()
    try:
        with client.stream("GET", url) as response:
            _check_status(response, url, version)
            for chunk in response.iter_bytes(1 << 16):
                sink.write(chunk)
                digest.update(chunk)
    except httpx.HTTPError as err:
        raise IstioctlError(
            f"downloading {url} failed: {type(err).__name__}: {err}",
            "check the network or proxy, use --istio-release-url with a reachable mirror, "
            "or pass --istio-istioctl PATH") from err
    return digest.hexdigest()


def _check_status(response: httpx.Response, url: str, version: str) -> None:
    if response.status_code == 404:
        raise IstioctlError(
            f"Istio {version} has no release at {url} (is the version right? available "
            f"versions: see {RELEASES_PAGE})",
            "pass an existing --istio-version, or --istio-release-url of a mirror that has it")
    if response.status_code >= 400:
        raise IstioctlError(f"HTTP {response.status_code} from {url}",
                            "retry later, or use --istio-release-url with a mirror")


def _published_sha256(client: httpx.Client, archive_url: str) -> str:
    """The hex digest from ``<archive>.sha256`` (format ``"<hex>  <filename>"``)."""
    url = archive_url + ".sha256"
    try:
        response = client.get(url)
    except httpx.HTTPError as err:
        raise IstioctlError(f"downloading {url} failed: {err}",
                            "check the network, or pin the digest (sha256=...)") from err
    fields = response.text.split()
    if response.status_code != 200 or not fields or not _HEX64.match(fields[0].lower()):
        raise IstioctlError(
            f"no sha256 published at {url} (HTTP {response.status_code}); refusing an unverified "
            "istioctl",
            "use a mirror that serves the .sha256 files, or pin the digest Istio published")
    return fields[0].lower()


def _unpack_istioctl(archive: IO[bytes], version: str, kind: ArchiveKind, target: Path,
                     url: str) -> None:
    """Copy only the istioctl member to ``target`` atomically; never write archive paths."""
    wanted = {f"istio-{version}/bin/istioctl"} if kind == "release" else {"istioctl"}
    try:
        with tarfile.open(fileobj=archive, mode="r:gz") as tar:
            member = next((m for m in tar if m.name.removeprefix("./") in wanted), None)
            source = tar.extractfile(member) if member is not None and member.isfile() else None
            if source is None:
                raise IstioctlError(f"{url} has no regular file {' or '.join(sorted(wanted))}",
                                    "check --istio-release-url points at Istio release archives")
            _write_atomically(source, target)
    except (tarfile.TarError, EOFError, OSError) as err:
        raise IstioctlError(f"{url} is not a readable .tar.gz: {err}",
                            "retry, or check --istio-release-url") from err


def _write_atomically(source: IO[bytes], target: Path) -> None:
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=".istioctl-")
    try:
        with os.fdopen(fd, "wb") as out:
            shutil.copyfileobj(source, out, 1 << 20)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp_name, stat.S_IRWXU | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH
                 | stat.S_IXOTH)
        os.replace(tmp_name, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise


def _remove_empty_dirs(path: Path, stop: Path) -> None:
    """Remove ``path`` and its parents up to (not including) ``stop`` while they are empty."""
    while path != stop and stop in path.parents:
        try:
            path.rmdir()
        except OSError:
            return
        path = path.parent
