"""pods/portforward over websockets, through the kubernetes client's ``portforward()``.

A mesh Kit (bookinfo, the ingress gateway) behind a real ApiServer; the client is
``kubernetes.stream.portforward`` and HTTP/1.1 is written on the socket it hands out.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from kubernetes.stream import portforward
from mesh_testkit import BOOKINFO_GATEWAY, Kit

from pytest_istiolab.embedded.api import ApiServer
from pytest_istiolab.embedded.tools import run_in_container

READ_TIMEOUT = 10.0


@pytest.fixture(scope="module")
def core() -> Iterator[tuple[Kit, client.CoreV1Api]]:
    kit = Kit()
    kit.bookinfo()
    kit.apply(BOOKINFO_GATEWAY)
    server = ApiServer(kit.rt, exec_handler=run_in_container, port=0)
    cfg = client.Configuration()
    cfg.host = server.start()
    try:
        yield kit, client.CoreV1Api(client.ApiClient(cfg))  # dedicated: portforward patches it
    finally:
        server.stop()


def _http(sock: socket.socket, path: str, host: str = "x", close: bool = True) -> bytes:
    conn = "Connection: close\r\n" if close else ""
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n{conn}\r\n".encode())
    if close:
        return _read_all(sock)
    sock.settimeout(READ_TIMEOUT)
    return sock.recv(65536)


def _read_all(sock: socket.socket) -> bytes:
    sock.settimeout(READ_TIMEOUT)
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def test_forward_to_the_gateway_port_serves_the_product_page(core: tuple[Kit, client.CoreV1Api]
                                                              ) -> None:
    kit, api = core
    gw = kit.ingress_pod()["metadata"]["name"]
    pf = portforward(api.connect_get_namespaced_pod_portforward, gw, "istio-system",
                     ports="8080")
    reply = _http(pf.socket(8080), "/productpage")
    assert reply.startswith(b"HTTP/1.1 200 "), reply[:200]
    assert b"server: istio-envoy" in reply.lower() and b"Simple Bookstore App" in reply
    assert pf.error(8080) is None


def test_two_ports_and_keep_alive_on_one_websocket(core: tuple[Kit, client.CoreV1Api]) -> None:
    """Port i has its own channels; several requests share one forwarded connection.

    (A v4 channel has no end-of-stream of its own: the client sees EOF only when the whole
    websocket ends, so these requests keep their connections alive.)"""
    kit, api = core
    gw = kit.ingress_pod()["metadata"]["name"]
    pf = portforward(api.connect_get_namespaced_pod_portforward, gw, "istio-system",
                     ports="8080,15021")
    first = _http(pf.socket(8080), "/productpage", close=False)
    assert first.startswith(b"HTTP/1.1 200 ")
    ready = _http(pf.socket(15021), "/healthz/ready", close=False)
    assert ready.startswith(b"HTTP/1.1 200 "), ready[:200]
    last = _http(pf.socket(8080), "/no-such-page", close=False)
    assert last.startswith(b"HTTP/1.1 404 "), last[:200]
    pf.close()


def test_a_port_nothing_listens_on_reports_the_kubelet_error(core: tuple[Kit, client.CoreV1Api]
                                                             ) -> None:
    kit, api = core
    gw = kit.ingress_pod()["metadata"]["name"]
    pf = portforward(api.connect_get_namespaced_pod_portforward, gw, "istio-system",
                     ports="9999")
    assert _read_all(pf.socket(9999)) == b""
    error = pf.error(9999) or ""
    assert "failed to connect to localhost:9999" in error and "connection refused" in error


def test_a_missing_pod_is_a_404(core: tuple[Kit, client.CoreV1Api]) -> None:
    _, api = core
    with pytest.raises(ApiException, match="404"):
        portforward(api.connect_get_namespaced_pod_portforward, "nope", "istio-system",
                    ports="8080")
