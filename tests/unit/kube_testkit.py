"""Shared pieces for the Kube/Ingress tests against the embedded API server.

Store + Runtime + ApiServer built directly (no controllers): pods and Deployments are made by
hand, so readiness is whatever a test writes into status; exec runs a fake handler
(echo, cat, exit N, fail). Test modules import the fixtures (``cluster``, ``kube``) from here.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_istiolab.kube import Kube
from pytest_istiolab.timeouts import Timeouts

api_mod = pytest.importorskip("pytest_istiolab.embedded.api")
from pytest_istiolab.embedded.runtime import ExecResult as RawExec  # noqa: E402
from pytest_istiolab.embedded.runtime import Runtime  # noqa: E402
from pytest_istiolab.embedded.store import Store  # noqa: E402

TIMEOUTS = Timeouts(api_request=5.0, ready=1.5, delete=2.0, exec=5.0, poll_interval=0.02)
NS = "lab"


RELEASE = threading.Event()  # "block" waits for it (at most 5 s)


def fake_exec(rt: Runtime, pod: dict, container: str, argv: list[str], stdin: bytes) -> RawExec:
    cmd, args = argv[0], argv[1:]
    if cmd == "block":
        RELEASE.wait(5)
        return RawExec(0, b"released\n")
    if cmd == "echo":
        return RawExec(0, (" ".join(args) + "\n").encode())
    if cmd == "cat":
        return RawExec(0, stdin)
    if cmd == "exit":
        return RawExec(int(args[0]))
    if cmd == "fail":
        return RawExec(3, b"partial out\n", (" ".join(args) + "\n").encode())
    return RawExec(127, b"", f"{cmd}: not found\n".encode())


class Cluster:
    def __init__(self, runtime: Runtime, url: str, kubeconfig: Path) -> None:
        self.runtime, self.url, self.kubeconfig = runtime, url, kubeconfig

    @property
    def store(self) -> Store:
        return self.runtime.store

    def put(self, plural: str, obj: dict, group: str = "", status: dict | None = None) -> dict:
        rt = self.store.resource_type(group, plural)
        ns = obj["metadata"].get("namespace")
        created = self.store.create(rt, obj, ns)
        if status is None:
            return created
        return self.store.update(rt, {**created, "status": status}, ns,
                                 obj["metadata"]["name"], "status")

    def set_status(self, plural: str, name: str, status: dict, group: str = "") -> None:
        rt = self.store.resource_type(group, plural)
        current = self.store.get(rt, NS, name)
        self.store.update(rt, {**current, "status": status}, NS, name, "status")


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    runtime = Runtime(Store(), seed=1)
    runtime.store.create(runtime.store.resource_type("", "namespaces"),
                         {"metadata": {"name": "default"}})
    server = api_mod.ApiServer(runtime, exec_handler=fake_exec, port=0)
    url = server.start()
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "embedded",
        "clusters": [{"name": "e", "cluster": {"server": url}}],
        "users": [{"name": "e", "user": {"token": "x"}}],
        "contexts": [{"name": "embedded", "context": {"cluster": "e", "user": "e"}}]}))
    try:
        yield Cluster(runtime, url, kubeconfig)
    finally:
        server.stop()


@pytest.fixture
def kube(cluster: Cluster) -> Iterator[Kube]:
    k = Kube(cluster.kubeconfig, timeouts=TIMEOUTS)
    k.commands = []  # type: ignore[attr-defined]
    k.on_command = lambda d, o: k.commands.append((d, o))  # type: ignore[attr-defined]
    k.create_namespace(NS, {"istio-injection": "enabled"})
    yield k
    k.close()


def pod(name: str, labels: dict[str, str], ready: bool = True, waiting: str | None = None) -> dict:
    state: dict[str, Any] = ({"running": {"startedAt": "2025-01-01T00:00:00Z"}} if ready else
                             {"waiting": {"reason": waiting or "ContainerCreating",
                                          "message": "Back-off pulling image \"x\""}})
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": NS, "labels": labels},
            "spec": {"containers": [{"name": "app", "image": "example/app:1"}]}}, {
        "phase": "Running" if ready else "Pending", "hostIP": "127.0.0.1",
        "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        "containerStatuses": [{"name": "app", "ready": ready, "restartCount": 0,
                               "image": "example/app:1", "imageID": "", "state": state}]}


def add_pod(cluster: Cluster, name: str, labels: dict[str, str], **kw: Any) -> None:
    obj, status = pod(name, labels, **kw)
    cluster.put("pods", obj, status=status)


def deployment(name: str) -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": NS},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "app", "image": "x"}]}}}}


READY_DEPLOYMENT = {"observedGeneration": 1, "replicas": 1, "readyReplicas": 1,
                    "updatedReplicas": 1, "availableReplicas": 1,
                    "conditions": [{"type": "Available", "status": "True"}]}


@contextmanager
def embedded_with_controllers(workdir: Path, timeouts: Timeouts) -> Iterator[Kube]:
    """A Kube on an embedded API server whose controllers roll Deployments out (fake exec)."""
    from pytest_istiolab.embedded import controllers

    runtime = Runtime(Store(), seed=3)
    controllers.bootstrap(runtime)
    ctrl = controllers.Controllers(runtime)
    ctrl.start()
    server = api_mod.ApiServer(runtime, exec_handler=fake_exec, port=0)
    url = server.start()
    kubeconfig = workdir / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "embedded",
        "clusters": [{"name": "e", "cluster": {"server": url}}],
        "users": [{"name": "e", "user": {"token": "x"}}],
        "contexts": [{"name": "embedded", "context": {"cluster": "e", "user": "e"}}]}))
    k = Kube(kubeconfig, timeouts=timeouts)
    try:
        yield k
    finally:
        k.close()
        server.stop()
        ctrl.stop()
