"""Istio 1.27's native sidecars on the embedded cluster (issue 16, "Versions").

With ``ENABLE_NATIVE_SIDECARS=auto`` (1.27's default) and kubelets >= 1.33 (the embedded node
reports v1.33.1) the injector puts ``istio-proxy`` into ``initContainers`` after ``istio-init``
with ``restartPolicy: Always``; the kubelet model runs it beside the app, ``kubectl get pods``
counts it in READY, and the data plane, ``istioctl`` and the metrics find it there.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from controllers_testkit import Cluster, deployment, running_cluster

from pytest_istiolab.embedded.api.printers import pod_row
from pytest_istiolab.embedded.injection import native_by_default
from pytest_istiolab.embedded.install.profiles import resolve
from pytest_istiolab.embedded.istioctl import StoreBackend, main
from pytest_istiolab.embedded.mesh.topology import has_sidecar
from pytest_istiolab.embedded.podspec import proxy_of

PRODUCTPAGE = "docker.io/istio/examples-bookinfo-productpage-v1:1.20.3"
NATIVE = "1.27.9"
CLASSIC = "1.26.0"


def istioctl(cluster: Cluster, version: str, *args: str) -> str:
    out, err = io.StringIO(), io.StringIO()
    rc = main(["--istiolab-client-version", version, *args], None, out, err,
              StoreBackend(cluster.store))
    assert rc == 0, err.getvalue()
    cluster.settle()
    return out.getvalue()


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    with running_cluster() as c:
        c.settle()
        yield c


def productpage(cluster: Cluster, version: str, annotations: dict[str, str] | None = None,
                ) -> dict:
    istioctl(cluster, version, "install", "--set", "profile=demo", "-y")
    cluster.namespace("bookinfo", {"istio-injection": "enabled"})
    dep = deployment("productpage-v1", "productpage", PRODUCTPAGE,
                     ports=[{"containerPort": 9080}])
    dep["spec"]["template"]["metadata"]["annotations"] = annotations or {}
    cluster.create("apps", "deployments", dep, "bookinfo")
    cluster.settle()
    (pod,) = cluster.pods("bookinfo", "productpage-v1-")
    return pod


def names(pod: dict, kind: str) -> list[str]:
    return [c["name"] for c in pod["spec"].get(kind) or []]


def test_1_27_injects_istio_proxy_as_a_restartable_init_container(cluster: Cluster) -> None:
    pod = productpage(cluster, NATIVE)
    assert names(pod, "initContainers") == ["istio-init", "istio-proxy"]
    assert names(pod, "containers") == ["productpage"]
    proxy = pod["spec"]["initContainers"][1]
    assert proxy["restartPolicy"] == "Always"
    assert proxy["image"] == f"docker.io/istio/proxyv2:{NATIVE}"
    assert proxy["startupProbe"]["httpGet"]["path"] == "/healthz/ready"
    assert proxy["lifecycle"]["preStop"]["exec"]["command"] == [
        "pilot-agent", "request", "--debug-port=15020", "POST", "drain"]
    status = json.loads(pod["metadata"]["annotations"]["sidecar.istio.io/status"])
    assert status["initContainers"] == ["istio-init", "istio-proxy"]
    assert status["containers"] is None
    assert pod["metadata"]["annotations"]["kubectl.kubernetes.io/default-container"] == \
        "productpage"


def test_the_kubelet_runs_the_native_sidecar_beside_the_app(cluster: Cluster) -> None:
    pod = productpage(cluster, NATIVE)
    init = {s["name"]: s for s in pod["status"]["initContainerStatuses"]}
    assert init["istio-init"]["state"]["terminated"]["reason"] == "Completed"
    sidecar = init["istio-proxy"]
    assert "running" in sidecar["state"] and sidecar["started"] and sidecar["ready"]
    assert [s["name"] for s in pod["status"]["containerStatuses"]] == ["productpage"]
    assert pod_row(pod, 0.0)[1:3] == ["2/2", "Running"], "kubectl counts the sidecar in READY"
    assert has_sidecar(pod) and proxy_of(pod) is sidecar_spec(pod)


def sidecar_spec(pod: dict) -> dict:
    return pod["spec"]["initContainers"][1]


def test_ready_counts_a_started_but_unready_native_sidecar_as_not_ready() -> None:
    pod = {"metadata": {"name": "p"}, "spec": {
        "initContainers": [{"name": "istio-init"},
                           {"name": "istio-proxy", "restartPolicy": "Always"}],
        "containers": [{"name": "app"}]}, "status": {
        "phase": "Running",
        "initContainerStatuses": [
            {"name": "istio-init", "ready": True, "state": {"terminated": {"exitCode": 0}}},
            {"name": "istio-proxy", "ready": False, "started": True,
             "state": {"running": {}}}],
        "containerStatuses": [{"name": "app", "ready": True, "state": {"running": {}}}]}}
    assert pod_row(pod, 0.0)[1:3] == ["1/2", "Running"]


def test_1_26_keeps_the_classic_sidecar(cluster: Cluster) -> None:
    pod = productpage(cluster, CLASSIC)
    assert names(pod, "initContainers") == ["istio-init"]
    assert names(pod, "containers") == ["productpage", "istio-proxy"]
    assert pod_row(pod, 0.0)[1] == "2/2"


@pytest.mark.parametrize(("version", "flag", "native"), [
    (CLASSIC, "true", True), (NATIVE, "false", False)])
def test_the_pod_annotation_overrides_the_default(cluster: Cluster, version: str, flag: str,
                                                  native: bool) -> None:
    pod = productpage(cluster, version, {"sidecar.istio.io/nativeSidecar": flag})
    assert ("istio-proxy" in names(pod, "initContainers")) is native
    assert ("istio-proxy" in names(pod, "containers")) is not native


def test_auto_needs_every_kubelet_at_1_33() -> None:
    assert native_by_default(NATIVE, ["v1.33.1"])
    assert not native_by_default(NATIVE, ["v1.33.1", "v1.32.5"])
    assert not native_by_default(NATIVE, [])
    assert not native_by_default(CLASSIC, ["v1.33.1"])


def test_an_old_node_turns_native_sidecars_off(cluster: Cluster) -> None:
    node = cluster.items("", "nodes")[0]["metadata"]["name"]
    cluster.store.mutate(cluster.rt("", "nodes"), None, node, lambda n: n["status"][
        "nodeInfo"].update(kubeletVersion="v1.32.5"))
    pod = productpage(cluster, NATIVE)
    assert names(pod, "containers") == ["productpage", "istio-proxy"]


def test_kube_inject_through_the_cluster_injects_native_sidecars(cluster: Cluster,
                                                                   tmp_path: Path) -> None:
    istioctl(cluster, NATIVE, "install", "--set", "profile=demo", "-y")
    source = tmp_path / "dep.yaml"
    source.write_text(json.dumps(deployment("web", "web", PRODUCTPAGE)))
    text = istioctl(cluster, NATIVE, "kube-inject", "-f", str(source))
    assert "restartPolicy: Always" in text
    assert "containers: null" not in text


def test_proxy_status_and_version_list_native_sidecars(cluster: Cluster) -> None:
    pod = productpage(cluster, NATIVE)
    listed = istioctl(cluster, NATIVE, "proxy-status")
    row = next(line for line in listed.splitlines() if line.startswith(pod["metadata"]["name"]))
    assert row.split()[-1] == NATIVE
    assert f"data plane version: {NATIVE} (3 proxies)" in istioctl(cluster, NATIVE, "version")


def test_installing_1_27_no_longer_says_native_sidecars_are_not_modelled() -> None:
    assert not any("native" in n for n in resolve("demo", {}, None, NATIVE).notices)
