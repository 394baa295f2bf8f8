"""What the embedded cluster stores but does not model is said, through the pinned kubectl.

``kubectl apply`` of an unmodelled kind (or of a modelled kind with an ignored field) prints
the API's ``Warning: 299`` text, an Event ``NotModelled`` names what is ignored, and a Gateway
API ``Gateway`` carries ``Programmed: False`` with that reason (issue 11).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import yaml
from api_testkit import Api, Kubectl, api_fixture, eventually, kubectl_fixture  # noqa: F401
from kubernetes import client

from pytest_istiolab.embedded import unmodelled
from pytest_istiolab.embedded.controllers import Controllers
from pytest_istiolab.embedded.install.crds import istio_crds

CRD = ("apiextensions.k8s.io", "customresourcedefinitions")
EVENT_TIMEOUT = 10.0  # seconds for the controllers to record an Event

UNMODELLED = {
    "Sidecar": ("networking.istio.io/v1", {"egress": [{"hosts": ["./*"]}]}),
    "EnvoyFilter": ("networking.istio.io/v1alpha3", {"configPatches": []}),
    "WasmPlugin": ("extensions.istio.io/v1alpha1", {"url": "oci://example/plugin:1"}),
    "ProxyConfig": ("networking.istio.io/v1beta1", {"concurrency": 2}),
    "WorkloadEntry": ("networking.istio.io/v1", {"address": "10.0.0.9"}),
    "WorkloadGroup": ("networking.istio.io/v1", {"template": {"ports": {"http": 80}}}),
}


@pytest.fixture(name="cluster")
def cluster_fixture(api: Api) -> Iterator[Api]:
    """The API server with Istio's CRDs and running controllers (which record the Events)."""
    for obj in istio_crds():
        api.store.create(api.rt(*CRD), obj)
    controllers = Controllers(api.runtime).start()
    try:
        yield api
    finally:
        controllers.stop()


def _doc(kind: str, api_version: str, spec: dict, name: str = "x") -> str:
    return yaml.safe_dump({"apiVersion": api_version, "kind": kind,
                           "metadata": {"name": name}, "spec": spec})


def _events(kubectl: Kubectl, name: str) -> list[dict]:
    listing = kubectl.json("get", "events", "--field-selector",
                           f"involvedObject.name={name}")
    return [e for e in listing["items"] if e.get("reason") == unmodelled.REASON]


@pytest.mark.parametrize("kind", sorted(UNMODELLED))
def test_apply_of_an_unmodelled_kind_warns_and_records_an_event(cluster: Api, kubectl: Kubectl,
                                                                kind: str) -> None:
    api_version, spec = UNMODELLED[kind]
    out = kubectl.run("apply", "-f", "-", stdin=_doc(kind, api_version, spec))
    assert f"Warning: {kind} default/x: not modelled by the embedded cluster: " in out.stderr
    assert "configured" in out.stdout or "created" in out.stdout  # stored, as a cluster does
    assert eventually(lambda: bool(_events(kubectl, "x")), EVENT_TIMEOUT), "no NotModelled Event"
    event = _events(kubectl, "x")[0]
    assert event["type"] == "Warning" and event["involvedObject"]["kind"] == kind
    assert "not modelled" in event["message"]


