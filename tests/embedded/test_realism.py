"""The realism profile (``--istio-embedded-realism=on``): the embedded cluster as slow and unkind
as a real one, one test per behaviour (issue 16), each beside the same step without the profile.

Delays are real time here (short spans set per test); the tests poll, never sleep.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from mesh_testkit import BOOKINFO_GATEWAY, Kit

from pytest_istiolab.embedded import EmbeddedCluster
from pytest_istiolab.embedded.listeners import ListenerManager
from pytest_istiolab.embedded.mesh import request_from_pod
from pytest_istiolab.embedded.mesh.config import fully_pushed
from pytest_istiolab.embedded.realism import Realism
from pytest_istiolab.errors import ClusterError
from pytest_istiolab.kube import Kube
from pytest_istiolab.timeouts import EMBEDDED
from pytest_istiolab.waiting import poll_until

TEAPOT = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: httpbin-teapot}
spec:
  hosts: [httpbin]
  http:
  - fault: {abort: {httpStatus: 418, percentage: {value: 100}}}
    route: [{destination: {host: httpbin}}]
"""
CLIENTS = 8
QUIET = {"write_429": 0.0, "write_500": 0.0}


def clients(kit: Kit) -> list[dict]:
    return [kit.pod(f"client{i}", "default", "curlimages/curl:8.14.1", {"app": f"client{i}"})
            for i in range(CLIENTS)]


def statuses(kit: Kit, pods: list[dict]) -> list[int]:
    return [request_from_pod(kit.rt, pod, "GET", "http://httpbin:8000/status/200").status
            for pod in pods]


def test_each_proxy_gets_new_config_after_its_own_delay() -> None:
    kit = Kit(seed=5)
    kit.httpbin()
    kit.rt.realism = Realism(seed=5, push_delay=(0.5, 1.5), **QUIET)
    pods = clients(kit)
    assert statuses(kit, pods) == [200] * CLIENTS
    kit.apply(TEAPOT)
    seen = [statuses(kit, pods)]
    assert seen[0] == [200] * CLIENTS, "no proxy has the VirtualService at once"
    assert not fully_pushed(kit.rt)

    def all_teapots() -> bool:
        seen.append(statuses(kit, pods))
        return seen[-1] == [418] * CLIENTS

    assert poll_until(all_teapots, timeout=5, interval=0.02)
    assert any(200 in s and 418 in s for s in seen), \
        f"some proxies routed by the old config while others had the new one: {seen}"
    assert poll_until(lambda: fully_pushed(kit.rt), timeout=2, interval=0.02)


def test_without_the_profile_config_is_in_effect_everywhere_at_once() -> None:
    kit = Kit(seed=5)
    kit.httpbin()
    pods = clients(kit)
    kit.apply(TEAPOT)
    assert statuses(kit, pods) == [418] * CLIENTS
    assert fully_pushed(kit.rt)


def test_the_same_seed_draws_the_same_delays() -> None:
    one, other = Realism(seed=9), Realism(seed=9)
    assert one.push_delay_of("default/a", 3) == other.push_delay_of("default/a", 3)
    assert one.push_delay_of("default/a", 3) != one.push_delay_of("default/b", 3)
    assert all(0.05 <= one.push_delay_of(f"p{i}", 1) <= 2.0 for i in range(200))


@pytest.fixture
def kit_listening() -> Iterator[tuple[Kit, ListenerManager]]:
    kit = Kit(seed=3, free_node_ports=True)
    kit.bookinfo()
    kit.rt.realism = Realism(seed=3, push_delay=(0.6, 1.0), **QUIET)
    manager = ListenerManager(kit.rt).start()
    yield kit, manager
    manager.stop()
    kit.rt.later.stop()


def refused(port: int) -> bool:
    try:
        httpx.get(f"http://127.0.0.1:{port}/productpage", timeout=2)
    except httpx.ConnectError:
        return True
    return False


def test_a_gateway_listens_only_once_its_gateway_is_pushed(
        kit_listening: tuple[Kit, ListenerManager]) -> None:
    kit, listeners = kit_listening
    port = kit.node_port("istio-ingressgateway", "http2")
    kit.apply(BOOKINFO_GATEWAY)
    assert port not in listeners.ports and refused(port), \
        "connection refused until the Gateway reached the gateway pod"
    assert poll_until(lambda: not refused(port), timeout=3, interval=0.05)
    # the VirtualService is a later version than the Gateway: 404 until it is pushed too
    assert poll_until(lambda: httpx.get(f"http://127.0.0.1:{port}/productpage",
                                        timeout=5).status_code == 200, timeout=3, interval=0.05)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[EmbeddedCluster]:
    with EmbeddedCluster(tmp_path, seed=11, realism=Realism(
            seed=11, ready_delay=(0.5, 1.0), watch_lifetime=(0.5, 1.0), **QUIET)) as c:
        yield c


