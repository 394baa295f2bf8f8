"""Lab 9.1 — Logs ("日志"). Checks L9.1-C01..C05.

One request to the productpage ClusterIP, then the productpage sidecar's access log: TEXT
first (two outbound entries, to details and reviews, and the inbound one), then, after the
mesh is switched to ``accessLogEncoding: JSON`` (a mesh-wide change: ``mesh_wide`` holds the
mesh lock exclusively to the end of the module and restores the run's mesh; skipped with
``--istio-read-only``), the same three entries as JSON.

Deviations from the manual's text (catalogue appendix D):

* the manual curls the ClusterIP from the node shell; the test host may not route ClusterIPs
  (kind, a remote cluster), so the suite sends the same ``curl http://<ClusterIP>:9080/productpage``
  from the sleep pod. productpage's sidecar logs the same three entries; the inbound one is
  mTLS from sleep's sidecar instead of plaintext from the node, which no check here depends on;
* ``istioctl manifest apply`` is gone from 1.26: the switch is ``istioctl install --set
  profile=demo --set meshConfig.accessLogFile=/dev/stdout --set
  meshConfig.accessLogEncoding=JSON -y`` (D-26); on a mesh installed before the run only the
  ``istio`` ConfigMap's mesh config is edited (see ``deploy.meshwide``);
* D-19: the ConfigMap's ``tracing.zipkin`` and ``extensionProviders`` are not asserted;
* the manual's ``istio`` ConfigMap and ``discoveryAddress: istiod.istio-system.svc:15012`` are
  the default revision's; on a revision-based mesh Istio 1.26 names them ``istio-<rev>`` and
  ``istiod-<rev>.istio-system.svc:15012``, and those of the revision injecting the labs'
  namespaces are checked (the switch reinstalls that revision: ``--set revision=<rev>``);
* D-20: 1.26 keys, not the 2020 ones: no ``istio_policy_status``, ``response_code_details`` and
  ``connection_termination_details`` added, inbound cluster ``inbound|9080||``, inbound
  upstream host the pod IP; values are compared type-tolerantly (numbers may be JSON numbers,
  absent values ``null`` or ``"-"``) and key order is not assumed;
* the text excerpt omits the inbound line the prose promises; the suite asserts it.

Entries of one request are told apart by its ``x-request-id``, which productpage forwards to
details and reviews (as Bookinfo does), so all three carry the same id.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
import yaml

from pytest_istiolab.traffic import AccessLogEntry, ProxyLog
from pytest_istiolab.waiting import eventually

pytestmark = [pytest.mark.lab(9)]

TITLE = "<title>Simple Bookstore App</title>"
JSON_LOGS = {"meshConfig.accessLogFile": "/dev/stdout", "meshConfig.accessLogEncoding": "JSON"}
JSON_KEYS = {  # EnvoyJSONLogFormatIstio @1.26.0: exactly these 24
    "start_time", "route_name", "method", "path", "protocol", "response_code", "response_flags",
    "response_code_details", "connection_termination_details", "bytes_received", "bytes_sent",
    "duration", "upstream_service_time", "x_forwarded_for", "user_agent", "request_id",
    "authority", "upstream_host", "upstream_cluster", "upstream_local_address",
    "downstream_local_address", "downstream_remote_address", "requested_server_name",
    "upstream_transport_failure_reason"}


@dataclass
class Request:
    """One ``curl`` to the productpage ClusterIP and productpage's entries for it."""

    status: int
    body: str
    inbound: AccessLogEntry
    details: AccessLogEntry
    reviews: AccessLogEntry

    @property
    def entries(self) -> list[AccessLogEntry]:
        return [self.inbound, self.details, self.reviews]


@pytest.fixture(scope="module")
def productpage_ip(bookinfo, kube):
    """``kubectl get svc productpage``: its CLUSTER-IP."""
    return kube.get("v1", "Service", "productpage", bookinfo.namespace)["spec"]["clusterIP"]


@pytest.fixture(scope="module")
def productpage_log(bookinfo, kube, cluster):
    """``kubectl logs productpage-xxx istio-proxy``."""
    return ProxyLog(kube, bookinfo.namespace, bookinfo.pod("productpage"), cluster.timeouts)


