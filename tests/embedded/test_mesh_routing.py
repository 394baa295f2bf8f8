"""Sidecar routing as pure functions: virtual hosts, VirtualService matches, weights, subsets.

Checks the semantics behind L3.1 (header match), L3.2 (weights), L3.4 (outbound policy) and
the NC reply for an undefined subset.
"""

from __future__ import annotations

import random
from collections import Counter

import pytest
from mesh_testkit import DR_ALL, EGRESS_VIRTUAL_SERVICE, FIFTY_V3, TEST_V2, Kit, request

from pytest_istiolab.embedded.mesh import clusters, hosts, routing
from pytest_istiolab.embedded.mesh.config import snapshot
from pytest_istiolab.embedded.mesh.model import Destination


@pytest.fixture
def kit() -> Kit:
    k = Kit()
    k.bookinfo()
    k.sleep()
    return k


def decide(kit: Kit, authority: str, port: int = 9080, ns: str = "default", **kw):  # type: ignore[no-untyped-def]
    return routing.route_outbound(snapshot(kit.rt), ns, port, request(authority=authority, **kw))


# ------------------------------------------------------------------ virtual hosts
@pytest.mark.parametrize("authority", ["reviews", "reviews:9080", "reviews.default",
                                       "reviews.default.svc",
                                       "reviews.default.svc.cluster.local:9080"])
def test_service_names_reach_the_service_default_route(kit: Kit, authority: str) -> None:
    decision = decide(kit, authority)
    assert decision.route_name == "default"
    assert decision.destinations == [Destination("reviews.default.svc.cluster.local", None, 9080)]


def test_cluster_ip_is_a_domain_of_the_service(kit: Kit) -> None:
    ip = kit.store.get(kit.rtype("", "services"), "default", "reviews")["spec"]["clusterIP"]
    assert decide(kit, f"{ip}:9080").destinations[0].host == "reviews.default.svc.cluster.local"


def test_short_name_only_works_from_the_same_namespace(kit: Kit) -> None:
    kit.namespace("other")
    assert decide(kit, "reviews", ns="other").passthrough
    assert decide(kit, "reviews.default", ns="other").route_name == "default"


def test_authority_with_another_port_is_not_this_ports_host(kit: Kit) -> None:
    assert decide(kit, "reviews:80").passthrough


def test_unknown_host_allow_any_then_registry_only(kit: Kit) -> None:
    allow = decide(kit, "httpbin.org", port=80)
    assert (allow.passthrough, allow.route_name) == (True, "allow_any")
    kit.set_mesh({"accessLogFile": "/dev/stdout",
                  "outboundTrafficPolicy": {"mode": "REGISTRY_ONLY"}})
    block = decide(kit, "httpbin.org", port=80)
    assert block.route_name == "block_all"
    assert block.local is not None and (block.local.status, block.local.body) == (502, "")


def test_service_entry_is_a_virtual_host_under_registry_only(kit: Kit) -> None:
    kit.set_mesh({"outboundTrafficPolicy": {"mode": "REGISTRY_ONLY"}})
    kit.apply("""
apiVersion: networking.istio.io/v1alpha3
kind: ServiceEntry
metadata: {name: httpbin-ext}
spec:
  hosts: [httpbin.org]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: DNS
  location: MESH_EXTERNAL
""")
    decision = decide(kit, "httpbin.org", port=80)
    assert decision.destinations == [Destination("httpbin.org", None, 80)]
    cluster = clusters.resolve(snapshot(kit.rt), "default", decision.destinations[0], 80)
    assert cluster.name == "outbound|80||httpbin.org"
    assert {e.external_host for e in cluster.endpoints} == {"httpbin.org"}


def test_http_listener_ports_come_from_services_and_entries(kit: Kit) -> None:
    ports = routing.http_listener_ports(snapshot(kit.rt))
    assert {80, 9080, 15021} <= ports
    assert 12345 not in ports


# -------------------------------------------------------------- VirtualServices
def test_jason_header_match_routes_to_v2_and_everyone_else_to_v1(kit: Kit) -> None:
    """L3.1-C02/C03: would fail if the header match were ignored (everyone would get v2 or v1)."""
    kit.apply(DR_ALL)
    kit.apply(TEST_V2)
    jason = decide(kit, "reviews:9080", headers={"end-user": "jason"})
    other = decide(kit, "reviews:9080", headers={"end-user": "jasonx"})
    anonymous = decide(kit, "reviews:9080")
    assert [d.subset for d in jason.destinations] == ["v2"]
    assert [d.subset for d in other.destinations] == ["v1"]
    assert [d.subset for d in anonymous.destinations] == ["v1"]


def test_header_match_names_are_case_insensitive(kit: Kit) -> None:
    kit.apply(TEST_V2)
    decision = decide(kit, "reviews", headers={"End-User": "jason"})
    assert decision.destinations[0].subset == "v2"


def test_first_matching_route_wins_and_no_match_is_404_nr(kit: Kit) -> None:
    kit.apply("""
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: details}
spec:
  hosts: [details]
  http:
  - name: exact-health
    match: [{uri: {exact: /health}}]
    route: [{destination: {host: details, subset: a}}]
  - match: [{uri: {prefix: /details}, method: {exact: GET}}]
    route: [{destination: {host: details, subset: b}}]
  - match: [{uri: {regex: "/d.*"}}, {queryParams: {q: {exact: "1"}}}]
    route: [{destination: {host: details, subset: c}}]
""")
    assert decide(kit, "details", path="/health").route_name == "exact-health"
    assert decide(kit, "details", path="/details/0").destinations[0].subset == "b"
    assert decide(kit, "details", path="/details/0", method="POST").destinations[0].subset == "c"
    assert decide(kit, "details", path="/x?q=1").destinations[0].subset == "c"
    missing = decide(kit, "details", path="/x")
    assert missing.local is not None
    assert (missing.local.status, missing.local.flags, missing.local.details) == \
        (404, "NR", "route_not_found")