@pytest.fixture
def kube(cluster: EmbeddedCluster) -> Iterator[Kube]:
    k = Kube(cluster.kubeconfig, "embedded", EMBEDDED)
    yield k
    k.close()


POD = {"apiVersion": "v1", "kind": "Pod",
       "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
       "spec": {"containers": [{"name": "web", "image": "docker.io/mccutchen/go-httpbin:v2.15.0",
                                "ports": [{"containerPort": 8080}]}]}}
SERVICE = {"apiVersion": "v1", "kind": "Service",
           "metadata": {"name": "web", "namespace": "default"},
           "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}}


def _ready(pod: dict | None) -> bool:
    conditions = ((pod or {}).get("status") or {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def test_pods_turn_ready_later_and_endpoints_follow(kube: Kube) -> None:
    kube.apply([SERVICE, POD])
    assert poll_until(lambda: ((kube.get("v1", "Pod", "web") or {}).get("status") or {})
                      .get("phase") == "Running", timeout=5, interval=0.02)
    pod = kube.get("v1", "Pod", "web")
    assert not _ready(pod), "Running, but not Ready yet (its readiness probe has not passed)"
    subsets = (kube.get("v1", "Endpoints", "web") or {}).get("subsets") or []
    assert [a for s in subsets for a in s.get("addresses") or []] == []
    assert [a for s in subsets for a in s.get("notReadyAddresses") or []]
    assert poll_until(lambda: _ready(kube.get("v1", "Pod", "web")), timeout=5, interval=0.02)
    assert poll_until(lambda: any(s.get("addresses") for s in (kube.get(
        "v1", "Endpoints", "web") or {}).get("subsets") or []), timeout=5, interval=0.02)


def test_a_watch_ends_on_its_own_and_the_wait_resumes_it(cluster: EmbeddedCluster,
                                                         kube: Kube) -> None:
    started = time.monotonic()
    with httpx.stream("GET", f"{cluster.url}/api/v1/namespaces/default/pods",
                      params={"watch": "true"}, timeout=10) as response:
        for _ in response.iter_lines():
            pass
    assert time.monotonic() - started < 3, "the server ended the watch (lifetime 0.5-1 s)"
    lists = []
    original = kube._list

    def counting(*args: object) -> object:
        lists.append(args)
        return original(*args)  # type: ignore[arg-type]

    kube._list = counting  # type: ignore[method-assign]
    cluster.runtime.later.call(2.5, lambda: kube.apply([POD]) and None)
    state = kube.watch_until("v1", "Pod", "default", None, lambda s: "web" in s, timeout=8)
    assert state is not None and "web" in state
    assert len(lists) == 1, "streams that ended were resumed from their resourceVersion"


def test_writes_of_the_suites_client_get_429_and_500_and_are_retried(tmp_path: Path) -> None:
    realism = Realism(seed=2, write_429=0.3, write_500=0.2, retry_after=0)
    with EmbeddedCluster(tmp_path, seed=2, realism=realism) as cluster:
        raw = httpx.Client(base_url=cluster.url, headers={
            "User-Agent": "OpenAPI-Generator/37.0.2/python"})
        codes = {raw.post("/api/v1/namespaces", json={"metadata": {"name": f"n{i}"}}).status_code
                 for i in range(40)}
        assert {429, 500, 201} <= codes
        throttled = next(r for r in (raw.post("/api/v1/namespaces", json={
            "metadata": {"name": f"m{i}"}}) for i in range(40)) if r.status_code == 429)
        assert throttled.headers["Retry-After"] == "0"
        assert throttled.json()["reason"] == "TooManyRequests"
        kubectl = httpx.Client(base_url=cluster.url, headers={
            "User-Agent": "kubectl/v1.37.0 (linux/amd64)"})
        spared = {kubectl.post("/api/v1/namespaces", json={"metadata": {
            "name": f"k{i}"}}).status_code for i in range(20)}
        assert spared == {201}, "kubectl and istioctl retry by themselves: spared"
        before = dict(realism.answered)
        kube = Kube(cluster.kubeconfig, "embedded", EMBEDDED)
        try:
            kube.apply([{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {
                "name": f"c{i}", "namespace": "default"}, "data": {"i": str(i)}}
                for i in range(12)])
        finally:
            kube.close()
        assert sum(realism.answered.values()) > sum(before.values()), "faults were answered"
        assert len(cluster.runtime.store.by_kind("", "configmaps", "default")) >= 12


def test_without_the_profile_writes_and_watches_are_kind(tmp_path: Path) -> None:
    with EmbeddedCluster(tmp_path, seed=2) as cluster:
        client = httpx.Client(base_url=cluster.url, headers={
            "User-Agent": "OpenAPI-Generator/37.0.2/python"})
        codes = {client.post("/api/v1/namespaces", json={"metadata": {
            "name": f"n{i}"}}).status_code for i in range(40)}
        assert codes == {201}
        assert cluster.runtime.realism is None


def test_a_proxy_with_old_endpoints_gets_refused_by_the_pod_a_rollout_removed() -> None:
    """Rollouts: until the new Endpoints reach a client's sidecar it still sends to the old pod's
    address, and that pod is gone: the connection is refused, 503 ``UF`` after the default
    retries (``URX``), then the new pod answers once the push arrived."""
    kit = Kit(seed=8)
    old = kit.httpbin()
    client = kit.pod("client", "default", "curlimages/curl:8.14.1", {"app": "client"})
    kit.rt.realism = Realism(seed=8, push_delay=(0.8, 1.2), **QUIET)
    url = "http://httpbin:8000/status/200"
    assert request_from_pod(kit.rt, client, "GET", url).status == 200
    kit.delete("", "pods", old["metadata"]["name"])
    kit.workload("httpbin", "default", "docker.io/mccutchen/go-httpbin:v2.15.0", 8080, None,
                 version="v2")
    stale = request_from_pod(kit.rt, client, "GET", url)
    assert (stale.status, stale.response_flags) == (503, "UF,URX"), \
        "the old pod's address refuses: the sidecar's retries find no other endpoint"
    assert b"connection failure" in stale.body
    assert poll_until(lambda: request_from_pod(kit.rt, client, "GET", url).status == 200,
                      timeout=5, interval=0.02)


def test_without_the_profile_a_rollout_is_seen_at_once() -> None:
    kit = Kit(seed=8)
    old = kit.httpbin()
    client = kit.pod("client", "default", "curlimages/curl:8.14.1", {"app": "client"})
    kit.delete("", "pods", old["metadata"]["name"])
    kit.workload("httpbin", "default", "docker.io/mccutchen/go-httpbin:v2.15.0", 8080, None,
                 version="v2")
    assert request_from_pod(kit.rt, client, "GET", "http://httpbin:8000/status/200").status == 200


WIDGETS = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "metadata": {"name": "widgets.example.com"},
           "spec": {"group": "example.com", "scope": "Namespaced",
                    "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
                    "versions": [{"name": "v1", "served": True, "storage": True, "schema": {
                        "openAPIV3Schema": {"type": "object", "properties": {"spec": {
                            "type": "object",
                            "properties": {"hosts": {"type": "array",
                                                     "items": {"type": "string"}}}}}}}}]}}


def _widget(spec: dict) -> dict:
    return {"apiVersion": "example.com/v1", "kind": "Widget",
            "metadata": {"name": "w", "namespace": "default"}, "spec": spec}


def test_an_apply_that_meets_a_500_is_retried_but_a_rejected_body_is_not(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Lab 3's misspelt-field check under realism: server-side apply answers the schema
    rejection with a 500 (as kube-apiserver does); the client took it for an etcd timeout and
    retried it five times, so a 429 or 500 drawn for the last attempt replaced the message."""
    realism = Realism(seed=5, **QUIET, retry_after=0)
    with EmbeddedCluster(tmp_path, seed=5, realism=realism) as cluster:
        kube = Kube(cluster.kubeconfig, "embedded", EMBEDDED)
        try:
            kube.apply([WIDGETS])  # served at once (the store registers it on create)
            caplog.set_level("INFO", logger="pytest_istiolab.kube.client")
            realism.force_write_faults(500)
            kube.apply([_widget({"hosts": ["a"]})])  # the forced 500, then created
            assert realism.answered == {500: 1}
            assert len(_retries(caplog)) == 1
            assert (kube.get("example.com/v1", "Widget", "w", "default") or {}).get("spec") \
                == {"hosts": ["a"]}

            caplog.clear()
            realism.force_write_faults(500, 429)
            with pytest.raises(ClusterError, match=r"failed to create typed patch object .*"
                               r"\.spec\.hosst: field not declared in schema"):
                kube.apply([_widget({"hosst": ["a"]})])
            assert len(_retries(caplog)) == 2, "the forced 500 and 429 retried, not the 500 " \
                "that rejects the body"
            assert realism._forced == []

            caplog.clear()
            realism.force_write_faults(500)
            with pytest.raises(ClusterError, match="metadata.name: Invalid value"):
                kube.apply([{"apiVersion": "v1", "kind": "ConfigMap",
                             "metadata": {"name": "Bad_Name", "namespace": "default"}}])
            assert len(_retries(caplog)) == 1, "a 422 is not retried"
        finally:
            kube.close()


def _retries(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "retrying" in r.getMessage()]