def test_each_write_warns_again_and_a_modelled_kind_does_not(cluster: Api,
                                                             kubectl: Kubectl) -> None:
    doc = _doc("Sidecar", "networking.istio.io/v1", {"egress": [{"hosts": ["./*"]}]})
    kubectl.run("create", "-f", "-", stdin=doc)
    again = kubectl.run("replace", "-f", "-", stdin=doc)
    assert "sidecar scoping" in again.stderr
    patched = kubectl.run("patch", "sidecar", "x", "--type", "merge", "-p",
                          '{"spec":{"egress":[{"hosts":["*/*"]}]}}')
    assert "Warning: Sidecar default/x" in patched.stderr
    for kind, spec in (("AuthorizationPolicy", {"action": "DENY", "rules": [{}]}),
                       ("RequestAuthentication", {"jwtRules": [{"issuer": "x"}]})):
        modelled = kubectl.run("apply", "-f", "-", stdin=_doc(kind, "security.istio.io/v1",
                                                              spec, name="m"))
        assert "Warning" not in modelled.stderr  # modelled since Lab 8 (jwtauthn, authz)
    custom = kubectl.run("apply", "-f", "-", stdin=_doc(
        "AuthorizationPolicy", "security.istio.io/v1",
        {"action": "CUSTOM", "provider": {"name": "ext"}, "rules": [{}]}, name="c"))
    assert "CUSTOM (external authorization) is not modelled" in custom.stderr
    plain = kubectl.run("apply", "-f", "-", stdin=_doc(
        "VirtualService", "networking.istio.io/v1",
        {"hosts": ["r"], "http": [{"route": [{"destination": {"host": "r"}}]}]}))
    assert "Warning" not in plain.stderr
    mutual = kubectl.run("apply", "-f", "-", stdin=_doc(
        "DestinationRule", "networking.istio.io/v1",
        {"host": "r", "trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"}}}))
    assert "Warning" not in mutual.stderr  # modelled (mesh.authn): nothing is ignored
    https = kubectl.run("apply", "-f", "-", stdin=_doc(
        "Gateway", "networking.istio.io/v1", {"selector": {"istio": "ingressgateway"},
                                               "servers": [{"port": {"number": 443, "name": "https",
                                                                     "protocol": "HTTPS"},
                                                            "hosts": ["*"], "tls": {
                                                                "mode": "SIMPLE",
                                                                "credentialName": "c"}}]}))
    assert "Warning" not in https.stderr  # served since Lab 6 (embedded.tls)
    peer = kubectl.run("apply", "-f", "-", stdin=_doc(
        "PeerAuthentication", "security.istio.io/v1", {"mtls": {"mode": "STRICT"}}))
    assert "Warning" not in peer.stderr  # modelled since Lab 7 (mesh.authn)


@pytest.mark.parametrize(("kind", "spec", "field"), [
    ("VirtualService", {"hosts": ["r"], "tcp": [{"route": [{"destination": {"host": "r"}}]}]},
     "spec.tcp"),
    ("VirtualService", {"hosts": ["r"], "http": [{"corsPolicy": {"allowOrigins": [
        {"exact": "https://a"}]}, "route": [{"destination": {"host": "r"}}]}]},
     "spec.http[].corsPolicy"),
    ("DestinationRule", {"host": "r", "trafficPolicy": {"tls": {"mode": "SIMPLE"}}},
     "spec.trafficPolicy.tls.mode"),
    ("DestinationRule", {"host": "r", "subsets": [{"name": "v1", "labels": {"v": "1"},
                                                   "trafficPolicy": {"loadBalancer": {
                                                       "simple": "LEAST_REQUEST"}}}]},
     "spec.subsets[].trafficPolicy.loadBalancer"),
    ("Gateway", {"selector": {"istio": "ingressgateway"}, "servers": [
        {"port": {"number": 443, "name": "tls", "protocol": "TLS"}, "hosts": ["*"],
         "tls": {"mode": "PASSTHROUGH"}}]}, "spec.servers[].tls.mode"),
    ("Gateway", {"selector": {"istio": "ingressgateway"}, "servers": [
        {"port": {"number": 80, "name": "http", "protocol": "HTTP"}, "hosts": ["*"],
         "tls": {"httpsRedirect": True}}]}, "spec.servers[].tls.httpsRedirect"),
])
def test_an_ignored_field_of_a_modelled_kind_is_named(cluster: Api, kubectl: Kubectl,
                                                      kind: str, spec: dict,
                                                      field: str) -> None:
    out = kubectl.run("apply", "-f", "-", stdin=_doc(kind, "networking.istio.io/v1", spec))
    assert f"Warning: {kind} default/x: {field} is ignored by the embedded cluster" in out.stderr
    assert eventually(lambda: any(field in e["message"] for e in _events(kubectl, "x")),
                      EVENT_TIMEOUT)


