"""NodePort listeners: real sockets on 127.0.0.1 following the store (L2-C07/C08, L3.3, L3.5).

A Store populated by hand; no API server. Clients are httpx and raw sockets.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import httpx
import pytest
from mesh_testkit import (
    BOOKINFO_GATEWAY,
    HTTPBIN_GATEWAY,
    TEST_GATEWAY,
    Kit,
    any_host,
    edited,
    vs_prefixes,
)

from pytest_istiolab.embedded.listeners import Binding, ListenerManager, desired_bindings


@pytest.fixture
def kit() -> Kit:
    k = Kit(free_node_ports=True)
    k.bookinfo()
    k.httpbin()
    return k


@pytest.fixture
def listeners(kit: Kit) -> Iterator[ListenerManager]:
    manager = ListenerManager(kit.rt).start()
    yield manager
    manager.stop()


def http2_port(kit: Kit) -> int:
    return kit.node_port("istio-ingressgateway", "http2")


def exchange(port: int, data: bytes, replies: int = 1) -> bytes:
    """Send raw bytes on one connection and read ``replies`` complete responses."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(data)
        received = b""
        while received.count(b"HTTP/1.1 ") < replies or not _complete(received, replies):
            chunk = conn.recv(65536)
            if not chunk:
                break
            received += chunk
        return received


def _complete(data: bytes, replies: int) -> bool:
    parts = data.split(b"HTTP/1.1 ")[1:]
    if len(parts) < replies:
        return False
    last = b"HTTP/1.1 " + parts[-1]
    head, sep, body = last.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return len(body) >= int(line.split(b":")[1])
    return True


def refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


def test_gateway_port_opens_with_the_first_gateway(kit: Kit, listeners: ListenerManager) -> None:
    """L2-C07/C08: nothing on the http2 NodePort until a Gateway exists; then the page."""
    port = http2_port(kit)
    assert refused(port)
    kit.apply(BOOKINFO_GATEWAY)
    assert listeners.ports[port] == Binding("istio-system", "istio-ingressgateway", 80)
    response = httpx.get(f"http://127.0.0.1:{port}/productpage", timeout=5)
    assert response.status_code == 200 and response.headers["server"] == "istio-envoy"
    assert "<title>Simple Bookstore App</title>" in response.text


def test_keep_alive_serves_several_requests_on_one_connection(kit: Kit,
                                                              listeners: ListenerManager) -> None:
    kit.apply(BOOKINFO_GATEWAY)
    kit.apply(TEST_GATEWAY)
    request = (b"GET /details/0 HTTP/1.1\r\nHost: node:1\r\n\r\n"
               b"GET /health HTTP/1.1\r\nHost: node:1\r\n\r\n")
    data = exchange(http2_port(kit), request, replies=2)
    assert data.count(b"HTTP/1.1 200 OK\r\n") == 2
    assert b'"publisher":"PublisherA"' in data and b'{"status":"Details is healthy"}' in data
    with httpx.Client(timeout=5) as client:
        statuses = [client.get(f"http://127.0.0.1:{http2_port(kit)}/health").status_code
                    for _ in range(5)]
    assert statuses == [200] * 5


def test_host_routing_and_the_404_of_an_unpublished_path(kit: Kit,
                                                         listeners: ListenerManager) -> None:
    """L3.5-C04/C06: the manual's ``curl -I -HHost:httpbin.example.com ...`` outputs."""
    kit.apply(HTTPBIN_GATEWAY)
    port = http2_port(kit)
    ok = httpx.head(f"http://127.0.0.1:{port}/status/200",
                    headers={"Host": "httpbin.example.com"}, timeout=5)
    assert ok.status_code == 200 and "x-envoy-upstream-service-time" in ok.headers
    raw = exchange(port, b"HEAD /headers HTTP/1.1\r\nHost: httpbin.example.com\r\n\r\n")
    lines = raw.decode().split("\r\n")
    assert lines[0] == "HTTP/1.1 404 Not Found"
    assert lines[1].startswith("date: ") and lines[2:4] == ["server: istio-envoy",
                                                            "transfer-encoding: chunked"]
    other = httpx.get(f"http://127.0.0.1:{port}/status/200", headers={"Host": "x.example"},
                      timeout=5)
    assert other.status_code == 404 and other.content == b""


def test_request_bodies_reach_the_app(kit: Kit, listeners: ListenerManager) -> None:
    kit.apply(edited(HTTPBIN_GATEWAY, any_host, vs_prefixes("/anything", "/delay")))
    port = http2_port(kit)
    posted = httpx.post(f"http://127.0.0.1:{port}/anything", data={"a": "1"}, timeout=5).json()
    assert posted["form"] == {"a": ["1"]} and posted["method"] == "POST"
    chunked = exchange(port, b"POST /anything HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked"
                             b"\r\nContent-Type: text/plain\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
    assert b'"data": "abc"' in chunked


def test_listener_follows_gateway_and_service_changes(kit: Kit,
                                                      listeners: ListenerManager) -> None:
    kit.apply(BOOKINFO_GATEWAY)
    port = http2_port(kit)
    assert httpx.get(f"http://127.0.0.1:{port}/productpage", timeout=5).status_code == 200
    kit.delete("networking.istio.io", "gateways", "bookinfo-gateway")
    assert port not in listeners.ports and refused(port)
    kit.apply(BOOKINFO_GATEWAY)
    new_port = next(kit._node_ports)
    svc_rt = kit.rtype("", "services")

    def move(svc: dict) -> dict:
        for p in svc["spec"]["ports"]:
            if p["name"] == "http2":
                p["nodePort"] = new_port
        return svc

    kit.store.mutate(svc_rt, "istio-system", "istio-ingressgateway", move)
    assert refused(port)
    assert httpx.get(f"http://127.0.0.1:{new_port}/productpage", timeout=5).status_code == 200


def test_status_port_and_stop(kit: Kit) -> None:
    manager = ListenerManager(kit.rt).start()
    port = kit.node_port("istio-ingressgateway", "status-port")
    try:
        assert httpx.get(f"http://127.0.0.1:{port}/healthz/ready", timeout=5).status_code == 200
    finally:
        manager.stop()
    assert refused(port) and manager.ports == {}


def test_https_port_is_a_tls_binding_and_tls_passthrough_stays_unbound(kit: Kit) -> None:
    """HTTPS servers make the https NodePort a TLS listener (test_tls_listener.py drives it);
    ``protocol: TLS`` (passthrough, not modelled) on 15443 opens nothing."""
    kit.apply("""
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: mygateway}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    tls: {mode: SIMPLE, credentialName: httpbin-credential}
    hosts: [httpbin.example.com]
  - port: {number: 15443, name: tls, protocol: TLS}
    tls: {mode: PASSTHROUGH}
    hosts: [passthrough.example.com]
""")
    bound = desired_bindings(kit.rt)
    assert bound[kit.node_port("istio-ingressgateway", "https")].tls
    assert not bound[kit.node_port("istio-ingressgateway", "status-port")].tls
    assert kit.node_port("istio-ingressgateway", "tls") not in bound


def test_app_behind_a_plain_node_port(kit: Kit, listeners: ListenerManager) -> None:
    kit.service("productpage-np", "default", {"app": "productpage"},
                [("http", 9080, 9080)], service_type="NodePort")
    port = kit.node_port("productpage-np", "http", "default")
    response = httpx.get(f"http://127.0.0.1:{port}/productpage", timeout=5)
    assert response.status_code == 200 and response.headers["server"] == "istio-envoy"
