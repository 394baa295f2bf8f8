"""kind clusters: create an ephemeral one (or reuse a named one) with the ``kind`` CLI.

What this does: checks that ``kind`` and ``docker`` are installed and the Docker engine answers
(a :class:`UsageError` saying what to install, before anything starts); creates
``istiolab-<random>`` (or ``--istio-kind-name``) with ``kind create cluster --wait``, writing its
kubeconfig into the run's workdir so the user's ``~/.kube/config`` is never touched; or, when the
named cluster already exists, exports its kubeconfig with ``kind get kubeconfig`` and never
deletes it. ``stop()`` deletes what it created unless ``keep`` is set.

Not done here: the node address for NodePorts (``node_address`` stays None: on a Linux runner the
node's ``InternalIP`` read through the API is the kind node container's address, the same code
path as an existing cluster), multi-node configs, and loading local images into the nodes.

Under xdist one cluster serves the whole run: the controller process starts the provider and
hands the :class:`ClusterHandle` to the workers with :func:`handle_to_json` /
:func:`handle_from_json` (or :func:`write_handle` / :func:`read_handle` through a file).
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import shutil
import subprocess
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from pytest_istiolab.cluster.providers.base import ClusterHandle
from pytest_istiolab.errors import ClusterError, UsageError

INSTALL_KIND = ("install kind (https://kind.sigs.k8s.io/docs/user/quick-start/#installation, "
                "e.g. `go install sigs.k8s.io/kind@v0.27.0`) and put it on PATH")
INSTALL_DOCKER = ("install Docker (https://docs.docker.com/engine/install/) and start it; "
                  "or run without a cluster (--istio-cluster=embedded) or against an existing "
                  "one (--istio-cluster=existing --istio-context NAME)")
NAME_PREFIX = "istiolab-"


@dataclass(frozen=True)
class KindTimeouts:
    """Seconds each kind/docker call may take (create pulls the node image on first use)."""

    create: float = 600.0
    query: float = 30.0
    delete: float = 300.0
    docker_info: float = 20.0


class KindProvider:
    """A kind cluster for one test run. ``keep`` may be changed before ``stop()``."""

    name = "kind"

    def __init__(self, workdir: Path, *, cluster_name: str | None = None,
                 image: str | None = None, keep: bool = False, kind_binary: str = "kind",
                 docker_binary: str = "docker", wait: str = "120s",
                 timeouts: KindTimeouts | None = None) -> None:
        self.workdir, self.cluster_name, self.image, self.keep = workdir, cluster_name, image, keep
        self.kind_binary, self.docker_binary, self.wait = kind_binary, docker_binary, wait
        self.timeouts = timeouts or KindTimeouts()
        self._kind: str | None = None
        self._created: str | None = None     # the cluster this provider made (deleted at stop)

    # ------------------------------------------------------------------ checks
    def preflight(self) -> None:
        """Fail fast, before anything starts, if kind or a working Docker is missing."""
        kind = shutil.which(self.kind_binary)
        if kind is None:
            raise UsageError(f"--istio-cluster=kind needs the `{self.kind_binary}` CLI, which "
                             "is not on PATH", INSTALL_KIND)
        docker = shutil.which(self.docker_binary)
        if docker is None:
            raise UsageError(f"--istio-cluster=kind needs `{self.docker_binary}` (kind runs "
                             "Kubernetes nodes as Docker containers), which is not on PATH",
                             INSTALL_DOCKER)
        done = self._exec([docker, "info", "--format", "{{.ServerVersion}}"],
                          self.timeouts.docker_info)
        if done.returncode != 0:
            raise UsageError(f"docker is installed but its engine does not answer: "
                             f"{_tail(done)}", INSTALL_DOCKER)
        self._kind = kind

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> ClusterHandle:
        self.preflight()
        self.workdir.mkdir(parents=True, exist_ok=True)
        kubeconfig = self.workdir / "kubeconfig"
        name = self.cluster_name
        if name and name in self.existing_clusters():
            self._export_kubeconfig(name, kubeconfig)
            how = "reused; not deleted at session end"
        else:
            name = name or NAME_PREFIX + secrets.token_hex(4)
            self._create(name, kubeconfig)
            how = "kept after the session" if self.keep else "deleted at session end"
        return ClusterHandle(
            kubeconfig=kubeconfig, context=f"kind-{name}", provider=self.name,
            description=f"kind cluster {name} ({how})",
            extra={"cluster_name": name, "created": str(self._created == name).lower(),
                   "image": self.image or "kind's default node image"})

    def stop(self) -> None:
        """Delete the cluster this provider created, unless kept; reused clusters stay."""
        name, self._created = self._created, None
        if name is None or self.keep:
            return
        self._kind_call(["delete", "cluster", "--name", name, "--kubeconfig",
                         str(self.workdir / "kubeconfig")], self.timeouts.delete,
                        fix=f"delete it by hand: kind delete cluster --name {name}")

    # ------------------------------------------------------------------ kind calls
    def existing_clusters(self) -> list[str]:
        done = self._kind_call(["get", "clusters"], self.timeouts.query,
                               fix="check that Docker is running and `kind get clusters` works")
        return [line.strip() for line in done.stdout.splitlines() if line.strip()]

    def _create(self, name: str, kubeconfig: Path) -> None:
        argv = ["create", "cluster", "--name", name, "--wait", self.wait,
                "--kubeconfig", str(kubeconfig)]
        if self.image:
            argv += ["--image", self.image]
        self._created = name       # from here on a failure may leave containers: stop() cleans
        try:
            self._kind_call(argv, self.timeouts.create,
                            fix="check Docker's disk space and network (the node image is pulled "
                                "on first use), or choose another --istio-kind-image")
        except ClusterError as failure:
            try:
                self.stop()
            except ClusterError as cleanup:
                failure.add_note(f"cleanup after the failure also failed: {cleanup}")
            raise

    def _export_kubeconfig(self, name: str, kubeconfig: Path) -> None:
        done = self._kind_call(["get", "kubeconfig", "--name", name], self.timeouts.query,
                               fix=f"check the cluster with `kind get kubeconfig --name {name}`")
        fd = os.open(kubeconfig, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(done.stdout)

    def _kind_call(self, argv: list[str], timeout: float,
                   fix: str) -> subprocess.CompletedProcess[str]:
        kind = self._kind or shutil.which(self.kind_binary) or self.kind_binary
        done = self._exec([kind, *argv], timeout)
        if done.returncode != 0:
            raise ClusterError(f"`kind {shlex.join(argv)}` failed (exit {done.returncode}):\n"
                               f"{_tail(done)}", fix)
        return done

    @staticmethod
    def _exec(argv: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
        shown = shlex.join([Path(argv[0]).name, *argv[1:]])
        try:
            return subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                                  check=False, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as exc:
            raise ClusterError(f"`{shown}` did not finish within {timeout:.0f} s",
                               "check that Docker is responsive (`docker ps`)") from exc
        except OSError as exc:
            raise ClusterError(f"`{shown}` could not be run: {exc}",
                               "check the executable on PATH") from exc


def _tail(done: subprocess.CompletedProcess[str], lines: int = 15) -> str:
    text = (done.stderr or "") + (done.stdout or "")
    return "\n".join(text.strip().splitlines()[-lines:]) or "(no output)"


# ---------------------------------------------------------------------- sharing across workers
def handle_to_json(handle: ClusterHandle) -> str:
    """A handle as JSON (paths as strings), to hand from the xdist controller to its workers."""
    data = asdict(handle)
    for key in ("kubeconfig", "istioctl"):
        data[key] = str(data[key]) if data[key] is not None else None
    return json.dumps(data, sort_keys=True)


def handle_from_json(text: str) -> ClusterHandle:
    data = json.loads(text)
    return ClusterHandle(
        kubeconfig=Path(data["kubeconfig"]), context=data.get("context"),
        provider=data["provider"], description=data["description"],
        istioctl=Path(data["istioctl"]) if data.get("istioctl") else None,
        node_address=data.get("node_address"), extra=dict(data.get("extra") or {}))


def write_handle(path: Path, handle: ClusterHandle) -> None:
    """Write atomically: readers never see half a handle."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".handle-")
    with os.fdopen(fd, "w") as out:
        out.write(handle_to_json(handle))
    os.replace(tmp, path)


def read_handle(path: Path) -> ClusterHandle:
    try:
        return handle_from_json(path.read_text())
    except (OSError, ValueError, KeyError) as exc:
        raise ClusterError(f"the cluster handle {path} could not be read: {exc}",
                           "the xdist controller writes it at session start; rerun") from exc
