"""Reinstall side effects (issue 16), under the realism profile: what Lab 3.4's mesh-wide switch
(demo -> default, and its cleanup back to demo) does to a cluster, as a real one does it.

* Only demo defines the ingress gateway's ``tcp`` (31400) and ``tls`` (15443) ports: the
  default profile's apply drops them, the way back to demo adds them again and the API
  server hands out new NodePorts; ports both profiles have keep theirs.
* The profiles render different pod templates for istiod (pilot resources, trace sampling)
  and the gateways (proxy resources, container ports): a switch rolls them (new pods, by the
  Deployments' surge strategy, each Ready only after its readiness delay and in Endpoints only
  then); the same profile again (a mesh-config change, as Lab 9.1's) replaces no pod.
* The way back to demo rolls to demo's first ReplicaSet again (same template, same hash).

istioctl runs as its own process against an :class:`EmbeddedCluster`, as the suite runs it.
"""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_istiolab.embedded import EmbeddedCluster
from pytest_istiolab.embedded.realism import Realism
from pytest_istiolab.kube import Kube
from pytest_istiolab.kube.status import is_pod_ready
from pytest_istiolab.timeouts import EMBEDDED

ISTIOCTL_TIMEOUT = 120.0  # seconds for one `istioctl install` (it waits for the rollouts)
NS = "istio-system"
GATEWAY = "istio-ingressgateway"
DEMO_ONLY = {"tcp", "tls"}
REALISM = Realism(seed=16, ready_delay=(0.4, 0.8), write_429=0.0, write_500=0.0)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[EmbeddedCluster]:
    with EmbeddedCluster(tmp_path, seed=16, realism=REALISM) as started:
        yield started


def install(cluster: EmbeddedCluster, profile: str, *sets: str) -> None:
    argv = [str(cluster.istioctl_of("1.26.0")), "install", "-y", "--set", f"profile={profile}"]
    for value in sets:
        argv += ["--set", value]
    res = subprocess.run(argv, capture_output=True, text=True, timeout=ISTIOCTL_TIMEOUT,
                         stdin=subprocess.DEVNULL)
    assert res.returncode == 0, res.stderr


def node_ports(cluster: EmbeddedCluster) -> dict[str, int]:
    store = cluster.runtime.store
    svc = store.try_get(store.resource_type("", "services"), NS, GATEWAY)
    assert svc is not None
    return {p["name"]: p["nodePort"] for p in svc["spec"]["ports"]}


def pods(cluster: EmbeddedCluster, app: str) -> set[str]:
    return {p["metadata"]["name"] for p in cluster.runtime.store.by_kind("", "pods", NS)
            if p["metadata"].get("labels", {}).get("app") == app
            and not p["metadata"].get("deletionTimestamp")}


def rolled_out(cluster: EmbeddedCluster) -> None:
    """What the suite waits for after a reinstall (MeshWide): no old pod left serving."""
    kube = Kube(cluster.kubeconfig, "embedded", EMBEDDED)
    try:
        kube.wait_for_rollouts(NS)
    finally:
        kube.close()


def test_default_drops_tcp_and_tls_and_demo_brings_them_back_on_new_node_ports(
        cluster: EmbeddedCluster) -> None:
    install(cluster, "demo")
    demo = node_ports(cluster)
    assert set(demo) == {"status-port", "http2", "https", *DEMO_ONLY}
    install(cluster, "default")
    default = node_ports(cluster)
    assert set(default) == {"status-port", "http2", "https"}, "only demo defines tcp and tls"
    assert default == {k: v for k, v in demo.items() if k not in DEMO_ONLY}, \
        "ports both profiles define keep their NodePorts"
    install(cluster, "demo")
    back = node_ports(cluster)
    assert {k: back[k] for k in default} == default
    for name in DEMO_ONLY:
        assert back[name] != demo[name], f"{name} came back on a newly allocated NodePort"
        assert 30000 <= back[name] <= 32767


def test_a_profile_change_replaces_istiod_and_the_gateway_pods(
        cluster: EmbeddedCluster) -> None:
    install(cluster, "demo")
    before = {app: pods(cluster, app) for app in ("istiod", GATEWAY)}
    install(cluster, "default")
    rolled_out(cluster)
    between = {app: pods(cluster, app) for app in ("istiod", GATEWAY)}
    for app in before:
        assert between[app] and not between[app] & before[app], \
            f"{app}: demo's pods gone, the default profile's template runs ({between[app]})"
    install(cluster, "demo")
    rolled_out(cluster)
    for app in before:
        after = pods(cluster, app)
        assert after and not after & (before[app] | between[app]), f"{app} rolled again"
        # demo's template again: demo's first ReplicaSet (its pod-template-hash) runs them
        assert {n.rsplit("-", 1)[0] for n in after} == {n.rsplit("-", 1)[0]
                                                        for n in before[app]}


def test_the_same_profile_again_replaces_no_pod(cluster: EmbeddedCluster) -> None:
    install(cluster, "demo")
    before = {app: pods(cluster, app) for app in ("istiod", GATEWAY, "istio-egressgateway")}
    install(cluster, "demo", "meshConfig.accessLogEncoding=JSON")  # Lab 9.1's reinstall
    install(cluster, "demo")
    assert {app: pods(cluster, app) for app in before} == before


def test_new_gateway_pods_are_not_ready_nor_in_endpoints_at_once(
        cluster: EmbeddedCluster) -> None:
    install(cluster, "demo")
    old = pods(cluster, GATEWAY)
    store = cluster.runtime.store
    seen: list[tuple[str, bool, frozenset[str]]] = []  # (new pod, Ready, Endpoints addresses)
    lock = threading.Lock()

    def record(event: object) -> None:
        with lock:
            gateway_pods = [p for p in store.by_kind("", "pods", NS)
                            if p["metadata"].get("labels", {}).get("app") == GATEWAY
                            and p["metadata"]["name"] not in old
                            and (p.get("status") or {}).get("phase") == "Running"]
            eps = store.try_get(store.resource_type("", "endpoints"), NS, GATEWAY) or {}
            addresses = frozenset(a["targetRef"]["name"] for s in eps.get("subsets") or []
                                  for a in s.get("addresses") or [])
            seen.extend((p["metadata"]["name"], is_pod_ready(p), addresses)
                        for p in gateway_pods)

    unsubscribe = store.subscribe(record)
    try:
        install(cluster, "default")
    finally:
        unsubscribe()
    rolled_out(cluster)
    new = pods(cluster, GATEWAY)
    assert new and not new & old
    starting = [s for s in seen if s[0] in new and not s[1]]
    assert starting, "each new gateway pod ran a while before it was Ready"
    assert all(s[0] not in s[2] for s in starting), "an unready pod is in no Endpoints"
    assert any(s[2] == old for s in starting), \
        "meanwhile the old gateway pod alone served (maxSurge 100%: it goes once the new one is" \
        " Ready)"
    eps = store.try_get(store.resource_type("", "endpoints"), NS, GATEWAY) or {}
    assert {a["targetRef"]["name"] for s in eps.get("subsets") or []
            for a in s.get("addresses") or []} == new
