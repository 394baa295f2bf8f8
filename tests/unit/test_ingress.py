"""Ingress: INGRESS_HOST / INGRESS_PORT / GATEWAY_URL from the API, and HTTP to the NodePort.

The gateway Service and pod are made by hand in the embedded API server; the "NodePort" is a
local HTTP server that echoes what it received.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from kube_testkit import Cluster, cluster, kube, pod

from pytest_istiolab.errors import ClusterError
from pytest_istiolab.kube import Kube
from pytest_istiolab.traffic import Ingress
from pytest_istiolab.traffic.ingress import find_gateway, find_gateway_namespace, gateway_namespace

__all__ = ["cluster", "kube"]  # fixtures
ISTIO = "istio-system"


class Echo(BaseHTTPRequestHandler):
    """Answers with what it got; /login sets a session cookie and redirects like productpage."""

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        if self.path == "/login":
            self.send_response(302)
            self.send_header("Location", "/productpage")
            self.send_header("Set-Cookie", "session=jason-session; Path=/")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        payload = json.dumps({"method": self.command, "path": self.path,
                              "host": self.headers.get("Host"),
                              "cookie": self.headers.get("Cookie"), "body": body}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_POST = do_HEAD = _answer

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def node_port() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02},
                              daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


def gateway(cluster: Cluster, kube: Kube, http_port: int, with_pod: bool = True,
            service_type: str = "LoadBalancer", names: tuple[str, ...] = ("http2", "https"),
            namespace: str = ISTIO) -> None:
    kube.create_namespace(namespace, {})
    ports = [{"name": "status-port", "port": 15021, "targetPort": 15021, "protocol": "TCP"}]
    for i, name in enumerate(names):
        port = {"name": name, "port": 80 + i, "targetPort": 8080 + i, "protocol": "TCP"}
        if service_type != "ClusterIP":
            port["nodePort"] = http_port if name == "http2" else 31443 + i
        ports.append(port)
    kube.apply([{"apiVersion": "v1", "kind": "Service",
                 "metadata": {"name": "istio-ingressgateway", "namespace": namespace,
                              "labels": {"istio": "ingressgateway"}},
                 "spec": {"type": service_type, "selector": {"istio": "ingressgateway"},
                          "ports": ports}}])
    if with_pod:
        obj, status = pod("istio-ingressgateway-5d8f7b9c4-x2x9z", {"istio": "ingressgateway"})
        obj["metadata"]["namespace"] = namespace
        status["hostIP"] = "127.0.0.1"
        cluster.put("pods", obj, status=status)


@pytest.fixture
def ingress(cluster: Cluster, kube: Kube, node_port: int) -> Iterator[Ingress]:
    gateway(cluster, kube, node_port)
    ing = Ingress(kube)
    yield ing
    ing.close()


def test_manual_variables(ingress: Ingress, node_port: int) -> None:
    assert ingress.host == "127.0.0.1"
    assert (ingress.port, ingress.secure_port) == (node_port, 31444)
    assert ingress.gateway_url == f"127.0.0.1:{node_port}"
    assert ingress.url("/productpage") == f"http://127.0.0.1:{node_port}/productpage"
    assert ingress.url("headers", secure=True) == "https://127.0.0.1:31444/headers"
    assert ingress.curl_resolve("httpbin.example.com") == "httpbin.example.com:31444:127.0.0.1"


def test_node_address_overrides_the_host_ip(cluster: Cluster, kube: Kube, node_port: int) -> None:
    gateway(cluster, kube, node_port, with_pod=False)
    address = Ingress(kube, node_address="172.18.0.2").address  # unreachable here: no probe
    assert (address.host, address.port("http2")) == ("172.18.0.2", node_port)


def test_get_sends_host_header_and_cookies(ingress: Ingress) -> None:
    seen = ingress.get("/status/200", host="httpbin.example.com",
                       cookies={"session": "abc", "x": "1"}).json()
    assert seen["path"] == "/status/200"
    assert seen["host"] == "httpbin.example.com"
    assert seen["cookie"] == "session=abc; x=1"


def test_head_post_and_recording(ingress: Ingress, kube: Kube) -> None:
    assert ingress.head("/delay/2").status_code == 200
    assert ingress.post("/anything", content="x=1").json()["body"] == "x=1"
    descriptions = [d for d, _ in kube.commands]  # type: ignore[attr-defined]
    assert f"HEAD {ingress.url('/delay/2')}" in descriptions


def test_redirects_are_not_followed(ingress: Ingress) -> None:
    response = ingress.post("/login", data={"username": "jason"})
    assert response.status_code == 302 and response.headers["location"] == "/productpage"


def test_session_keeps_cookies(ingress: Ingress) -> None:
    with ingress.session() as browser:
        browser.post("/login", data={"username": "jason"})
        assert browser.get("/productpage").json()["cookie"] == "session=jason-session"
    assert ingress.get("/productpage").json()["cookie"] is None


def test_session_with_host(ingress: Ingress) -> None:
    with ingress.session(host="bookinfo.example.com") as browser:
        assert browser.get("/x").json()["host"] == "bookinfo.example.com"


def test_refresh_rereads_ports(ingress: Ingress, cluster: Cluster, kube: Kube) -> None:
    assert ingress.secure_port == 31444
    rt = cluster.store.resource_type("", "services")
    svc = cluster.store.get(rt, ISTIO, "istio-ingressgateway")
    svc["spec"]["ports"][2]["nodePort"] = 31555
    cluster.store.update(rt, svc, ISTIO, "istio-ingressgateway")
    assert ingress.secure_port == 31444
    ingress.refresh()
    assert ingress.secure_port == 31555


def test_gateway_found_where_its_service_is(cluster: Cluster, kube: Kube,
                                            node_port: int) -> None:
    """The Helm layout puts the gateway in istio-ingress; istio-system wins when both have one,
    and refresh() looks again (a reinstall may move it)."""
    gateway(cluster, kube, 31080, namespace="istio-ingress")
    ing = Ingress(kube)
    assert (ing.namespace, ing.address.port("http2")) == ("istio-ingress", 31080)
    gateway(cluster, kube, node_port)
    assert ing.namespace == "istio-ingress"  # kept until refreshed
    ing.refresh()
    assert (ing.namespace, ing.port) == (ISTIO, node_port)
    assert Ingress(kube, namespace="istio-ingress").address.port("http2") == 31080  # given: kept
    ing.close()


def test_one_lookup_for_the_gateway_namespace(cluster: Cluster, kube: Kube) -> None:
    """The traffic layer and the capabilities read the namespace by the same lookup: None when
    no namespace has the gateway (capability missing), else where it is; a missing nodePort is
    reported in the gateway's own namespace."""
    assert find_gateway_namespace(kube) is None
    assert gateway_namespace(kube) == ISTIO  # the error that follows names istio-system
    gateway(cluster, kube, 31080, namespace="istio-ingress", names=("http2",))
    assert find_gateway_namespace(kube) == gateway_namespace(kube) == "istio-ingress"
    with pytest.raises(ClusterError) as info:
        find_gateway(kube, namespace="istio-ingress").port("https")
    assert "istio-ingressgateway in istio-ingress has no nodePort" in str(info.value)