def _one_request(sleep, productpage_ip, log: ProxyLog, cluster, encoded: str) -> Request:
    """Send one request and wait for productpage's three entries for it in ``encoded`` form."""
    url = f"http://{productpage_ip}:9080/productpage"

    def send() -> Request:
        mark = log.mark()
        result = sleep.curl(url, output=None, write_out="\n%{http_code}")
        body, _, code = result.stdout.rpartition("\n")
        assert code == "200", f"curl {url}: {code} {result.stderr}"
        inbound = log.wait_for_new(mark, lambda e: e.path == "/productpage",
                                   description="productpage's inbound entry",
                                   timeout=cluster.timeouts.eventually / 4)[-1]
        # a sidecar may still log by the old format for a moment: send again (the outer wait)
        assert _encoding(inbound) == encoded, f"a {_encoding(inbound)} entry: {inbound.line}"
        rid = inbound.request_id
        mine = log.wait_for_new(mark, lambda e: e.request_id == rid and e is not inbound
                                and e.path in ("/details/0", "/reviews/0"), count=2,
                                description=f"the outbound entries of request {rid}")
        by_path = {e.path: e for e in mine}
        return Request(int(code), body, inbound, by_path["/details/0"], by_path["/reviews/0"])

    return eventually(send, timeout=cluster.timeouts.eventually,
                      interval=cluster.timeouts.poll_interval,
                      description=f"one {encoded} request to productpage")


def _encoding(entry: AccessLogEntry) -> str:
    return "JSON" if entry.line.startswith("{") else "TEXT"


# ================================================================== TEXT
@pytest.fixture(scope="module")
def text_request(bookinfo, sleep, productpage_ip, productpage_log, cluster, istio):
    mesh = istio.mesh_config()
    if not mesh.get("accessLogFile"):
        pytest.skip("the mesh writes no access logs (meshConfig.accessLogFile is empty): Lab 9.1 "
                    "starts from the demo profile's TEXT log")
    encoding = str(mesh.get("accessLogEncoding") or "TEXT").upper()
    if encoding != "TEXT":
        pytest.skip(f"the mesh logs {encoding} before Lab 9.1 (the manual starts from TEXT)")
    return _one_request(sleep, productpage_ip, productpage_log, cluster, "TEXT")


@pytest.mark.check("L9.1-C01")
def test_productpage_cluster_ip_serves_the_page(text_request, bookinfo, kube, productpage_ip):
    svc = kube.get("v1", "Service", "productpage", bookinfo.namespace)
    assert (svc["spec"]["type"], svc["spec"]["ports"][0]["port"]) == ("ClusterIP", 9080)
    assert text_request.status == 200
    assert TITLE in text_request.body


@pytest.mark.check("L9.1-C02")
@pytest.mark.parametrize("path,cluster_name", [
    ("/details/0", "outbound|9080||details.{ns}.svc.cluster.local"),
    ("/reviews/0", "outbound|9080||reviews.{ns}.svc.cluster.local")])
def test_text_outbound_entry(text_request, bookinfo, path, cluster_name):
    entry = text_request.details if path == "/details/0" else text_request.reviews
    assert f'"GET {path} HTTP/1.1" 200' in entry.line
    assert entry.upstream_cluster == cluster_name.format(ns=bookinfo.namespace)
    assert entry.authority == f"{path.split('/')[1]}:9080"
    assert entry.request_id == text_request.inbound.request_id
    assert entry.details == "via_upstream"


@pytest.mark.check("L9.1-C02")
def test_text_inbound_entry(text_request, productpage_ip):
    """The inbound line the prose promises and the excerpt omits (D-20: ``inbound|9080||``)."""
    entry = text_request.inbound
    assert '"GET /productpage HTTP/1.1" 200' in entry.line
    assert entry.upstream_cluster == "inbound|9080||"
    assert entry.authority == f"{productpage_ip}:9080"
    assert entry.request_id


# ================================================================== JSON
@pytest.fixture(scope="module")
def switched(mesh_wide, text_request, bookinfo):
    """``istioctl install --set profile=demo --set meshConfig.accessLogEncoding=JSON ... -y``."""
    return mesh_wide.reinstall("demo", JSON_LOGS)


@pytest.fixture(scope="module")
def json_request(switched, sleep, productpage_ip, productpage_log, cluster):
    """Sidecars take the new format without a restart: poll until the entries are JSON."""
    return _one_request(sleep, productpage_ip, productpage_log, cluster, "JSON")


