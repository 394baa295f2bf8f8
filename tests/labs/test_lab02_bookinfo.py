"""Lab 2 — Installing the Bookinfo sample (manual: "Bookinfo 示例程序安装"). Checks L2-C01..L2-C08.

The manual deploys into ``default``; the suite uses a namespace of its own per lab (labelled
``istio-injection=enabled`` the same way) so labs never see each other's objects.
Istio 1.26 differs from the manual's captured output: bookinfo images are 1.20.3 and the
``describe`` output is from an older install (D-05), so only its stable fields are asserted;
``bookinfo-gateway`` listens on port 8080 (D-24); nothing is patched for "enable nodeport" (D-25).
The manual's ``CA_ADDR istiod.istio-system.svc:15012`` assumes the default revision: the suite
expects the address of the revision injecting the namespace (``istiod-<rev>`` on a
revision-based mesh), as Istio 1.26 injects it.

Companion check (beyond the manual, an ID of its own): every lab namespace is labelled, so a
mesh that injected sidecars everywhere would pass; L2-X01 runs the sleep sample in a namespace
without the label and expects it without ``istio-proxy``.
"""

from __future__ import annotations

import re

import pytest

from pytest_istiolab import waiting
from pytest_istiolab.deploy import BOOKINFO_DEPLOYMENTS, BOOKINFO_SERVICES, pod_revision
from pytest_istiolab.kube import (
    Applier,
    Namespaces,
    app_containers,
    container,
    has_sidecar,
    init_containers,
    ready_column,
)

pytestmark = [pytest.mark.lab(2), pytest.mark.requires("ingress-gateway")]

TITLE = "<title>Simple Bookstore App</title>"


@pytest.mark.check("L2-C01")
def test_namespace_is_labelled_for_injection(bookinfo, kube):
    ns = kube.get("v1", "Namespace", bookinfo.namespace)
    assert ns["metadata"]["labels"].get("istio-injection") == "enabled"


@pytest.mark.check("L2-C01")
@pytest.mark.parametrize("kind,name", [
    *[("Service", s) for s in BOOKINFO_SERVICES],
    *[("ServiceAccount", f"bookinfo-{s}") for s in BOOKINFO_SERVICES],
    *[("Deployment", d) for d in BOOKINFO_DEPLOYMENTS],
])
def test_bookinfo_object_is_created(bookinfo, kube, kind, name):
    api = "apps/v1" if kind == "Deployment" else "v1"
    assert kube.get(api, kind, name, bookinfo.namespace) is not None, f"{kind} {name} missing"


@pytest.mark.check("L2-C02")
@pytest.mark.parametrize("service", BOOKINFO_SERVICES)
def test_service_is_cluster_ip_on_9080(bookinfo, kube, service):
    svc = kube.get("v1", "Service", service, bookinfo.namespace)
    ports = [f"{p['port']}/{p.get('protocol', 'TCP')}" for p in svc["spec"]["ports"]]
    assert (svc["spec"]["type"], ports) == ("ClusterIP", ["9080/TCP"])


@pytest.mark.check("L2-C02")
@pytest.mark.parametrize("deployment", BOOKINFO_DEPLOYMENTS)
def test_pod_runs_with_its_sidecar_2_of_2(bookinfo, kube, deployment):
    """READY as ``kubectl get pods`` counts it: on Istio 1.27 (Kubernetes >= 1.33) the sidecar
    is a restartable init container, and kubectl still shows ``2/2``."""
    app, version = deployment.rsplit("-", 1)
    pods = kube.pods(bookinfo.namespace, f"app={app},version={version}")
    assert len(pods) == 1
    assert (pods[0]["status"]["phase"], ready_column(pods[0])) == ("Running", "2/2")


@pytest.fixture(scope="module")
def productpage_pod(bookinfo, kube):
    return kube.pods(bookinfo.namespace, "app=productpage")[0]


def _container(pod, name):
    found = container(pod, name)
    assert found is not None, f"no running container {name} in {pod['metadata']['name']}"
    return found


def _env(container):
    return {e["name"]: e.get("value") for e in container.get("env", [])}


