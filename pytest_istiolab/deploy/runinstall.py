"""One install per run: the processes of a run (xdist workers) agree on who installs Istio.

Under xdist on a shared cluster (kind, or an existing context: several workers, one API
server) every worker sets up the ``istio`` fixture. Left alone, each would find no istiod and
run ``istioctl x precheck`` and ``istioctl install`` at the same time, and with
``--istio-install=always`` each would reinstall the mesh under the others' tests. Instead:

* find-then-install holds an exclusive lock (:class:`MeshLock`, keyed by the cluster's
  server, its context and the run id, the same on every worker);
* the process that installs records it in the run's directory (``Settings.run_dir``, shared
  by every process of the run), with what the pre-check and the install printed;
* a process that takes the lock later finds the record and uses that installation: it is
  "installed by the run", Lab 1's install checks read the recorded output, and mesh-wide
  changes reinstall the way the run installed. ``always`` means once per run.

The record is keyed by the cluster (server and context): under xdist on the embedded cluster
each worker has a cluster of its own and installs on it. A failed pre-check or install is
recorded too, so the other workers fail at once with its error rather than each trying again.
The controller removes the records at the end (:func:`forget`).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path
from typing import Any

from pytest_istiolab.cluster import ClusterSession
from pytest_istiolab.deploy.installation import (
    FoundIstio,
    IstioInstallation,
    find_istio,
    install_istio,
    tested_as_is,
)
from pytest_istiolab.deploy.meshwide import MeshLock
from pytest_istiolab.errors import ClusterError, IstioLabError

RECORD_PREFIX = "istio-installed-"


class RunInstall:
    """The run's one install of Istio on one cluster (see the module docstring)."""

    def __init__(self, session: ClusterSession) -> None:
        settings = session.settings
        cluster = f"{session.kube.server}|{session.handle.context}"
        digest = hashlib.sha256(cluster.encode()).hexdigest()[:16]
        self.session = session
        self.path = settings.run_dir / f"{RECORD_PREFIX}{digest}.json"
        self.lock = MeshLock(f"{cluster}|{settings.run_id}|install")
        self.worker = settings.worker or "the run's only process"

    def ensure(self, profile: str) -> IstioInstallation:
        """The mesh under test: installed by this process, by another of the run, or found."""
        with self.lock.exclusive():
            recorded = self._read()
            if recorded is not None:
                installation = self._replay(recorded)
            else:
                found = find_istio(self.session.kube)
                installation = tested_as_is(self.session, profile, found) or \
                    self._install(profile, found)
            installation.wait_ready()
        return installation

    def _install(self, profile: str, found: FoundIstio) -> IstioInstallation:
        try:
            installed = install_istio(self.session, profile, found)
        except IstioLabError as err:
            self._write({"worker": self.worker, "cause": err.cause, "fix": err.fix})
            raise
        assert installed.precheck is not None and installed.install is not None
        self._write({"worker": self.worker, "profile": profile, "found": found.image,
                     "precheck": _completed(installed.precheck),
                     "install": _completed(installed.install)})
        return installed

    def _replay(self, recorded: dict[str, Any]) -> IstioInstallation:
        if "cause" in recorded:
            raise ClusterError(f"the run's Istio install ({recorded['worker']}) failed: "
                               f"{recorded['cause']}", recorded.get("fix"))
        return IstioInstallation(self.session, str(recorded["profile"]),
                                 _process(recorded["precheck"]), _process(recorded["install"]),
                                 FoundIstio(recorded.get("found")))

    def _read(self) -> dict[str, Any] | None:
        try:
            return dict(json.loads(self.path.read_text()))
        except FileNotFoundError:
            return None

    def _write(self, record: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text(json.dumps(record))
        partial.replace(self.path)


def forget(run_dir: Path) -> None:
    """Remove the run's install records (the controller, at the end of the run)."""
    for record in run_dir.glob(f"{RECORD_PREFIX}*.json"):
        record.unlink(missing_ok=True)


def _completed(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    args = result.args if isinstance(result.args, list) else [str(result.args)]
    return {"args": [str(a) for a in args], "returncode": result.returncode,
            "stdout": result.stdout or "", "stderr": result.stderr or ""}


def _process(recorded: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    return subprocess.CompletedProcess(recorded["args"], int(recorded["returncode"]),
                                       str(recorded["stdout"]), str(recorded["stderr"]))
