"""The sample manifests agree with the workload models, and the labs' files route as documented.

Checks L2-C01/C02 facts (names, ports, service accounts, images 1.20.3), L3.1/L3.2 routing
with the real files, and that every container image is one the embedded cluster models.
"""

from __future__ import annotations

from collections import Counter

import pytest
import yaml
from mesh_testkit import MANIFESTS, Kit

from pytest_istiolab import traffic
from pytest_istiolab.embedded.mesh import request_from_pod
from pytest_istiolab.embedded.mesh.headers import Headers
from pytest_istiolab.embedded.workloads import app_for
from pytest_istiolab.embedded.workloads.kinds import curl_version, workload_kind

SAMPLES = ("samples/bookinfo/platform/kube/bookinfo.yaml", "samples/httpbin/httpbin.yaml",
           "samples/sleep/sleep.yaml")
NETWORKING = "samples/bookinfo/networking/"


def docs(path: str) -> list[dict]:
    return [d for d in yaml.safe_load_all((MANIFESTS / path).read_text()) if d]


def test_bookinfo_objects_in_the_order_kubectl_prints_them() -> None:
    """L2-C01: the 14 lines of ``kubectl apply -f bookinfo.yaml``."""
    assert [(d["kind"], d["metadata"]["name"]) for d in docs(SAMPLES[0])] == [
        ("Service", "details"), ("ServiceAccount", "bookinfo-details"),
        ("Deployment", "details-v1"), ("Service", "ratings"),
        ("ServiceAccount", "bookinfo-ratings"), ("Deployment", "ratings-v1"),
        ("Service", "reviews"), ("ServiceAccount", "bookinfo-reviews"),
        ("Deployment", "reviews-v1"), ("Deployment", "reviews-v2"), ("Deployment", "reviews-v3"),
        ("Service", "productpage"), ("ServiceAccount", "bookinfo-productpage"),
        ("Deployment", "productpage-v1")]
    for doc in docs(SAMPLES[0]):
        if doc["kind"] == "Service":
            assert [p["port"] for p in doc["spec"]["ports"]] == [9080]
        if doc["kind"] == "Deployment":
            container = doc["spec"]["template"]["spec"]["containers"][0]
            assert container["image"].endswith(":1.20.3")
            assert doc["spec"]["template"]["metadata"]["labels"]["version"] == \
                doc["metadata"]["name"].rsplit("-", 1)[1]


@pytest.mark.parametrize("path", SAMPLES)
def test_every_container_is_modelled_and_listens_where_declared(path: str) -> None:
    for doc in docs(path):
        if doc["kind"] != "Deployment":
            continue
        pod = {"metadata": {"name": "p"}, "spec": doc["spec"]["template"]["spec"]}
        for container in pod["spec"]["containers"]:
            assert workload_kind(container["image"]) is not None, container["image"]
            for port in container.get("ports") or []:
                assert app_for(pod, port["containerPort"]) is not None


def test_httpbin_service_targets_go_httpbin_port() -> None:
    service = next(d for d in docs(SAMPLES[1]) if d["kind"] == "Service")
    deployment = next(d for d in docs(SAMPLES[1]) if d["kind"] == "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert (service["spec"]["ports"][0]["port"], service["spec"]["ports"][0]["targetPort"]) == \
        (8000, 8080)
    assert container["image"] == "docker.io/mccutchen/go-httpbin:v2.15.0"


def test_sleep_runs_curl_forever() -> None:
    container = next(d for d in docs(SAMPLES[2]) if d["kind"] == "Deployment")[
        "spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["/bin/sleep", "infinity"]
    assert curl_version(container["image"]) == "8.14.1"


@pytest.fixture
def kit() -> Kit:
    k = Kit()
    for path in SAMPLES:
        k.deploy(path)
    k.apply((MANIFESTS / NETWORKING / "destination-rule-all.yaml").read_text())
    return k


def versions(kit: Kit, count: int, cookie: str = "") -> Counter[str | None]:
    sleep = kit.get_pod("sleep")
    headers = {"cookie": cookie} if cookie else {}
    return Counter(traffic.reviews_version(request_from_pod(
        kit.rt, sleep, "GET", "http://productpage:9080/productpage", Headers(headers)).text)
        for _ in range(count))


def test_all_v1_then_jason_on_v2(kit: Kit) -> None:
    """L3.1-C01..C03 with the sample files."""
    kit.apply((MANIFESTS / NETWORKING / "virtual-service-all-v1.yaml").read_text())
    assert versions(kit, 10) == Counter({"v1": 10})
    kit.apply((MANIFESTS / NETWORKING / "virtual-service-reviews-test-v2.yaml").read_text())
    login = request_from_pod(kit.rt, kit.get_pod("sleep"), "POST", "http://productpage:9080/login",
                             _form_headers(), b"username=jason")
    cookie = (login.headers.get("set-cookie") or "").split(";")[0]
    assert versions(kit, 5, cookie) == Counter({"v2": 5})
    assert versions(kit, 5) == Counter({"v1": 5})


def test_fifty_fifty_then_all_v3(kit: Kit) -> None:
    """L3.2-C02/C03: about half v3, never v2; then only v3."""
    kit.apply((MANIFESTS / NETWORKING / "virtual-service-all-v1.yaml").read_text())
    kit.apply((MANIFESTS / NETWORKING / "virtual-service-reviews-50-v3.yaml").read_text())
    split = versions(kit, 100)
    assert set(split) == {"v1", "v3"} and 30 <= split["v3"] <= 70
    kit.apply((MANIFESTS / NETWORKING / "virtual-service-reviews-v3.yaml").read_text())
    assert versions(kit, 10) == Counter({"v3": 10})


def _form_headers() -> Headers:
    return Headers({"content-type": "application/x-www-form-urlencoded",
                    "referer": "http://productpage:9080/productpage"})