def test_python_client_sees_the_warning_header(cluster: Api) -> None:
    body = yaml.safe_load(_doc("Sidecar", "networking.istio.io/v1", {"egress": [
        {"hosts": ["./*"]}]}))
    api = client.CustomObjectsApi(cluster.client())
    _, status, headers = api.create_namespaced_custom_object_with_http_info(
        "networking.istio.io", "v1", "default", "sidecars", body)
    assert status == 201
    assert str(headers.get("Warning")).startswith('299 - "Sidecar default/x: not modelled')


GATEWAY_API_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "gateways.gateway.networking.k8s.io"},
    "spec": {"group": "gateway.networking.k8s.io", "scope": "Namespaced",
             "names": {"kind": "Gateway", "listKind": "GatewayList", "plural": "gateways",
                       "singular": "gateway", "shortNames": ["gtw"]},
             "versions": [{"name": "v1", "served": True, "storage": True,
                           "subresources": {"status": {}},
                           "schema": {"openAPIV3Schema": {
                               "type": "object",
                               "x-kubernetes-preserve-unknown-fields": True}}}]},
}
GATEWAY = """\
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: gtw
spec:
  gatewayClassName: istio
  listeners:
  - {name: http, port: 80, protocol: HTTP}
"""


def test_gateway_api_gateway_says_it_is_not_programmed(cluster: Api, kubectl: Kubectl) -> None:
    crd_out = kubectl.run("apply", "-f", "-", stdin=yaml.safe_dump(GATEWAY_API_CRD))
    assert "Gateway API is not modelled by the embedded cluster" in crd_out.stderr
    assert eventually(lambda: kubectl.run("get", "crd", "gateways.gateway.networking.k8s.io",
                                          check=False).returncode == 0, EVENT_TIMEOUT)
    out = kubectl.run("apply", "-f", "-", stdin=GATEWAY)
    assert "Warning: Gateway default/gtw: the Gateway API is not modelled" in out.stderr

    def programmed() -> dict:
        conditions = (kubectl.json("get", "gtw", "gtw").get("status") or {}).get("conditions")
        return {c["type"]: c for c in conditions or []}.get("Programmed") or {}

    assert eventually(lambda: programmed().get("reason") == unmodelled.REASON, EVENT_TIMEOUT)
    assert programmed()["status"] == "False"
    assert "does not model the Gateway API" in programmed()["message"]
    # kubectl wait reads the same condition (it only stops early for True: it runs out here)
    waited = kubectl.run("wait", "--for=condition=programmed", "gateway/gtw", "--timeout=1s",
                         check=False)
    assert waited.returncode != 0 and "timed out" in waited.stderr
    described = kubectl.run("describe", "gateway", "gtw").stdout
    assert "NotModelled" in described


MESH = """\
apiVersion: v1
kind: ConfigMap
metadata: {name: istio, namespace: istio-system}
data:
  mesh: |-
    accessLogFile: /dev/stdout
    defaultConfig:
      discoveryAddress: istiod.istio-system.svc:15012
      holdApplicationUntilProxyStarts: true
    rootNamespace: istio-system
"""


def test_a_mesh_config_field_the_model_does_not_read_is_named(cluster: Api,
                                                              kubectl: Kubectl) -> None:
    kubectl.run("create", "namespace", "istio-system")
    out = kubectl.run("apply", "-f", "-", stdin=MESH)
    assert out.stderr.splitlines() == [
        "Warning: ConfigMap istio-system/istio: defaultConfig.holdApplicationUntilProxyStarts "
        "(mesh config) is ignored by the embedded cluster: not modelled, the proxies run as "
        "if it were unset"]
    assert eventually(lambda: bool(_events_in(kubectl, "istio")), EVENT_TIMEOUT)
    modelled = MESH.replace("      holdApplicationUntilProxyStarts: true\n", "")
    assert "Warning" not in kubectl.run("apply", "-f", "-", stdin=modelled).stderr
    other = MESH.replace("name: istio,", "name: my-settings,")
    assert "Warning" not in kubectl.run("apply", "-f", "-", stdin=other).stderr


def _events_in(kubectl: Kubectl, name: str) -> list[dict]:
    listing = kubectl.json("get", "events", "-n", "istio-system", "--field-selector",
                           f"involvedObject.name={name}")
    return [e for e in listing["items"] if e.get("reason") == unmodelled.REASON]
