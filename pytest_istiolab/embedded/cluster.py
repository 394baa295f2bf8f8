"""The embedded cluster's Python facade: start, stop, kubeconfig, istioctl.

This is the only object the rest of pytest-istiolab touches, and it only hands out what a
real cluster provider hands out: a kubeconfig path and an ``istioctl`` executable. Test-only
controls (seed, clock) live here too, never inside the Kubernetes API paths.
"""

from __future__ import annotations

import os
import secrets
import stat
import sys
import tempfile
from pathlib import Path

import yaml

from .install.releases import DEFAULT_VERSION, MODELLED_VERSIONS, release
from .realism import Realism
from .runtime import Runtime
from .store import Store

CONTEXT_NAME = "embedded"


class EmbeddedCluster:
    """A Kubernetes API server plus a model of the Istio 1.26 data plane, on 127.0.0.1."""

    def __init__(self, workdir: Path | None = None, seed: int | None = None, port: int = 0,
                 realism: bool | Realism = False, istio_version: str = DEFAULT_VERSION) -> None:
        """``realism``: the realism profile (:mod:`.realism`), on with its defaults for True;
        ``istio_version``: the release ``bin/istioctl`` installs."""
        release(istio_version)  # UnknownRelease (a ValueError) names the modelled ones
        self.istio_version = istio_version
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="istiolab-embedded-"))
        self.seed = seed if seed is not None else secrets.randbelow(2**31)
        self._port = port
        profile = realism if isinstance(realism, Realism) else \
            Realism(seed=self.seed) if realism else None
        self.runtime = Runtime(Store(), self.seed, realism=profile)
        self.url = ""
        self._parts: list[object] = []

    # ----------------------------------------------------------- lifecycle
    def start(self) -> EmbeddedCluster:
        from .api import ApiServer
        from .controllers import Controllers, bootstrap
        from .listeners import ListenerManager
        from .tools import reads_stdin, run_in_container

        try:  # each part is remembered before it starts: a failure or Ctrl-C stops what ran
            bootstrap(self.runtime)
            controllers = Controllers(self.runtime)
            self._parts.append(controllers)
            controllers.start()
            listeners = ListenerManager(self.runtime)
            self._parts.append(listeners)
            listeners.start()
            server = ApiServer(self.runtime, exec_handler=run_in_container, port=self._port,
                               reads_stdin=reads_stdin)
            self._parts.append(server)
            self.url = server.start()
            self._write_kubeconfig()
            self._write_istioctl()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        self.runtime.later.stop()
        while self._parts:
            part = self._parts.pop()
            part.stop()  # type: ignore[attr-defined]

    def __enter__(self) -> EmbeddedCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------- test-only controls
    @staticmethod
    def break_tls(fault: str) -> None:
        """Break the gateways' TLS on purpose, process-wide (self-checks prove the lab tests
        go red): ``ignore-sni``, ``stale-certificate`` or ``optional-client-certificate``
        (see :mod:`.tls`). :meth:`repair_tls` undoes every fault."""
        from . import tls

        if fault not in tls.KNOWN_FAULTS:
            raise ValueError(f"unknown TLS fault {fault!r}; known: {', '.join(tls.KNOWN_FAULTS)}")
        tls.FAULTS.add(fault)

    @staticmethod
    def repair_tls() -> None:
        from . import tls

        tls.FAULTS.clear()

    # ------------------------------------------------------------ outputs
    @property
    def kubeconfig(self) -> Path:
        return self.workdir / "kubeconfig"

    @property
    def bin_dir(self) -> Path:
        return self.workdir / "bin"

    @property
    def istioctl(self) -> Path:
        """The istioctl of ``istio_version`` (what ``istioctl install`` installs)."""
        return self.bin_dir / "istioctl"

    def istioctl_of(self, version: str) -> Path:
        """``bin/istioctl-<version>``: the istioctl of another modelled release, as a platform
        team keeps one binary per release for an upgrade."""
        release(version)
        return self.bin_dir / f"istioctl-{version}"

    def _write_kubeconfig(self) -> None:
        config = {
            "apiVersion": "v1", "kind": "Config", "current-context": CONTEXT_NAME,
            "clusters": [{"name": CONTEXT_NAME, "cluster": {"server": self.url}}],
            "users": [{"name": CONTEXT_NAME, "user": {"token": "embedded-admin"}}],
            "contexts": [{"name": CONTEXT_NAME,
                          "context": {"cluster": CONTEXT_NAME, "user": CONTEXT_NAME}}],
            "preferences": {},
        }
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.kubeconfig.write_text(yaml.safe_dump(config, sort_keys=False))

    def _write_istioctl(self) -> None:
        """Console programs that speak istioctl's CLI against this cluster's API only: one
        per modelled release, and ``istioctl`` for the cluster's own."""
        self.bin_dir.mkdir(parents=True, exist_ok=True)
        for version in MODELLED_VERSIONS:
            self._write_wrapper(self.istioctl_of(version), version)
        self._write_wrapper(self.istioctl, self.istio_version)

    def _write_wrapper(self, path: Path, version: str) -> None:
        script = (f"#!/bin/sh\nexec {sys.executable} -m pytest_istiolab.embedded.istioctl "
                  f"--istiolab-default-kubeconfig {self.kubeconfig} "
                  f'--istiolab-client-version {version} "$@"\n')
        path.write_text(script)
        mode = path.stat().st_mode
        os.chmod(path, mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
