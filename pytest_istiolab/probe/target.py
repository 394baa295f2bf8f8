"""What the probe deploys: its own namespace with a client (sleep) and a target (httpbin), both
with sidecars, and the target exposed through the ingress gateway for one host of its own.

Everything lives in one namespace labelled ``istiolab.io/managed-by=istiolab-probe``, so
deleting the namespace removes it all; its name is recorded before the create request, so an
interrupt while the request is in flight still leaves nothing behind.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx

from pytest_istiolab.cluster import ClusterSession
from pytest_istiolab.constants import LABEL_MANAGED, LABEL_RUN
from pytest_istiolab.deploy import Httpbin, Sleep
from pytest_istiolab.deploy.samples import HTTPBIN, SLEEP
from pytest_istiolab.errors import ExecError, ReadinessError
from pytest_istiolab.kube import Applier
from pytest_istiolab.waiting import eventually

MANAGER = "istiolab-probe"
TARGET_PATH = "/status/200"
TARGET_PORT = 8000
GATEWAY_PORT = 8080  # the ingress gateway pod's own HTTP port (the 1.26 samples' Gateway port)
IN_MESH_URL = f"http://httpbin:{TARGET_PORT}{TARGET_PATH}"


def probe_host(namespace: str) -> str:
    """The one host name the probe's Gateway and VirtualService accept (never ``*``)."""
    return f"{namespace}.probe.istiolab.example"


def gateway_docs(namespace: str) -> list[dict[str, Any]]:
    host = probe_host(namespace)
    gateway = {
        "apiVersion": "networking.istio.io/v1", "kind": "Gateway",
        "metadata": {"name": "probe-gateway"},
        "spec": {"selector": {"istio": "ingressgateway"},
                 "servers": [{"port": {"number": GATEWAY_PORT, "name": "http",
                                       "protocol": "HTTP"}, "hosts": [host]}]}}
    service = {
        "apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
        "metadata": {"name": "probe-httpbin"},
        "spec": {"hosts": [host], "gateways": ["probe-gateway"],
                 "http": [{"route": [{"destination": {"host": "httpbin",
                                                      "port": {"number": TARGET_PORT}}}]}]}}
    return [gateway, service]


@dataclass
class ProbeTarget:
    """The probe's namespace and workloads on one cluster session."""

    session: ClusterSession
    namespace: str
    revision: str | None = None
    created: bool = field(default=False)

    @property
    def host(self) -> str:
        return probe_host(self.namespace)

    def labels(self) -> dict[str, str]:
        labels = {LABEL_MANAGED: MANAGER, LABEL_RUN: self.session.settings.run_id}
        if self.revision:
            labels["istio.io/rev"] = self.revision
        else:
            labels["istio-injection"] = "enabled"
        return labels

    def deploy(self) -> None:
        """Namespace, sleep, httpbin, Gateway and VirtualService; waits for the Deployments."""
        kube = self.session.kube
        self.created = True  # before the request: an interrupt mid-request still cleans up
        kube.create_namespace(self.namespace, self.labels())
        applier = Applier(kube, self.namespace)
        self.sleep = Sleep(self.session, self.namespace, applier)
        self.httpbin = Httpbin(self.session, self.namespace, applier)
        applier(SLEEP)
        applier(HTTPBIN)
        applier.apply_docs(gateway_docs(self.namespace), "istiolab-probe gateway")
        kube.wait_for_deployments(self.namespace, ["sleep", "httpbin"])

    def wait_serving(self) -> None:
        """Until one in-mesh request and one ingress request get 200 (``eventually``, named
        timeouts; connection errors and not-yet answers are retried)."""
        t = self.session.timeouts

        def in_mesh() -> None:
            results = self.sleep.batch([IN_MESH_URL], max_time=t.http)
            assert results and results[0].status == 200, f"in-mesh answer {results}"

        def ingress() -> None:
            answer = self.session.ingress.get(TARGET_PATH, host=self.host)
            assert answer.status_code == 200, f"ingress answered {answer.status_code}"

        eventually(in_mesh, timeout=t.eventually, interval=t.poll_interval,
                   consecutive=t.consecutive, description="httpbin answers sleep in-mesh",
                   retry_on=(AssertionError, ExecError, ReadinessError, ValueError))
        eventually(ingress, timeout=t.eventually, interval=t.poll_interval,
                   consecutive=t.consecutive,
                   description=f"httpbin answers through the ingress gateway for {self.host}",
                   retry_on=(AssertionError, httpx.TransportError))

    def remove(self) -> None:
        """Delete the namespace (and so everything in it) and wait until it is gone."""
        if self.created:
            self.session.kube.delete_namespace(self.namespace, wait=True)
            self.created = False

