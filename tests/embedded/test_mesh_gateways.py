"""Gateway routing: server ports to pod ports (D-24), host intersection, VirtualService merging.

Behind L2-C05/C08 (bookinfo-gateway on 8080), L3.3-C04/C05 (test-gateway on 80 next to it),
L3.5-C04..C07 (httpbin-gateway, host routing, 404 for unpublished paths), L3.6 (egress).
"""

from __future__ import annotations

import pytest
from mesh_testkit import (
    BOOKINFO_GATEWAY,
    EGRESS_GATEWAY,
    EGRESS_VIRTUAL_SERVICE,
    HTTPBIN_GATEWAY,
    TEST_GATEWAY,
    Kit,
    any_host,
    edited,
    gateway_selector,
    request,
    vs_gateways,
    vs_hosts,
    vs_prefixes,
)

from pytest_istiolab.embedded.mesh import gateways
from pytest_istiolab.embedded.mesh.config import snapshot


@pytest.fixture
def kit() -> Kit:
    k = Kit()
    k.bookinfo()
    k.httpbin()
    return k


def route(kit: Kit, path: str, host: str = "192.168.1.231:30193", port: int = 8080):  # type: ignore[no-untyped-def]
    return gateways.route_gateway(snapshot(kit.rt), kit.ingress_pod(), port,
                                  request(path, host))


def hosts_of(decision) -> list[str]:  # type: ignore[no-untyped-def]
    return [d.host for d in decision.destinations]


def test_gateway_port_80_and_8080_both_land_on_the_pods_8080(kit: Kit) -> None:
    """D-24: the 1.26 bookinfo-gateway (8080) and the lab gateways (80 -> Service 80 -> 8080)."""
    snap = snapshot(kit.rt)
    pod = kit.ingress_pod()
    assert gateways.listen_port(snap, pod, 80) == 8080
    assert gateways.listen_port(snap, pod, 8080) == 8080
    assert gateways.listen_port(snap, pod, 443) == 8443
    assert gateways.listen_port(snap, pod, 9999) == 9999
    assert gateways.listening_ports(snap, pod) == set()
    kit.apply(BOOKINFO_GATEWAY)
    kit.apply(TEST_GATEWAY)
    assert gateways.listening_ports(snapshot(kit.rt), pod) == {8080}


def test_two_star_gateways_on_one_listener_merge_their_routes(kit: Kit) -> None:
    """L3.3-C04/C05 with L2-C08: /productpage, /details/0 and /health all route."""
    kit.apply(BOOKINFO_GATEWAY)
    kit.apply(TEST_GATEWAY)
    assert hosts_of(route(kit, "/productpage")) == ["productpage.default.svc.cluster.local"]
    assert hosts_of(route(kit, "/details/0")) == ["details.default.svc.cluster.local"]
    assert hosts_of(route(kit, "/health")) == ["details.default.svc.cluster.local"]
    assert route(kit, "/nothing").local.status == 404  # type: ignore[union-attr]


def test_host_specific_virtual_host_wins_and_other_paths_get_404(kit: Kit) -> None:
    """L3.5-C04/C06: /status/200 routed for httpbin.example.com, /headers is 404 NR."""
    kit.apply(HTTPBIN_GATEWAY)
    assert hosts_of(route(kit, "/status/200", "httpbin.example.com")) == \
        ["httpbin.default.svc.cluster.local"]
    assert route(kit, "/status/200", "httpbin.example.com:31380").destinations
    missing = route(kit, "/headers", "httpbin.example.com")
    assert missing.local is not None
    assert (missing.local.status, missing.local.flags) == (404, "NR")
    assert route(kit, "/status/200", "other.example.com").local is not None


def test_virtual_service_hosts_intersect_server_hosts(kit: Kit) -> None:
    kit.apply(edited(HTTPBIN_GATEWAY, vs_hosts("*")))
    assert route(kit, "/status/200", "httpbin.example.com").destinations
    assert route(kit, "/status/200", "elsewhere.example.com").local is not None


def test_replacing_the_gateway_hosts_with_star_publishes_for_any_host(kit: Kit) -> None:
    """L3.5-C07 (ingressgateway2.yaml): hosts "*" and a /headers route."""
    kit.apply(edited(HTTPBIN_GATEWAY, any_host, vs_prefixes("/headers")))
    assert route(kit, "/headers", "127.0.0.1:30193").destinations
    assert route(kit, "/status/200", "127.0.0.1:30193").local is not None


def test_no_gateway_selects_the_pod_means_no_route(kit: Kit) -> None:
    kit.apply(edited(BOOKINFO_GATEWAY, gateway_selector(istio="other")))
    assert gateways.servers_on(snapshot(kit.rt), kit.ingress_pod(), 8080) == []
    assert route(kit, "/productpage").local is not None


def test_virtual_service_must_name_the_gateway(kit: Kit) -> None:
    kit.apply(edited(BOOKINFO_GATEWAY, vs_gateways("other")))
    assert route(kit, "/productpage").local is not None


def test_match_gateways_and_port_at_the_egress_gateway(kit: Kit) -> None:
    kit.apply(EGRESS_GATEWAY)
    kit.apply(EGRESS_VIRTUAL_SERVICE)
    decision = gateways.route_gateway(snapshot(kit.rt), kit.egress_pod(), 8080,
                                      request("/ip", "httpbin.org"))
    assert hosts_of(decision) == ["httpbin.org"]
    assert decision.match_port == 80