def test_no_gateway_service(kube: Kube) -> None:
    with pytest.raises(ClusterError) as info:
        _ = Ingress(kube).port
    assert "no service istio-ingressgateway in namespace istio-system" in str(info.value)
    assert "install a profile with an ingress gateway" in str(info.value)


def test_no_gateway_pod(cluster: Cluster, kube: Kube, node_port: int) -> None:
    gateway(cluster, kube, node_port, with_pod=False)
    with pytest.raises(ClusterError, match=r"no ingress gateway pod \(label "
                                           r"istio=ingressgateway\) in namespace istio-system"):
        _ = Ingress(kube).host


def test_missing_named_ports(cluster: Cluster, kube: Kube, node_port: int) -> None:
    gateway(cluster, kube, node_port, names=("http2",))
    ing = Ingress(kube)
    assert ing.port == node_port
    with pytest.raises(ClusterError, match="no nodePort for a port named 'tcp'"):
        _ = ing.tcp_port


def test_cluster_ip_service_has_no_node_ports(cluster: Cluster, kube: Kube,
                                              node_port: int) -> None:
    """No NodePorts: the port-forward fallback (tests/embedded/test_ingress_portforward.py
    carries requests through it); asking for a nodePort says why there is none."""
    gateway(cluster, kube, node_port, service_type="ClusterIP")
    ingress = Ingress(kube)
    assert ingress.via == "port-forward"
    with pytest.raises(ClusterError) as info:
        ingress.address.port("http2")
    assert "no nodePort for a port named 'http2' (node ports: none)" in str(info.value)
    assert "type NodePort or LoadBalancer" in str(info.value)
