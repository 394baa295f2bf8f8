"""Mesh-wide changes (mesh config, reinstall with another profile): serialized and restored.

Labs 3.4 (REGISTRY_ONLY), 7 (mesh-wide STRICT mTLS) and 9.1 (JSON access logs) change state
that every other test sees. Such a change (a reinstall, a mesh-config edit, or a policy in the
root namespace such as PeerAuthentication ``default`` in ``istio-system``):

* holds the run's mesh lock exclusively, while every other lab test holds it shared, so on a
  shared cluster (kind under xdist, an existing context) no test runs against a half-changed
  mesh (``fcntl.flock`` on a file named after the cluster);
* records what it changes first, and is undone at the end whatever the outcome;
* after a reinstall (and after its undoing) waits until istiod and the gateways have rolled
  out (no old pod left serving), and counts the change in a file beside the lock, so every
  process of the run reads the facts it cached about the gateways again (a reinstall that
  drops the demo profile's ``tcp``/``tls`` ports and brings them back gives them new
  NodePorts) before its next lab test: :meth:`MeshLock.news`.

When the run installed Istio itself, a change is made the way the manual makes it
(``istioctl install --set ...``) and undone by reinstalling the run's profile. On a
revision-based mesh (the labs' namespaces injected by ``istiod-<rev>``) both reinstalls add
``--set revision=<rev>``, so they change that control plane instead of installing a default
revision beside it; the revision tags stay as they are. On a mesh that
was installed before the run, the suite never reinstalls: the same mesh-config change is made
by editing the ``istio`` ConfigMap (istiod watches it), and the ConfigMap is written back
exactly as it was.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import yaml

from pytest_istiolab.deploy.installation import ISTIO_NAMESPACE, IstioInstallation
from pytest_istiolab.errors import IstioctlError
from pytest_istiolab.kube import ObjectRef

MESH_CONFIG_PREFIX = "meshConfig."


class MeshLock:
    """A reader-writer lock over one cluster's mesh, shared by every process of a run."""

    def __init__(self, key: str) -> None:
        digest = hashlib.sha256(key.encode()).hexdigest()[:16]
        name = f"pytest-istiolab-{os.getuid()}-mesh-{digest}.lock"
        self.path = Path(tempfile.gettempdir()) / name
        self.changes_path = self.path.with_name(self.path.name + ".changes")
        self._file: IO[str] | None = None
        self._exclusive = 0
        self._seen = self.changes()

    def changes(self) -> int:
        """How many mesh-wide reinstalls the run's processes have counted on this cluster."""
        try:
            return int(self.changes_path.read_text() or 0)
        except (OSError, ValueError):
            return 0

    def count_change(self) -> None:
        """Count a reinstall (call it holding the lock exclusively)."""
        self.changes_path.write_text(str(self.changes() + 1))
        self._seen = self.changes()

    def news(self) -> bool:
        """Whether another process counted a change since this one last asked (or counted)."""
        now = self.changes()
        fresh, self._seen = now != self._seen, now
        return fresh

    @contextmanager
    def shared(self) -> Iterator[None]:
        if self._exclusive:
            yield  # this process is the writer already
            return
        handle = self._open()
        fcntl.flock(handle, fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        handle = self._open()
        if not self._exclusive:
            fcntl.flock(handle, fcntl.LOCK_EX)
        self._exclusive += 1
        try:
            yield
        finally:
            self._exclusive -= 1
            if not self._exclusive:
                fcntl.flock(handle, fcntl.LOCK_UN)

    @contextmanager
    def try_exclusive(self) -> Iterator[bool]:
        """The lock exclusively if no other process holds it (True), else at once False."""
        handle = self._open()
        if not self._exclusive:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
        self._exclusive += 1
        try:
            yield True
        finally:
            self._exclusive -= 1
            if not self._exclusive:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _open(self) -> IO[str]:
        if self._file is None:
            self._file = open(self.path, "a+")  # noqa: SIM115 - held for the process lifetime
        return self._file


class MeshWide:
    """Makes mesh-wide changes and undoes them (see the module docstring)."""

    def __init__(self, installation: IstioInstallation,
                 on_reinstall: Callable[[], None] | None = None) -> None:
        self.installation = installation
        self.session = installation.session
        self.on_reinstall = on_reinstall  # e.g. MeshLock.count_change: tell the other workers
        self._saved_configmap: dict[str, Any] | None = None
        self._cm_name = "istio"  # the mesh ConfigMap: istio-<rev> on a revision-based mesh
        self._reinstalled = False
        self._saved_policies: dict[tuple[str, str, str], dict[str, Any] | None] = {}

    @property
    def may_reinstall(self) -> bool:
        return self.installation.installed_by_run

    def reinstall(self, profile: str, sets: dict[str, str] | None = None
                  ) -> subprocess.CompletedProcess[str] | None:
        """``istioctl install --set profile=P --set k=v -y`` (the manual's way).

        On a mesh the run did not install, only the ``meshConfig.*`` settings are applied
        (through the ConfigMap) and None is returned: the suite never reinstalls a mesh it
        did not install.
        """
        self._save_configmap()
        if not self.may_reinstall:
            self.set_mesh_config({k[len(MESH_CONFIG_PREFIX):]: v for k, v in (sets or {}).items()
                                  if k.startswith(MESH_CONFIG_PREFIX)})
            return None
        self._reinstalled = True
        revision = self.installation.control_plane().install_sets
        try:
            return self.session.istioctl.install(profile, {**revision, **(sets or {})})
        finally:
            self._after_reinstall()

    def set_mesh_config(self, values: dict[str, str]) -> None:
        """Set dotted mesh-config paths (``outboundTrafficPolicy.mode``) in the ConfigMap."""
        self._save_configmap()
        cm = self._configmap()
        mesh = yaml.safe_load(cm["data"].get("mesh") or "") or {}
        for path, value in values.items():
            _set_path(mesh, path.split("."), _scalar(value))
        self._write_mesh(yaml.safe_dump(mesh, sort_keys=False))

    def apply_policy(self, doc: dict[str, Any]) -> None:
        """Apply a mesh-wide policy into the root namespace (``kubectl apply -n istio-system``).

        The object it replaces (or its absence) is recorded first and put back by :meth:`restore`.
        """
        key = (str(doc["apiVersion"]), str(doc["kind"]), str(doc["metadata"]["name"]))
        if key not in self._saved_policies:
            self._saved_policies[key] = self._current_policy(*key)
        self.session.kube.apply([doc], namespace=ISTIO_NAMESPACE)

    def remove_policy(self, api_version: str, kind: str, name: str) -> None:
        """Delete a mesh-wide policy (recorded first, like :meth:`apply_policy`)."""
        key = (api_version, kind, name)
        if key not in self._saved_policies:
            self._saved_policies[key] = self._current_policy(*key)
        self.session.kube.delete_all([ObjectRef(api_version, kind, name, ISTIO_NAMESPACE)])

    def _current_policy(self, api_version: str, kind: str, name: str) -> dict[str, Any] | None:
        found = self.session.kube.get(api_version, kind, name, ISTIO_NAMESPACE)
        if found is None:
            return None
        meta = found.get("metadata") or {}
        return {"apiVersion": api_version, "kind": kind,
                "metadata": {"name": name, "namespace": ISTIO_NAMESPACE,
                             "labels": meta.get("labels") or {},
                             "annotations": meta.get("annotations") or {}},
                "spec": found.get("spec") or {}}

    def _restore_policies(self) -> None:
        for (api_version, kind, name), saved in reversed(list(self._saved_policies.items())):
            if saved is None:
                self.session.kube.delete_all(
                    [ObjectRef(api_version, kind, name, ISTIO_NAMESPACE)])
            else:
                self.session.kube.apply([saved], namespace=ISTIO_NAMESPACE)
        self._saved_policies = {}

    def restore(self) -> None:
        """Undo everything: the root-namespace policies, the run's profile, the ConfigMap."""
        self._restore_policies()
        if self._reinstalled:
            try:
                self.session.istioctl.install(self.installation.profile,
                                              self.installation.control_plane().install_sets)
            finally:
                self._after_reinstall()
            self._reinstalled = False
        if self._saved_configmap is not None:
            saved = self._saved_configmap.get("mesh")
            if (self._configmap()["data"].get("mesh")) != saved:
                self._write_mesh(saved or "")
            self._saved_configmap = None

    # ------------------------------------------------------------------ helpers
    def _after_reinstall(self) -> None:
        """The other processes are told (even after a failed install: it may have changed
        things), then the rollouts are waited for."""
        if self.on_reinstall is not None:
            self.on_reinstall()
        self.installation.wait_rolled_out()

    def _configmap(self) -> dict[str, Any]:
        self._cm_name = self.installation.control_plane().mesh_configmap
        cm = self.session.kube.get("v1", "ConfigMap", self._cm_name, ISTIO_NAMESPACE)
        if cm is None:
            raise IstioctlError(f"the {self._cm_name} ConfigMap (mesh config) is missing in "
                                f"{ISTIO_NAMESPACE}",
                                "install Istio, or check --istio-context points at the mesh")
        cm.setdefault("data", {})
        return cm

    def _save_configmap(self) -> None:
        if self._saved_configmap is None:
            self._saved_configmap = dict(self._configmap()["data"])

    def _write_mesh(self, text: str) -> None:
        self.session.kube.apply([{"apiVersion": "v1", "kind": "ConfigMap",
                                  "metadata": {"name": self._cm_name,
                                               "namespace": ISTIO_NAMESPACE},
                                  "data": {"mesh": text}}])


def _set_path(tree: dict[str, Any], path: list[str], value: Any) -> None:
    for key in path[:-1]:
        tree = tree.setdefault(key, {})
    tree[path[-1]] = value


def _scalar(value: str) -> Any:
    return yaml.safe_load(value) if value.lower() in ("true", "false") or value.isdigit() else value
