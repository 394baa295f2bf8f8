"""``server`` and ``x-envoy-decorator-operation`` as Istio 1.26 configures each HCM, seen by curl.

``server``: sidecar outbound leaves Envoy's default ``envoy``; sidecar inbound and gateways
overwrite with ``istio-envoy`` (pilot ``util.GetProxyHeadersFromProxyConfig``). Decorators: an
Egress HCM (sidecar outbound, gateway) sends its route's operation upstream and drops the one
in the response; an Ingress HCM (sidecar inbound) drops it from the request and tells the
caller its own. The passthrough route (``allow_any``) has no decorator.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from api_testkit import KUBECTL, Kubectl
from mesh_testkit import Kit

from pytest_istiolab.embedded.api import ApiServer
from pytest_istiolab.embedded.tools import reads_stdin, run_in_container

HTTPBIN_ORG_ENTRY = """\
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: httpbin-ext}
spec:
  hosts: [httpbin.org]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: DNS
  location: MESH_EXTERNAL
"""


class Mesh:
    def __init__(self, kit: Kit, kubectl: Kubectl) -> None:
        self.kit, self.kubectl = kit, kubectl
        self.sleep = kit.sleep()["metadata"]["name"]
        kit.httpbin()
        self.legacy = kit.workload("legacy", "default", "curlimages/curl:8.14.1", 80, None,
                                   sidecar=False)["metadata"]["name"]

    def curl(self, pod: str, container: str, *args: str) -> str:
        return self.kubectl.run("exec", pod, "-c", container, "--", "curl", "-sS",
                                *args).stdout


@pytest.fixture
def mesh(tmp_path: Path) -> Iterator[Mesh]:
    if not KUBECTL.exists():
        pytest.fail(f"the pinned kubectl is not installed at {KUBECTL}", pytrace=False)
    kit = Kit(seed=11)
    server = ApiServer(kit.rt, exec_handler=run_in_container, reads_stdin=reads_stdin)
    url = server.start()
    try:
        yield Mesh(kit, Kubectl(url, tmp_path))
    finally:
        server.stop()


def _headers(text: str) -> dict[str, str]:
    lines = text.replace("\r\n", "\n").split("\n")[1:]
    return {k.lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines if ":" in ln)}


def test_a_sidecar_client_sees_envoy_and_no_decorator(mesh: Mesh) -> None:
    head = _headers(mesh.curl(mesh.sleep, "sleep", "-I", "http://httpbin:8000/get"))
    assert head["server"] == "envoy"
    assert "x-envoy-decorator-operation" not in head  # the outbound (Egress) HCM dropped it


def test_a_client_without_sidecar_sees_the_inbound_decorator(mesh: Mesh) -> None:
    head = _headers(mesh.curl(mesh.legacy, "legacy", "-I", "http://httpbin:8000/get"))
    assert head["server"] == "istio-envoy"
    assert head["x-envoy-decorator-operation"] == "httpbin.default.svc.cluster.local:8000/*"


def test_the_app_never_sees_the_decorator_behind_its_sidecar(mesh: Mesh) -> None:
    body = json.loads(mesh.curl(mesh.sleep, "sleep", "http://httpbin:8000/headers"))
    assert "X-Envoy-Decorator-Operation" not in body["headers"]


def test_a_service_entry_route_sends_its_operation_to_httpbin_org(mesh: Mesh) -> None:
    before = json.loads(mesh.curl(mesh.sleep, "sleep", "http://httpbin.org/headers"))
    assert "X-Envoy-Decorator-Operation" not in before["headers"]  # allow_any: no decorator
    mesh.kit.apply(HTTPBIN_ORG_ENTRY)
    after = json.loads(mesh.curl(mesh.sleep, "sleep", "http://httpbin.org/headers"))
    assert after["headers"]["X-Envoy-Decorator-Operation"] == "httpbin.org:80/*"


def test_no_tracing_no_decorator(mesh: Mesh) -> None:
    mesh.kit.set_mesh({"enableTracing": False})
    mesh.kit.apply(HTTPBIN_ORG_ENTRY)
    body = json.loads(mesh.curl(mesh.sleep, "sleep", "http://httpbin.org/headers"))
    assert "X-Envoy-Decorator-Operation" not in body["headers"]


def test_a_caller_that_names_the_operation_gets_none_back(mesh: Mesh) -> None:
    head = _headers(mesh.curl(mesh.legacy, "legacy", "-I", "-H",
                              "x-envoy-decorator-operation: mine", "http://httpbin:8000/get"))
    assert "x-envoy-decorator-operation" not in head  # the inbound span took "mine" instead