@pytest.mark.check("L2-C03")
def test_productpage_has_init_app_and_proxy_containers(productpage_pod):
    """``istio-init``, ``productpage`` and ``istio-proxy``: on Istio 1.26 the proxy is the
    last of ``containers``; on 1.27 (Kubernetes >= 1.33) it is a native sidecar, the init
    container after ``istio-init`` with ``restartPolicy: Always``."""
    assert init_containers(productpage_pod) == ["istio-init"]
    assert [c["name"] for c in app_containers(productpage_pod)] == ["productpage"]
    assert has_sidecar(productpage_pod)
    app = _container(productpage_pod, "productpage")
    assert [p["containerPort"] for p in app["ports"]] == [9080]


@pytest.mark.check("L2-C03")
def test_sidecar_image_ports_args_and_probe(productpage_pod, istio_settings):
    proxy = _container(productpage_pod, "istio-proxy")
    assert proxy["image"] == f"docker.io/istio/proxyv2:{istio_settings.version}"
    assert 15090 in [p["containerPort"] for p in proxy["ports"]]
    assert proxy["args"][:4] == ["proxy", "sidecar", "--domain",
                                 "$(POD_NAMESPACE).svc.cluster.local"]
    probe = proxy["readinessProbe"]["httpGet"]
    assert (probe["path"], probe["port"]) == ("/healthz/ready", 15021)


@pytest.mark.check("L2-C03")
def test_sidecar_dials_the_istiod_of_its_revision(productpage_pod, control_plane):
    """The manual shows ``CA_ADDR: istiod.istio-system.svc:15012``: the default revision's.
    Istio 1.26 injects ``istiod-<rev>.istio-system.svc:15012`` for a revision's proxies, so the
    proxy must carry the revision injecting its namespace (``istio.io/rev``) and dial that
    revision's istiod (a deviation that follows Istio 1.26; the same on the default one)."""
    injected = pod_revision(productpage_pod)
    ca_addr = _env(_container(productpage_pod, "istio-proxy")).get("CA_ADDR")
    assert (injected, ca_addr) == (control_plane.revision, control_plane.address), (
        f"expected the proxy of {control_plane.describe()}")


@pytest.mark.check("L2-C03")
@pytest.mark.parametrize("name,value", [
    ("PILOT_CERT_PROVIDER", "istiod"),
    ("ISTIO_META_INTERCEPTION_MODE", "REDIRECT"), ("ISTIO_META_CLUSTER_ID", "Kubernetes"),
    ("ISTIO_META_MESH_ID", "cluster.local"), ("TRUST_DOMAIN", "cluster.local"),
    ("ISTIO_META_WORKLOAD_NAME", "productpage-v1"), ("ISTIO_META_APP_CONTAINERS", "productpage"),
])
def test_sidecar_environment(productpage_pod, name, value):
    assert _env(_container(productpage_pod, "istio-proxy")).get(name) == value


@pytest.mark.check("L2-C03")
@pytest.mark.parametrize("message", ["Created container istio-init", "Started container istio-init",
                                     "Created container istio-proxy"])
def test_pod_events_show_the_injected_containers(productpage_pod, kube, message):
    """Event wording differs between kubelet versions ("Created container X" vs
    "Created container: X"); both are accepted."""
    name = productpage_pod["metadata"]["name"]
    messages = [e.get("message", "") for e in kube.events(productpage_pod["metadata"]["namespace"],
                                                          name)]
    wanted = re.compile(re.escape(message).replace(r"container\ ", r"container:?\ "))
    assert any(wanted.fullmatch(m) for m in messages), messages


@pytest.mark.check("L2-C04")
def test_ratings_pod_fetches_the_product_page_title(bookinfo, cluster):
    """``kubectl exec <ratings> -c ratings -- curl productpage:9080/productpage | grep -o
    "<title>.*</title>"`` — the grep runs on the host, so the test greps the output. Polled:
    right after the deploy the ratings sidecar may not have productpage's endpoints yet."""
    def title() -> None:
        result = bookinfo.exec("ratings", ["curl", "-s", "productpage:9080/productpage"])
        assert result.exit_code == 0, result.stderr
        assert re.findall(r"<title>.*</title>", result.stdout) == [TITLE], result.stdout[:200]

    t = cluster.timeouts
    waiting.eventually(title, timeout=t.eventually, interval=t.poll_interval,
                       consecutive=t.consecutive,
                       description="ratings fetches the product page's title")