@pytest.mark.check("L9.1-C03")
def test_mesh_config_says_json(switched, istio, cluster, control_plane):
    """``kubectl describe configmap istio -n istio-system``: the stable fields (D-19); the
    ConfigMap and discovery address of the serving revision (``istio-<rev>``, ``istiod-<rev>``
    on a revision-based mesh: the manual assumes the default revision)."""
    def mesh():
        config = istio.mesh_config()
        assert config.get("accessLogEncoding") == "JSON"
        assert config.get("accessLogFile") == "/dev/stdout"
        return config

    config = eventually(mesh, timeout=cluster.timeouts.eventually,
                        interval=cluster.timeouts.poll_interval,
                        description="the istio ConfigMap says accessLogEncoding: JSON")
    assert config["defaultConfig"]["discoveryAddress"] == control_plane.address
    assert config.get("enablePrometheusMerge") is True
    assert config.get("rootNamespace") == "istio-system"
    assert config.get("trustDomain") == "cluster.local"


@pytest.mark.check("L9.1-C03")
def test_mesh_networks_is_empty(switched, kube, control_plane):
    cm = kube.get("v1", "ConfigMap", control_plane.mesh_configmap, "istio-system")
    assert yaml.safe_load(cm["data"]["meshNetworks"]) == {"networks": {}}


def _doc(entry: AccessLogEntry) -> dict:
    doc = json.loads(entry.line)
    assert isinstance(doc, dict)
    return doc


def _absent(value) -> bool:
    return value in (None, "-", "")


@pytest.mark.check("L9.1-C04", "L9.1-C05")
@pytest.mark.parametrize("which", ["inbound", "details", "reviews"])
def test_json_entry_has_the_1_26_keys(json_request, which):
    """D-20: the 24 keys of 1.26 (``istio_policy_status`` is gone); order not assumed."""
    doc = _doc(getattr(json_request, which))
    assert set(doc) == JSON_KEYS
    assert int(doc["response_code"]) == 200
    assert _absent(doc["response_flags"])
    assert doc["method"] == "GET" and doc["protocol"] == "HTTP/1.1"
    assert doc["route_name"] == "default"
    assert doc["request_id"] == json_request.inbound.request_id
    assert int(doc["bytes_received"]) == 0 and int(doc["bytes_sent"]) > 0
    assert int(doc["duration"]) >= int(doc["upstream_service_time"])
    assert doc["response_code_details"] == "via_upstream"
    for key in ("upstream_host", "downstream_remote_address", "downstream_local_address",
                "upstream_local_address", "start_time", "user_agent"):
        assert not _absent(doc[key]), key
    assert _absent(doc["upstream_transport_failure_reason"])


@pytest.mark.check("L9.1-C04")
@pytest.mark.parametrize("which,service", [("details", "details"), ("reviews", "reviews")])
def test_json_outbound_entry(json_request, bookinfo, kube, which, service):
    doc = _doc(getattr(json_request, which))
    fqdn = f"{service}.{bookinfo.namespace}.svc.cluster.local"
    assert doc["upstream_cluster"] == f"outbound|9080||{fqdn}"
    assert doc["authority"] == f"{service}:9080"
    assert doc["path"] == f"/{service}/0"
    svc_ip = kube.get("v1", "Service", service, bookinfo.namespace)["spec"]["clusterIP"]
    assert doc["downstream_local_address"] == f"{svc_ip}:9080"
    pod_ips = {p["status"]["podIP"] for p in kube.pods(bookinfo.namespace, f"app={service}")}
    assert doc["upstream_host"].rpartition(":")[0] in pod_ips


@pytest.mark.check("L9.1-C05")
def test_json_inbound_entry(json_request, bookinfo, kube, productpage_ip):
    """D-20: ``inbound|9080||`` and the pod IP as upstream host (not 1.6's ``127.0.0.1:9080``)."""
    doc = _doc(json_request.inbound)
    pod = kube.get("v1", "Pod", bookinfo.pod("productpage"), bookinfo.namespace)
    assert doc["upstream_cluster"] == "inbound|9080||"
    assert doc["path"] == "/productpage"
    assert doc["authority"] == f"{productpage_ip}:9080"
    assert doc["upstream_host"] == f"{pod['status']['podIP']}:9080"
    assert doc["downstream_local_address"] == f"{pod['status']['podIP']}:9080"
