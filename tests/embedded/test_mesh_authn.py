"""PeerAuthentication and the client's mTLS choice, through the mesh model (Lab 7 facts).

Resolution as istiod composes it (ComposePeerAuthentication, 1.26): workload > namespace > mesh
root namespace, oldest per scope, UNSET inherits, portLevelMtls keyed by container port; the
client side as mtlsChecker decides (DestinationRule tls.mode, else auto mTLS).
"""

from __future__ import annotations

import dataclasses
import json

import pytest
from mesh_testkit import Kit

from pytest_istiolab.embedded.mesh import authn, request_from_pod
from pytest_istiolab.embedded.mesh.config import snapshot
from pytest_istiolab.embedded.mesh.headers import Headers

URL = "http://httpbin.{}:8000/headers"


@pytest.fixture
def kit() -> Kit:
    k = Kit()
    for ns in ("foo", "bar", "legacy"):
        k.namespace(ns)
        k.httpbin(ns, sidecar=ns != "legacy")
        k.sleep(ns, sidecar=ns != "legacy")
    return k


def pa(name: str, namespace: str, mode: str | None = None, selector: dict | None = None,
       ports: dict | None = None) -> dict:
    spec: dict = {}
    if mode is not None:
        spec["mtls"] = {"mode": mode}
    if selector:
        spec["selector"] = {"matchLabels": selector}
    if ports:
        spec["portLevelMtls"] = {str(k): {"mode": v} for k, v in ports.items()}
    return {"apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication",
            "metadata": {"name": name, "namespace": namespace}, "spec": spec}


def send(kit: Kit, src: str, dst: str):  # type: ignore[no-untyped-def]
    return request_from_pod(kit.rt, kit.get_pod("sleep", src), "GET", URL.format(dst),
                            Headers({"user-agent": "curl/8.14.1"}))


def mode(kit: Kit, ns: str, port: int = 8080) -> str:
    return authn.server_mode(snapshot(kit.rt), kit.get_pod("httpbin", ns), port)


def xfcc(response) -> str | None:  # type: ignore[no-untyped-def]
    values = json.loads(response.body)["headers"].get("X-Forwarded-Client-Cert")
    return values[0] if values else None


def test_no_policy_is_permissive_and_plaintext_carries_no_xfcc(kit):
    assert mode(kit, "foo") == "PERMISSIVE"
    plain = send(kit, "legacy", "foo")
    assert plain.status == 200 and xfcc(plain) is None
    mutual = send(kit, "bar", "foo")
    value = xfcc(mutual)
    assert value is not None
    by, digest, subject, uri = value.split(";")
    assert by == "By=spiffe://cluster.local/ns/foo/sa/httpbin"
    assert len(digest.removeprefix("Hash=")) == 64 and subject == 'Subject=""'
    assert uri == "URI=spiffe://cluster.local/ns/bar/sa/sleep"
    assert xfcc(send(kit, "foo", "foo")).split(";")[1] != digest  # per identity


def test_mesh_strict_resets_the_plaintext_client_only(kit):
    kit.apply(pa("default", "istio-system", "STRICT"))
    legacy = send(kit, "legacy", "foo")
    assert legacy.failure is not None and legacy.failure.kind == "reset"
    assert legacy.status == 0
    assert send(kit, "foo", "bar").status == 200


def test_namespace_beats_mesh_and_workload_beats_namespace(kit):
    kit.apply(pa("default", "istio-system", "STRICT"))
    kit.apply(pa("default", "foo", "PERMISSIVE"))
    assert mode(kit, "foo") == "PERMISSIVE" and mode(kit, "bar") == "STRICT"
    kit.apply(pa("httpbin", "foo", "STRICT", {"app": "httpbin"}))
    assert mode(kit, "foo") == "STRICT"
    assert authn.server_mode(snapshot(kit.rt), kit.get_pod("sleep", "foo"), 80) == "PERMISSIVE"


def test_unset_inherits_and_port_level_keys_are_container_ports(kit):
    kit.apply(pa("default", "istio-system", "STRICT"))
    kit.apply(pa("httpbin", "foo", None, {"app": "httpbin"}, {8080: "DISABLE", 9000: "UNSET"}))
    assert mode(kit, "foo", 8080) == "DISABLE"
    assert mode(kit, "foo", 9000) == "STRICT" and mode(kit, "foo", 80) == "STRICT"
    # DISABLE on the server: auto mTLS sends plaintext, the legacy client gets through too
    assert send(kit, "legacy", "foo").status == 200
    assert xfcc(send(kit, "bar", "foo")) is None


def test_a_selector_policy_in_the_root_namespace_applies_to_nothing(kit):
    kit.apply(pa("strict-httpbin", "istio-system", "STRICT", {"app": "httpbin"}))
    assert mode(kit, "foo") == "PERMISSIVE"


def test_the_oldest_policy_of_a_scope_wins(kit):
    old, new = pa("z-old", "foo", "STRICT"), pa("a-new", "foo", "DISABLE")
    old["metadata"]["creationTimestamp"] = "2026-01-01T00:00:00Z"
    new["metadata"]["creationTimestamp"] = "2026-06-01T00:00:00Z"
    snap = dataclasses.replace(snapshot(kit.rt), peer_authentications=[new, old])
    assert authn.peer_policy(snap, kit.get_pod("httpbin", "foo")).mode == "STRICT"


def test_destination_rule_disable_to_a_strict_server_is_a_503_from_the_client_sidecar(kit):
    kit.apply(pa("default", "bar", "STRICT"))
    kit.apply({"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
               "metadata": {"name": "httpbin", "namespace": "foo"},
               "spec": {"host": "httpbin.bar.svc.cluster.local",
                        "trafficPolicy": {"tls": {"mode": "DISABLE"}}}})
    answer = send(kit, "foo", "bar")
    assert answer.status == 503 and answer.response_flags == "UC"
    assert answer.text.endswith("reset reason: connection termination")


def test_istio_mutual_to_a_server_without_sidecar_fails_the_handshake(kit):
    kit.apply({"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
               "metadata": {"name": "httpbin", "namespace": "foo"},
               "spec": {"host": "httpbin.legacy.svc.cluster.local",
                        "trafficPolicy": {"portLevelSettings": [
                            {"port": {"number": 8000}, "tls": {"mode": "ISTIO_MUTUAL"}}]}}})
    answer = send(kit, "foo", "legacy")
    assert answer.status == 503 and answer.response_flags.startswith("UF")  # UF,URX: retried
    assert "WRONG_VERSION_NUMBER" in answer.text