@pytest.mark.check("L2-C05")
def test_bookinfo_gateway_and_virtual_service(bookinfo, kube):
    """D-24: on 1.26 the sample Gateway's server port is 8080 (the ingress pod's listener)."""
    gw = kube.get("networking.istio.io/v1", "Gateway", "bookinfo-gateway", bookinfo.namespace)
    server = gw["spec"]["servers"][0]
    assert gw["spec"]["selector"] == {"istio": "ingressgateway"}
    assert (server["port"]["number"], server["port"]["protocol"], server["hosts"]) == (
        8080, "HTTP", ["*"])
    vs = kube.get("networking.istio.io/v1", "VirtualService", "bookinfo", bookinfo.namespace)
    assert (vs["spec"]["gateways"], vs["spec"]["hosts"]) == (["bookinfo-gateway"], ["*"])


DESTINATION_RULE_SUBSETS = {"productpage": ["v1"], "reviews": ["v1", "v2", "v3"],
                            "ratings": ["v1", "v2", "v2-mysql", "v2-mysql-vm"],
                            "details": ["v1", "v2"]}


@pytest.mark.check("L2-C06")
@pytest.mark.parametrize("host", sorted(DESTINATION_RULE_SUBSETS))
def test_default_destination_rule_subsets(bookinfo, kube, host):
    dr = kube.get("networking.istio.io/v1", "DestinationRule", host, bookinfo.namespace)
    subsets = dr["spec"]["subsets"]
    assert dr["spec"]["host"] == host
    assert [s["name"] for s in subsets] == DESTINATION_RULE_SUBSETS[host]
    assert all(s["labels"] == {"version": s["name"]} for s in subsets)


@pytest.mark.check("L2-C07")
def test_gateway_url_is_node_address_and_http2_node_port(bookinfo, ingress, kube):
    gateway_pod = kube.pods(ingress.namespace, "istio=ingressgateway")[0]
    svc = kube.get("v1", "Service", "istio-ingressgateway", ingress.namespace)
    ports = {p["name"]: p.get("nodePort") for p in svc["spec"]["ports"]}
    assert ingress.host == gateway_pod["status"]["hostIP"]
    assert (ingress.port, ingress.secure_port) == (ports["http2"], ports["https"])
    assert ingress.gateway_url == f"{ingress.host}:{ingress.port}"
    assert re.fullmatch(r"[0-9a-f.:]+:\d{2,5}", ingress.gateway_url)


@pytest.mark.check("L2-C08")
def test_product_page_through_the_ingress_gateway(bookinfo):
    page = bookinfo.product_page()
    assert page.status_code == 200
    assert TITLE in page.text
    for marker in ("The Comedy of Errors", "Book Details", "Book Reviews"):
        assert marker in page.text


@pytest.mark.check("L2-X01")
def test_a_pod_in_an_unlabelled_namespace_gets_no_sidecar(bookinfo, kube, istio_settings):
    """Beyond the manual: injection happens only where asked. The sleep sample in a namespace
    without ``istio-injection`` runs 1/1, with no ``istio-proxy`` and no ``istio-init``."""
    namespaces = Namespaces(kube, istio_settings.scope_id)
    name = namespaces.create(f"{bookinfo.namespace}-plain"[:63], inject=False)
    try:
        Applier(kube, name)("samples/sleep/sleep.yaml")
        kube.wait_for_deployments(name, ["sleep"])
        [pod] = kube.pods(name, "app=sleep")
        containers = [c["name"] for c in app_containers(pod)] + (
            ["istio-proxy"] if has_sidecar(pod) else [])
        init = [c["name"] for c in pod["spec"].get("initContainers") or []]
        assert (containers, init) == (["sleep"], []), (
            f"sleep in unlabelled namespace {name}: containers {containers}, init {init}")
    finally:
        if istio_settings.keep != "always":
            namespaces.delete_all()
