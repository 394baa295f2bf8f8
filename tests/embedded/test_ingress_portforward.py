"""Ingress falls back to a port-forward when the node address does not answer.

A mesh Kit (bookinfo + its Gateway) behind a real ApiServer and real NodePort listeners on
127.0.0.1; the library's Kube/Ingress reach it only through a kubeconfig. 127.0.0.2 stands
for a node address the test host cannot reach (nothing listens there).
"""

from __future__ import annotations

import logging
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from mesh_testkit import BOOKINFO_GATEWAY, MANIFESTS, Kit

from pytest_istiolab.embedded.api import ApiServer
from pytest_istiolab.embedded.listeners import ListenerManager
from pytest_istiolab.embedded.tools import run_in_container
from pytest_istiolab.kube import Kube
from pytest_istiolab.security import LabCertificates, tls_secret
from pytest_istiolab.traffic import Ingress
from pytest_istiolab.traffic.tls import https_get

UNREACHABLE_NODE = "127.0.0.2"


@pytest.fixture(scope="module")
def certs() -> Iterator[LabCertificates]:
    made = LabCertificates()
    yield made
    made.remove()


@pytest.fixture(scope="module")
def kube(tmp_path_factory: pytest.TempPathFactory, certs: LabCertificates) -> Iterator[Kube]:
    kit = Kit(free_node_ports=True)
    kit.bookinfo()
    kit.apply(BOOKINFO_GATEWAY)
    kit.deploy("lab06-tls-ingress/sdshttpbin.yaml")
    kit.store.create(kit.rtype("", "secrets"), tls_secret("httpbin-credential", "istio-system",
                                                          certs.httpbin), "istio-system")
    kit.apply((MANIFESTS / "lab06-tls-ingress/sdsgateway.yaml").read_text())
    kit.apply((MANIFESTS / "lab06-tls-ingress/sdsvirtualserver.yaml").read_text())
    listeners = ListenerManager(kit.rt).start()
    server = ApiServer(kit.rt, exec_handler=run_in_container, port=0)
    url = server.start()
    kubeconfig: Path = tmp_path_factory.mktemp("pf") / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "embedded",
        "clusters": [{"name": "e", "cluster": {"server": url}}],
        "users": [{"name": "e", "user": {"token": "x"}}],
        "contexts": [{"name": "embedded", "context": {"cluster": "e", "user": "e"}}]}))
    try:
        yield Kube(kubeconfig)
    finally:
        server.stop()
        listeners.stop()


def test_reachable_node_uses_the_nodeport(kube: Kube) -> None:
    ingress = Ingress(kube)
    try:
        assert ingress.via == "nodeport"
        assert ingress.gateway_url == f"127.0.0.1:{ingress.address.port('http2')}"
        assert ingress.get("/productpage").status_code == 200
    finally:
        ingress.close()


def test_unreachable_node_falls_back_to_a_port_forward(kube: Kube,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    ingress = Ingress(kube, node_address=UNREACHABLE_NODE, probe_timeout=0.5)
    try:
        with caplog.at_level(logging.WARNING, logger="pytest_istiolab.traffic.ingress"):
            assert ingress.via == "port-forward"
        assert [r for r in caplog.records if "falling back to a port-forward" in r.message]
        host, port = ingress.gateway_url.split(":")
        assert host == "127.0.0.1" and int(port) != ingress.address.port("http2")
        page = ingress.get("/productpage")
        assert page.status_code == 200, page.text[:300]
        assert page.headers["server"] == "istio-envoy"
        assert "<title>Simple Bookstore App</title>" in page.text
        assert ingress.get("/no-such-page").status_code == 404  # keep-alive on the relay
        with ingress.session() as browser:
            assert browser.get("/productpage").status_code == 200
    finally:
        ingress.close()
    with pytest.raises(OSError):  # the relay is gone with the Ingress
        socket.create_connection(("127.0.0.1", int(port)), timeout=1).close()


@pytest.mark.parametrize("use_curl", [True, False], ids=["curl", "python"])
def test_tls_goes_through_the_port_forward_too(kube: Kube, certs: LabCertificates,
                                               use_curl: bool) -> None:
    """pods/portforward carries raw TCP: Lab 6's HTTPS works through the fallback relay."""
    if use_curl and not shutil.which("curl"):
        pytest.skip("no curl on this host")
    ingress = Ingress(kube, node_address=UNREACHABLE_NODE, probe_timeout=0.5)
    try:
        assert ingress.via == "port-forward"
        result = https_get("httpbin.example.com", ingress.secure_port, ingress.host,
                           "/status/418", certs.root.cert_path, use_curl=use_curl)
        assert (result.exit_code, result.status, result.http_version) == (0, 418, "2"), \
            result.describe()
        assert result.subject == "CN=httpbin.example.com, O=httpbin organization"
        assert "-=[ teapot ]=-" in result.body
    finally:
        ingress.close()


def test_a_clusterip_gateway_is_reached_through_a_port_forward(
        kube: Kube, caplog: pytest.LogCaptureFixture) -> None:
    """A gateway Service without NodePorts (type ClusterIP, as Helm's gateway chart may set it)
    is not an error: the port-forward fallback carries the lab's requests."""
    original = kube.get("v1", "Service", "istio-ingressgateway", "istio-system")
    ports = [{k: v for k, v in p.items() if k != "nodePort"} for p in original["spec"]["ports"]]
    kube.merge_patch("v1", "Service", "istio-ingressgateway", "istio-system",
                     {"spec": {"type": "ClusterIP", "ports": ports}})
    ingress = Ingress(kube)
    try:
        assert ingress.address.ports == {}
        with caplog.at_level(logging.WARNING, logger="pytest_istiolab.traffic.ingress"):
            assert ingress.via == "port-forward"
        assert [r for r in caplog.records if "no NodePorts (type ClusterIP)" in r.message]
        page = ingress.get("/productpage")
        assert page.status_code == 200, page.text[:300]
    finally:
        ingress.close()
        kube.merge_patch("v1", "Service", "istio-ingressgateway", "istio-system",
                         {"spec": {"type": original["spec"]["type"],
                                   "ports": original["spec"]["ports"]}})