def test_virtual_service_bound_only_to_a_gateway_does_not_apply_in_the_mesh(kit: Kit) -> None:
    kit.apply("""
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews-gw}
spec:
  hosts: [reviews]
  gateways: [some-gateway]
  http: [{route: [{destination: {host: reviews, subset: v3}}]}]
""")
    assert decide(kit, "reviews").route_name == "default"


def test_match_port_and_gateways_conditions(kit: Kit) -> None:
    kit.apply(EGRESS_VIRTUAL_SERVICE)
    decision = decide(kit, "httpbin.org", port=80)
    assert decision.destinations == [Destination(
        "istio-egressgateway.istio-system.svc.cluster.local", "httpbin", 80, 100)]


def test_resolve_short_qualifies_only_dotless_names() -> None:
    assert hosts.resolve_short("reviews", "ns1") == "reviews.ns1.svc.cluster.local"
    assert hosts.resolve_short("reviews.default", "ns1") == "reviews.default"
    assert hosts.resolve_short("*", "ns1") == "*"


# ------------------------------------------------------------------------ weights
def test_weights_split_the_traffic(kit: Kit) -> None:
    """L3.2-C02: 50/50 v1/v3, never v2 (a fixed seed keeps the test deterministic)."""
    kit.apply(FIFTY_V3)
    destinations = decide(kit, "reviews").destinations
    rng = random.Random(1234)
    counts = Counter(routing.pick_destination(destinations, rng).subset for _ in range(2000))
    assert set(counts) == {"v1", "v3"}
    assert 900 < counts["v3"] < 1100


def test_same_seed_same_sequence_zero_weight_never_chosen() -> None:
    dests = [Destination("a", "v1", None, 20), Destination("a", "v2", None, 0),
             Destination("a", "v3", None, 80)]
    first = [routing.pick_destination(dests, random.Random(5)).subset for _ in range(50)]
    second = [routing.pick_destination(dests, random.Random(5)).subset for _ in range(50)]
    assert first == second
    rng = random.Random(3)
    many = Counter(routing.pick_destination(dests, rng).subset for _ in range(1000))
    assert many["v2"] == 0 and 700 < many["v3"] < 900


def test_route_without_weight_gets_everything() -> None:
    route = {"route": [{"destination": {"host": "reviews", "subset": "v3"}}]}
    assert routing.destinations_of(route, "default") == [
        Destination("reviews.default.svc.cluster.local", "v3", None, 100)]


# -------------------------------------------------------------- clusters/subsets
def test_subset_selects_pods_by_labels(kit: Kit) -> None:
    kit.apply(DR_ALL)
    cluster = clusters.resolve(snapshot(kit.rt), "default",
                               Destination("reviews.default.svc.cluster.local", "v2"), 9080)
    assert cluster.name == "outbound|9080|v2|reviews.default.svc.cluster.local"
    assert [e.pod["metadata"]["labels"]["version"] for e in cluster.endpoints] == ["v2"]


def test_subset_no_destination_rule_defines_is_a_missing_cluster(kit: Kit) -> None:
    """An undefined subset: Envoy has no such cluster (503 NC, see clusters.py)."""
    dest = Destination("reviews.default.svc.cluster.local", "v2")
    assert not clusters.resolve(snapshot(kit.rt), "default", dest, 9080).exists
    kit.apply(DR_ALL.replace("  - {name: v2, labels: {version: v2}}\n", ""))
    assert not clusters.resolve(snapshot(kit.rt), "default", dest, 9080).exists


def test_subset_matching_no_pod_has_no_endpoints(kit: Kit) -> None:
    kit.apply(DR_ALL.replace("{version: v3}", "{version: v9}"))
    cluster = clusters.resolve(snapshot(kit.rt), "default",
                               Destination("reviews.default.svc.cluster.local", "v3"), 9080)
    assert cluster.exists and cluster.endpoints == []


def test_destination_rule_in_the_client_namespace_wins(kit: Kit) -> None:
    kit.namespace("client")
    kit.apply(DR_ALL)
    kit.apply(DR_ALL.replace("{name: reviews}", "{name: reviews, namespace: client}")
              .replace("host: reviews", "host: reviews.default.svc.cluster.local")
              .replace("{version: v2}", "{version: v1}"), namespace="client")
    snap = snapshot(kit.rt)
    dest = Destination("reviews.default.svc.cluster.local", "v2")
    from_client = clusters.resolve(snap, "client", dest, 9080)
    from_default = clusters.resolve(snap, "default", dest, 9080)
    assert from_client.endpoints[0].pod["metadata"]["labels"]["version"] == "v1"
    assert from_default.endpoints[0].pod["metadata"]["labels"]["version"] == "v2"


def test_destination_to_unknown_host_is_a_missing_cluster(kit: Kit) -> None:
    cluster = clusters.resolve(snapshot(kit.rt), "default", Destination("nope.example", None, 80),
                               80)
    assert (cluster.exists, cluster.name) == (False, "outbound|80||nope.example")
