"""Shared helpers for the controller/injection/install tests (imported, not a conftest)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from pytest_istiolab.embedded.controllers import Controllers, bootstrap
from pytest_istiolab.embedded.runtime import Runtime
from pytest_istiolab.embedded.store import Store

Obj = dict[str, Any]
SETTLE_TIMEOUT = 10.0  # seconds for the controllers to reach a fixed point


class Cluster:
    """A bootstrapped store with running controllers, for direct (server-less) tests."""

    def __init__(self, seed: int = 7) -> None:
        self.runtime = Runtime(Store(), seed)
        bootstrap(self.runtime)
        self.controllers = Controllers(self.runtime).start()
        self.store = self.runtime.store

    def rt(self, group: str, plural: str):  # noqa: ANN201 - ResourceType
        return self.store.resource_type(group, plural)

    def create(self, group: str, plural: str, obj: Obj, ns: str | None = None) -> Obj:
        return self.store.create(self.rt(group, plural), obj, ns)

    def get(self, group: str, plural: str, ns: str | None, name: str) -> Obj:
        return self.store.get(self.rt(group, plural), ns, name)

    def items(self, group: str, plural: str, ns: str | None = None) -> list[Obj]:
        return self.store.by_kind(group, plural, ns)

    def settle(self) -> None:
        assert self.controllers.wait_idle(SETTLE_TIMEOUT), "controllers did not settle in " \
            f"{SETTLE_TIMEOUT}s"
        assert not self.controllers.errors, self.controllers.errors[-1]

    def namespace(self, name: str, labels: dict[str, str] | None = None) -> None:
        self.create("", "namespaces", {"metadata": {"name": name, "labels": labels or {}}})
        self.settle()

    def pods(self, ns: str, prefix: str = "") -> list[Obj]:
        return [p for p in self.items("", "pods", ns) if p["metadata"]["name"].startswith(prefix)]

    def stop(self) -> None:
        self.controllers.stop()


@contextmanager
def running_cluster(seed: int = 7) -> Iterator[Cluster]:
    cluster = Cluster(seed)
    try:
        yield cluster
    finally:
        cluster.stop()


def deployment(name: str, app: str, image: str, replicas: int = 1, version: str = "v1",
               ports: list[Obj] | None = None) -> Obj:
    labels = {"app": app, "version": version}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "labels": {"app": app}},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels}, "spec": {"containers": [
                         {"name": app, "image": image,
                          "ports": ports if ports is not None else [{"containerPort": 9080}]}]}}}}


DETAILS_IMAGE = "docker.io/istio/examples-bookinfo-details-v1:1.20.3"
