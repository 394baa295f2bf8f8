"""Service allocation (ClusterIP/NodePort) and the Endpoints/EndpointSlice controllers.

Supports checks L1-C10 (LoadBalancer with NodePorts, EXTERNAL-IP <pending>), L2-C07 (the
http2/https NodePorts) and L9.2-C01 (Services patched to fixed NodePorts 31120-31123).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator

import pytest
from controllers_testkit import DETAILS_IMAGE, Cluster, deployment, running_cluster


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    with running_cluster() as c:
        c.settle()
        yield c


def _svc(name: str, type_: str = "ClusterIP", ports: list | None = None,
         selector: dict | None = None, cluster_ip: str | None = None) -> dict:
    spec: dict = {"type": type_, "ports": ports or [{"name": "http", "port": 9080}],
                  "selector": selector if selector is not None else {"app": name}}
    if cluster_ip:
        spec["clusterIP"] = cluster_ip
    return {"metadata": {"name": name}, "spec": spec}


def test_cluster_ips_are_unique_in_the_service_range_and_given_ones_kept(cluster: Cluster) -> None:
    ips = set()
    for i in range(20):
        svc = cluster.create("", "services", _svc(f"s{i}"), "default")
        ip = svc["spec"]["clusterIP"]
        assert ipaddress.ip_address(ip) in ipaddress.ip_network("10.96.0.0/12")
        assert svc["spec"]["clusterIPs"] == [ip]
        ips.add(ip)
    assert len(ips) == 20 and "10.96.0.1" not in ips
    given = cluster.create("", "services", _svc("fixed", cluster_ip="10.100.1.2"), "default")
    assert given["spec"]["clusterIP"] == "10.100.1.2"
    headless = cluster.create("", "services", _svc("hl", cluster_ip="None"), "default")
    assert headless["spec"]["clusterIP"] == "None"


def test_loadbalancer_gets_bindable_node_ports_and_pending_status(cluster: Cluster) -> None:
    ports = [{"name": "status-port", "port": 15021, "targetPort": 15021},
             {"name": "http2", "port": 80, "targetPort": 8080},
             {"name": "https", "port": 443, "targetPort": 8443, "nodePort": 31999}]
    svc = cluster.create("", "services", _svc("gw", "LoadBalancer", ports), "default")
    node_ports = [p["nodePort"] for p in svc["spec"]["ports"]]
    assert node_ports[2] == 31999
    assert all(30000 <= p <= 32767 for p in node_ports) and len(set(node_ports)) == 3
    for port in node_ports:
        with socket.socket() as s, pytest.raises(OSError):
            s.bind(("127.0.0.1", port))  # held for this cluster: no other process can take it
    assert svc["status"]["loadBalancer"] == {}


def test_patching_type_to_node_port_allocates_and_back_to_cluster_ip_clears(
        cluster: Cluster) -> None:
    cluster.create("", "services", _svc("prometheus", ports=[{"port": 9090}]), "default")
    srt = cluster.rt("", "services")
    cluster.store.mutate(srt, "default", "prometheus", lambda s: s["spec"].update(type="NodePort"))
    cluster.settle()
    port = cluster.get("", "services", "default", "prometheus")["spec"]["ports"][0]
    assert 30000 <= port["nodePort"] <= 32767

    def pin(s: dict) -> None:
        s["spec"]["ports"][0]["nodePort"] = 31120
    cluster.store.mutate(srt, "default", "prometheus", pin)
    cluster.settle()
    assert cluster.get("", "services", "default", "prometheus")["spec"]["ports"][0][
        "nodePort"] == 31120
    cluster.store.mutate(srt, "default", "prometheus", lambda s: s["spec"].update(type="ClusterIP"))
    cluster.settle()
    assert "nodePort" not in cluster.get("", "services", "default", "prometheus")["spec"][
        "ports"][0]


def test_endpoints_list_ready_pods_with_named_target_ports(cluster: Cluster) -> None:
    dep = deployment("httpbin", "httpbin", "docker.io/mccutchen/go-httpbin:v2.15.0", 2,
                     ports=[{"name": "http", "containerPort": 8080}])
    cluster.create("apps", "deployments", dep, "default")
    cluster.create("", "services", _svc("httpbin", ports=[
        {"name": "http", "port": 8000, "targetPort": "http"}]), "default")
    cluster.settle()
    ep = cluster.get("", "endpoints", "default", "httpbin")
    (subset,) = ep["subsets"]
    assert subset["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]
    pod_ips = sorted(p["status"]["podIP"] for p in cluster.pods("default", "httpbin-"))
    assert sorted(a["ip"] for a in subset["addresses"]) == pod_ips
    assert all(a["targetRef"]["kind"] == "Pod" for a in subset["addresses"])
    (eps,) = [s for s in cluster.items("discovery.k8s.io", "endpointslices", "default")
              if s["metadata"]["labels"]["kubernetes.io/service-name"] == "httpbin"]
    assert sorted(e["addresses"][0] for e in eps["endpoints"]) == pod_ips
    assert eps["ports"][0]["port"] == 8080


def test_endpoints_follow_pod_deletion_and_service_deletion(cluster: Cluster) -> None:
    cluster.create("apps", "deployments", deployment("details", "details", DETAILS_IMAGE, 1),
                   "default")
    cluster.create("", "services", _svc("details"), "default")
    cluster.settle()
    before = cluster.get("", "endpoints", "default", "details")["subsets"][0]["addresses"][0]["ip"]
    pod = cluster.pods("default", "details-")[0]["metadata"]["name"]
    cluster.store.delete(cluster.rt("", "pods"), "default", pod)
    cluster.settle()
    after = cluster.get("", "endpoints", "default", "details")["subsets"][0]["addresses"]
    assert [a["ip"] for a in after] != [before] and len(after) == 1
    cluster.store.delete(cluster.rt("", "services"), "default", "details")
    cluster.settle()
    assert cluster.store.try_get(cluster.rt("", "endpoints"), "default", "details") is None


def test_unready_pods_are_not_ready_addresses(cluster: Cluster) -> None:
    cluster.create("apps", "deployments", deployment("nginx", "nginx", "nginx:1.27", 1),
                   "default")
    cluster.create("", "services", _svc("nginx"), "default")
    cluster.settle()
    subsets = cluster.get("", "endpoints", "default", "nginx")["subsets"]
    assert all("addresses" not in s for s in subsets)


def test_a_node_port_in_use_is_rejected_like_kube_apiserver(cluster: Cluster) -> None:
    from pytest_istiolab.embedded.store import StoreError

    cluster.create("", "services", _svc("a", "NodePort", [{"port": 80, "nodePort": 31123}]),
                   "default")
    with pytest.raises(StoreError) as err:
        cluster.create("", "services", _svc("b", "NodePort", [{"port": 80, "nodePort": 31123}]),
                       "default")
    assert err.value.code == 422
    assert err.value.message == ('Service "b" is invalid: spec.ports[0].nodePort: Invalid '
                                 "value: 31123: provided port is already allocated")
