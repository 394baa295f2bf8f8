"""The embedded API server and controllers on an ephemeral port, with a kubeconfig for it, for
tests that run the embedded ``istioctl`` as its own process (as a user's shell would)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import yaml

from pytest_istiolab.embedded.api import ApiServer
from pytest_istiolab.embedded.controllers import Controllers, bootstrap
from pytest_istiolab.embedded.runtime import ExecResult, Runtime
from pytest_istiolab.embedded.store import Store

REPO = Path(__file__).resolve().parents[2]
ISTIOCTL_TIMEOUT = 60.0  # seconds for one istioctl process


def _no_exec(rt: Runtime, pod: dict, container: str, argv: list[str], stdin: bytes
             ) -> ExecResult:
    return ExecResult(127, b"", b"exec is not part of these tests\n")


@dataclass
class Env:
    runtime: Runtime
    kubeconfig: Path

    def istioctl(self, *argv: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-m", "pytest_istiolab.embedded.istioctl",
               "--istiolab-default-kubeconfig", str(self.kubeconfig), *argv]
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        env.pop("KUBECONFIG", None)
        return subprocess.run(cmd, input=stdin, capture_output=True, text=True, env=env,
                              timeout=ISTIOCTL_TIMEOUT, cwd=REPO)


@contextmanager
def istioctl_env(directory: Path) -> Iterator[Env]:
    """An API server (seed 11) with controllers running; its kubeconfig in ``directory``."""
    runtime = Runtime(Store(), 11)
    bootstrap(runtime)
    controllers = Controllers(runtime).start()
    server = ApiServer(runtime, exec_handler=_no_exec, port=0)
    url = server.start()
    kubeconfig = directory / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "embedded",
        "clusters": [{"name": "embedded", "cluster": {"server": url}}],
        "users": [{"name": "embedded", "user": {"token": "embedded-admin"}}],
        "contexts": [{"name": "embedded", "context": {"cluster": "embedded",
                                                      "user": "embedded"}}]}))
    try:
        yield Env(runtime, kubeconfig)
    finally:
        server.stop()
        controllers.stop()
