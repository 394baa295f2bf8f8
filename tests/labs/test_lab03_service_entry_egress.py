"""Lab 3.4 — Service entry ("服务入口") and Lab 3.6 — Egress. Checks L3.4-C01..C06, L3.6-C01..C09.

3.4: the sleep pod reaches the external host (``ALLOW_ANY``); ``istioctl install --set
meshConfig.outboundTrafficPolicy.mode=REGISTRY_ONLY -y`` blocks it (502, empty body); the
ServiceEntry ``httpbin-ext`` lets it out again; the manual's cleanup reinstalls demo.
3.6: with ServiceEntry ``httpbin`` the call leaves directly (``outbound|80||httpbin.org``), then
the egress Gateway, VirtualService and DestinationRule send it through istio-egressgateway
(``outbound|80|httpbin|istio-egressgateway...``) and the host sees two origins.

One module, because 3.4 changes mesh-wide state: ``mesh_wide`` holds the mesh lock exclusively
from the switch to the end of the module. Each test asks for the stage of the manual it checks
(``allow_any``, ``switched``, ``httpbin_ext``, ``egress_entry``, ``egress_gateway``,
``egress_route``) and ``Steps.reach`` brings the module there from wherever it is, so any
share of the tests in any order (``-k``, one node id, a shuffle) sees the state it checks; in
file order every step runs once, as in the manual.

Deviations from the manual's text (catalogue appendix D):

* the lab namespace replaces ``default``; the external host is ``--istio-external-host``
  (httpbin.org by default), put into the manifests as ``${EXTERNAL_HOST}``;
* D-06: of httpbin.org's header echo only ``Host`` and the sidecar's ``X-Envoy-*`` headers are
  asserted; no ``X-B3-*`` (1.26's default tracer is none, D-22), and no IP values;
* D-07: the switch runs with the default profile and prunes the egress gateway; the installer
  output and the pruning are asserted only when this run installed Istio (otherwise the suite
  sets the mode in the ``istio`` ConfigMap and never reinstalls). 1.26 prints
  ``Removed apps/v1, Kind=Deployment/istio-egressgateway.istio-system.``, the manual
  ``Removed Deployment:istio-system:istio-egressgateway.``; both read the same here;
* D-32: 3.4's ``httpbin-ext`` is deleted before 3.6, as the manual's cleanup does; sleep stays;
* ``kubectl logs ... | tail``: the line of a request is found by counting the sidecar's lines
  before it (the sleep sidecar logs only this module's requests).
"""

from __future__ import annotations

import ipaddress
import json
import re
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest

from pytest_istiolab.cluster import ClusterSession
from pytest_istiolab.deploy import BOOKINFO_DEPLOYMENTS, MeshWide, Sleep
from pytest_istiolab.kube import Applier, ready_column
from pytest_istiolab.report import reporting
from pytest_istiolab.traffic import AccessLogEntry, CurlResult, ProxyLog
from pytest_istiolab.waiting import eventually

pytestmark = [pytest.mark.lab(3)]

FILES = "lab03-service-entry-egress"
ISTIO_NS = "istio-system"
NET = "networking.istio.io/v1"
EGRESS_FQDN = "istio-egressgateway.istio-system.svc.cluster.local"
VIA_GATEWAY = f"outbound|80|httpbin|{EGRESS_FQDN}"
REGISTRY_ONLY = {"meshConfig.outboundTrafficPolicy.mode": "REGISTRY_ONLY"}
PRUNED = {("Deployment", "istio-egressgateway"), ("Service", "istio-egressgateway"),
          ("ServiceAccount", "istio-egressgateway-service-account"),
          ("RoleBinding", "istio-egressgateway-sds"), ("Role", "istio-egressgateway-sds"),
          ("PodDisruptionBudget", "istio-egressgateway")}
REMOVED = re.compile(r"Removed (?:(?P<k1>\w+):(?P<ns1>[\w-]+):(?P<n1>[\w.-]+)"
                     r"|\S*, Kind=(?P<k2>\w+)/(?P<n2>[\w-]+)\.(?P<ns2>[\w-]+))\.(?=\s|$)")


# ---------------------------------------------------------------- the manual's steps
@dataclass(frozen=True)
class Stage:
    """A point of the manual: is the mesh switched to REGISTRY_ONLY, which files are applied."""

    name: str
    registry_only: bool
    files: tuple[str, ...]


ALLOW_ANY = Stage("ALLOW_ANY, nothing applied", False, ())
SWITCHED = Stage("REGISTRY_ONLY, no ServiceEntry", True, ())
HTTPBIN_EXT = Stage("REGISTRY_ONLY with ServiceEntry httpbin-ext", True, ("serviceentry.yaml",))
EGRESS_ENTRY = Stage("3.6's ServiceEntry httpbin", False, ("egressse.yaml",))
EGRESS_GATEWAY = Stage("3.6's ServiceEntry and egress Gateway", False,
                       ("egressse.yaml", "egressgw.yaml"))
EGRESS_ROUTE = Stage("3.6's ServiceEntry, Gateway, VirtualService and DestinationRule", False,
                     ("egressse.yaml", "egressgw.yaml", "egressvs.yaml"))


@dataclass
class Steps:
    """Brings the module to the stage a test asks for, from whatever stage it is in.

    In file order each step runs once, as in the manual (3.4's cleanup deletes ``httpbin-ext``
    and reinstalls before 3.6's files are applied). In any other order (``-k``, a shuffle, one
    node id) a test still finds exactly its stage: files it must not see are deleted, the mesh
    is switched or restored, then its files are applied in the manual's order.
    """

    files: Applier
    host: str
    mesh: MeshWide | None = None  # set while the mesh is switched
    applied: list[str] = field(default_factory=list)
    switch_output: subprocess.CompletedProcess[str] | None = None

    def reach(self, stage: Stage, mesh_wide: MeshWide | None = None) -> None:
        for name in reversed([f for f in self.applied if f not in stage.files]):
            self.files.delete(f"{FILES}/{name}", EXTERNAL_HOST=self.host)
            self.applied.remove(name)
        if stage.registry_only and self.mesh is None:
            assert mesh_wide is not None, "a REGISTRY_ONLY stage needs the mesh_wide fixture"
            self.mesh = mesh_wide
            # ``istioctl install --set meshConfig.outboundTrafficPolicy.mode=REGISTRY_ONLY -y``
            self.switch_output = mesh_wide.reinstall("default", REGISTRY_ONLY)
        elif not stage.registry_only and self.mesh is not None:
            self.mesh.restore()  # the manual's cleanup: ``istioctl install --set profile=demo``
            self.mesh = None
        for name in stage.files:
            if name not in self.applied:
                self.files(f"{FILES}/{name}", EXTERNAL_HOST=self.host)
                self.applied.append(name)


@pytest.fixture(scope="module")
def host(istio_settings):
    return istio_settings.external_host


@pytest.fixture(scope="module")
def steps(cluster, lab_namespace, host, istio_settings) -> Iterator[Steps]:
    state = Steps(Applier(cluster.kube, lab_namespace), host)
    yield state
    if istio_settings.keep != "always":  # the entries and routes act mesh-wide: never left
        state.files.cleanup()


@pytest.fixture(autouse=True)
def _report_files(request, steps):
    reporting.register_applier(request.node, steps.files)


@pytest.fixture(scope="module")
def source_pod(sleep):
    """``export SOURCE_POD=$(kubectl get pod -l app=sleep -o jsonpath=...)``."""
    return sleep.pod("sleep")


@pytest.fixture(scope="module")
def sleep_ip(sleep, source_pod, kube):
    return kube.get("v1", "Pod", source_pod, sleep.namespace)["status"]["podIP"]


@pytest.fixture
def allow_any(sleep, steps):
    """Before 3.4's switch (and again after its cleanup): nothing of the module applied."""
    steps.reach(ALLOW_ANY)


@pytest.fixture
def switched(mesh_wide, sleep, steps):
    """``istioctl install --set meshConfig.outboundTrafficPolicy.mode=REGISTRY_ONLY -y``: its
    output (None when the suite set the mode in the ConfigMap instead)."""
    steps.reach(SWITCHED, mesh_wide)
    return steps.switch_output


@pytest.fixture
def httpbin_ext(mesh_wide, sleep, steps):
    steps.reach(HTTPBIN_EXT, mesh_wide)


@pytest.fixture
def egress_entry(sleep, steps):
    steps.reach(EGRESS_ENTRY)


@pytest.fixture
def egress_gateway(sleep, steps):
    steps.reach(EGRESS_GATEWAY)


@pytest.fixture
def egress_route(sleep, steps):
    steps.reach(EGRESS_ROUTE)


@pytest.fixture
def egress_pods(steps, kube):
    """The egress gateway's pods (request it after the stage: it must not be REGISTRY_ONLY,
    whose default-profile reinstall prunes the gateway)."""
    assert steps.mesh is None, "egress_pods is requested before the test's (ALLOW_ANY) stage"
    return kube.wait_for_pods_ready(ISTIO_NS, "istio=egressgateway", count=1)


# ---------------------------------------------------------------------- helpers
@dataclass
class Calls:
    """Requests from the sleep pod, counted so each one's sidecar access-log line is found."""

    sleep: Sleep
    cluster: ClusterSession
    log: ProxyLog | None = None  # the sleep pod's istio-proxy log, when lines are wanted
    results: list[CurlResult] = field(default_factory=list)
    mark: int = 0

    def __post_init__(self) -> None:
        self.mark = self.log.mark() if self.log is not None else 0

    def get(self, url: str) -> CurlResult:
        result = self.sleep.batch([url], output=None)[0]
        self.results.append(result)
        return result

    def until(self, url: str, check: Callable[[CurlResult], None], description: str
              ) -> CurlResult:
        def attempt() -> CurlResult:
            result = self.get(url)
            check(result)
            return result

        t = self.cluster.timeouts
        return eventually(attempt, timeout=t.eventually, interval=t.poll_interval,
                          consecutive=t.consecutive, description=description)

    def logged(self) -> list[AccessLogEntry]:
        """The sidecar's line of every request made, in order (one line per request)."""
        assert self.log is not None, "use the logged_calls fixture to read the sidecar's log"
        return self.log.wait_for_new(self.mark, count=len(self.results),
                                     description="a sidecar line for each request")


def _json(result: CurlResult) -> dict:
    assert result.exit_code == 0 and result.status == 200, (
        f"HTTP {result.status} (curl exit {result.exit_code}), body {result.body!r}")
    return json.loads(result.body or "")


def _origins(result: CurlResult) -> list[str]:
    origins = [part.strip() for part in _json(result)["origin"].split(",")]
    for origin in origins:
        ipaddress.ip_address(origin)  # every element is an address
    return origins


def _one_origin(result: CurlResult) -> None:
    assert len(_origins(result)) == 1, f"expected one origin: {result.body}"


def _two_origins(result: CurlResult) -> None:
    assert len(_origins(result)) == 2, f"expected two origins (via the gateway): {result.body}"


def _live_pods(kube, namespace, selector=None):
    """``kubectl get pod`` without the Terminating ones (a pruned pod may still be going)."""
    return [p for p in kube.pods(namespace, selector)
            if not p["metadata"].get("deletionTimestamp")]


def _ready_and_phase(pod):
    """``kubectl get pods``' READY and STATUS (a native sidecar counts in READY: Istio 1.27)."""
    return ready_column(pod), pod["status"]["phase"]


def _columns(kube, kind, namespace, *fields):
    """``kubectl get <kind>``: name -> the printer columns' fields, from the objects."""
    rows = {}
    for obj in kube.list(NET, kind, namespace):
        spec = obj.get("spec") or {}
        rows[obj["metadata"]["name"]] = tuple(spec.get(f) for f in fields)
    return rows


@pytest.fixture
def calls(sleep, cluster):
    """``kubectl exec $SOURCE_POD -c sleep -- curl ...``, one exec per request."""
    return Calls(sleep, cluster)


@pytest.fixture
def logged_calls(sleep, source_pod, kube, cluster):
    """As ``calls``, and each request's line in ``kubectl logs $SOURCE_POD -c istio-proxy``."""
    return Calls(sleep, cluster, ProxyLog(kube, sleep.namespace, source_pod, cluster.timeouts))


def _require_reinstall(mesh_wide):
    if not mesh_wide.may_reinstall:
        pytest.skip("Istio was installed before the run: the suite set the mode in the istio "
                    "ConfigMap instead of reinstalling, so there is no installer output")


# ================================================================== Lab 3.4
@pytest.mark.check("L3.4-C01")
def test_sleep_runs_with_its_sidecar_next_to_bookinfo(bookinfo, sleep, kube):
    seen = {f"{p['metadata']['labels']['app']}-{p['metadata']['labels'].get('version', '')}"
            .rstrip("-"): _ready_and_phase(p) for p in _live_pods(kube, sleep.namespace)}
    expected = {name: ("2/2", "Running") for name in (*BOOKINFO_DEPLOYMENTS, "sleep")}
    assert seen == expected


@pytest.mark.check("L3.4-C02")
def test_outbound_to_the_external_host_is_allowed_by_default(allow_any, calls, host, sleep,
                                                             source_pod, sleep_ip):
    result = calls.until(f"http://{host}/headers", _json, "ALLOW_ANY lets it out")
    headers = _json(result)["headers"]
    prefix = f"sidecar~{sleep_ip}~{source_pod}.{sleep.namespace}~"
    assert headers["Host"] == host
    assert headers["X-Envoy-Attempt-Count"] == "1"
    assert headers["X-Envoy-Peer-Metadata-Id"].startswith(prefix)
    assert headers["X-Envoy-Peer-Metadata"]


@pytest.mark.check("L3.4-C03")
@pytest.mark.parametrize("line", ["✔ Istio core installed", "✔ Istiod installed",
                                  "✔ Ingress gateways installed", "✔ Installation complete"])
def test_switch_to_registry_only_installs_the_default_profile(switched, mesh_wide, line):
    _require_reinstall(mesh_wide)
    shown = (switched.stdout + switched.stderr).splitlines()
    assert any(out.strip().startswith(line) for out in shown), "\n".join(shown)


@pytest.mark.check("L3.4-C03")
@pytest.mark.requires("egress-gateway")
def test_switch_prunes_the_egress_gateway(switched, mesh_wide, kube, cluster):
    """D-07: the manual's command has no ``--set profile=demo``."""
    _require_reinstall(mesh_wide)
    output = switched.stdout + switched.stderr
    removed = {(m["k1"] or m["k2"], m["n1"] or m["n2"], m["ns1"] or m["ns2"])
               for m in REMOVED.finditer(output)}
    assert {(kind, name, ISTIO_NS) for kind, name in PRUNED} <= removed, output
    assert "Egress gateways installed" not in output

    def gone():
        assert kube.get("apps/v1", "Deployment", "istio-egressgateway", ISTIO_NS) is None

    eventually(gone, timeout=cluster.timeouts.delete, interval=cluster.timeouts.poll_interval,
               description="Deployment istio-egressgateway is pruned")


@pytest.mark.check("L3.4-C03")
def test_mesh_config_says_registry_only(switched, istio, cluster):
    def mode():
        assert (istio.mesh_config().get("outboundTrafficPolicy") or {}).get("mode") == \
            "REGISTRY_ONLY"

    eventually(mode, timeout=cluster.timeouts.eventually,
               interval=cluster.timeouts.poll_interval, description="mesh config mode")


@pytest.mark.check("L3.4-C04")
def test_outbound_is_blocked_with_an_empty_502(switched, calls, host):
    """The sidecar answers from BlackHoleCluster: curl prints nothing and exits 0."""

    def blocked(result: CurlResult) -> None:
        assert (result.status, result.body, result.exit_code) == (502, "", 0), result

    calls.until(f"http://{host}/headers", blocked, "REGISTRY_ONLY blocks the external host")


@pytest.mark.check("L3.4-C05")
def test_service_entry_hosts_location_resolution(httpbin_ext, kube, lab_namespace, host):
    rows = _columns(kube, "ServiceEntry", lab_namespace, "hosts", "location", "resolution")
    assert rows == {"httpbin-ext": ([host], "MESH_EXTERNAL", "DNS")}
    entry = kube.get(NET, "ServiceEntry", "httpbin-ext", lab_namespace)
    assert entry["spec"]["ports"] == [{"number": 80, "name": "http", "protocol": "HTTP"}]


@pytest.mark.check("L3.4-C06")
def test_service_entry_lets_the_host_out_again(httpbin_ext, calls, host):
    result = calls.until(f"http://{host}/ip", _one_origin, "the ServiceEntry re-allows it")
    assert list(_json(result)) == ["origin"]


# ================================================================== Lab 3.6
@pytest.mark.check("L3.6-C01")
@pytest.mark.requires("egress-gateway")
def test_egress_gateway_service_and_pod(allow_any, egress_pods, kube):
    svc = kube.get("v1", "Service", "istio-egressgateway", ISTIO_NS)
    ports = [f"{p['port']}/{p.get('protocol', 'TCP')}" for p in svc["spec"]["ports"]]
    assert (svc["spec"]["type"], ports) == ("ClusterIP", ["80/TCP", "443/TCP"])
    assert [_ready_and_phase(p) for p in _live_pods(kube, ISTIO_NS, "istio=egressgateway")] == [
        ("1/1", "Running")]


@pytest.mark.check("L3.6-C02")
@pytest.mark.requires("egress-gateway")
def test_egress_service_entry_has_no_location(egress_entry, kube, lab_namespace, host):
    """D-32: 3.4's ``httpbin-ext`` is gone; ``httpbin`` has no ``location`` (empty column)."""
    rows = _columns(kube, "ServiceEntry", lab_namespace, "hosts", "location", "resolution")
    assert rows == {"httpbin": ([host], None, "DNS")}
    entry = kube.get(NET, "ServiceEntry", "httpbin", lab_namespace)
    assert entry["spec"]["ports"] == [{"number": 80, "name": "http-port", "protocol": "HTTP"}]


@pytest.mark.check("L3.6-C03")
@pytest.mark.requires("egress-gateway")
def test_direct_egress_shows_one_origin(egress_entry, calls, host):
    calls.until(f"http://{host}/ip", _one_origin, "the call leaves directly")


@pytest.mark.check("L3.6-C04")
@pytest.mark.requires("egress-gateway", "access-log")
def test_sidecar_log_shows_the_direct_route(egress_entry, logged_calls, host):
    """Polled until the line names the ServiceEntry's cluster: one origin alone is also what a
    call through PassthroughCluster shows, before the entry reached the sidecar."""
    def through_the_entry(result) -> None:  # type: ignore[no-untyped-def]
        _one_origin(result)
        last = logged_calls.logged()[-1]
        assert last.upstream_cluster == f"outbound|80||{host}", \
            f"not through the ServiceEntry (yet): {last.line}"

    logged_calls.until(f"http://{host}/ip", through_the_entry, "the call leaves directly")
    line = logged_calls.logged()[-1]
    assert (line.method, line.path, line.protocol, line.status) == ("GET", "/ip", "HTTP/1.1",
                                                                    200), line.line
    assert (line.authority, line.upstream_cluster) == (host, f"outbound|80||{host}"), line.line
    assert line.upstream_host is not None and line.upstream_host.endswith(":80"), line.line


@pytest.mark.check("L3.6-C05")
@pytest.mark.requires("egress-gateway")
def test_only_bookinfo_routes_before_the_egress_gateway(bookinfo, egress_entry, kube,
                                                       lab_namespace):
    assert _columns(kube, "VirtualService", lab_namespace, "gateways", "hosts") == {
        "bookinfo": (["bookinfo-gateway"], ["*"])}
    assert _columns(kube, "DestinationRule", lab_namespace, "host") == {
        name: (name,) for name in ("details", "productpage", "ratings", "reviews")}


@pytest.mark.check("L3.6-C06")
@pytest.mark.requires("egress-gateway")
def test_egress_gateway_resource(bookinfo, egress_gateway, kube, lab_namespace, host):
    assert sorted(_columns(kube, "Gateway", lab_namespace)) == ["bookinfo-gateway",
                                                                "istio-egressgateway"]
    spec = kube.get(NET, "Gateway", "istio-egressgateway", lab_namespace)["spec"]
    assert spec["selector"] == {"istio": "egressgateway"}
    assert spec["servers"] == [{"port": {"number": 80, "name": "http", "protocol": "HTTP"},
                                "hosts": [host]}]


@pytest.mark.check("L3.6-C07")
@pytest.mark.requires("egress-gateway")
def test_egress_virtual_service_and_destination_rule(bookinfo, egress_route, kube,
                                                     lab_namespace, host):
    vs = _columns(kube, "VirtualService", lab_namespace, "gateways", "hosts")
    assert vs["vs-for-egressgateway"] == (["istio-egressgateway", "mesh"], [host])
    dr = _columns(kube, "DestinationRule", lab_namespace, "host", "subsets")
    assert dr["dr-for-egressgateway"] == (EGRESS_FQDN, [{"name": "httpbin"}])
    http = kube.get(NET, "VirtualService", "vs-for-egressgateway", lab_namespace)["spec"]["http"]
    routes = [(r["match"][0]["gateways"], r["match"][0]["port"], r["route"]) for r in http]
    assert routes == [
        (["mesh"], 80, [{"destination": {"host": EGRESS_FQDN, "subset": "httpbin",
                                         "port": {"number": 80}}, "weight": 100}]),
        (["istio-egressgateway"], 80, [{"destination": {"host": host, "port": {"number": 80}},
                                        "weight": 100}])]


@pytest.mark.check("L3.6-C08")
@pytest.mark.requires("egress-gateway")
def test_through_the_egress_gateway_the_host_sees_two_origins(egress_route, calls, host,
                                                              sleep_ip):
    """The gateway appends the sleep pod's address to X-Forwarded-For."""
    result = calls.until(f"http://{host}/ip", _two_origins, "the call goes through the gateway")
    assert _origins(result)[0] == sleep_ip


@pytest.mark.check("L3.6-C09")
@pytest.mark.requires("egress-gateway", "access-log")
def test_sidecar_log_shows_the_egress_gateway_route(egress_route, egress_pods, logged_calls,
                                                    host):
    logged_calls.until(f"http://{host}/ip", _two_origins, "the call goes through the gateway")
    line = logged_calls.logged()[-1]
    gateway_ips = {p["status"]["podIP"] for p in egress_pods}
    assert (line.method, line.path, line.status, line.authority) == ("GET", "/ip", 200, host)
    assert line.upstream_cluster == VIA_GATEWAY, line.line
    assert line.upstream_host_ip in gateway_ips and line.upstream_host.endswith(":8080"), \
        line.line


@pytest.mark.check("L3.6-C09")
@pytest.mark.requires("egress-gateway", "access-log")
def test_egress_gateway_log_shows_the_request(egress_route, egress_pods, calls, host, sleep_ip,
                                              kube, cluster):
    """Not in the manual (catalogue: optional): the gateway's own line, upstream the host."""
    gateway = egress_pods[0]["metadata"]["name"]
    log = ProxyLog(kube, ISTIO_NS, gateway, cluster.timeouts)
    mark = log.mark()
    calls.until(f"http://{host}/ip", _two_origins, "the call goes through the gateway")
    via = sum(1 for r in calls.results if r.status == 200 and len(_origins(r)) == 2)
    lines = log.wait_for_new(mark, lambda e: e.downstream_remote_ip == sleep_ip, count=via,
                             description=f"the egress gateway logs requests from {sleep_ip}")
    line = lines[-1]
    assert (line.method, line.path, line.status, line.authority) == ("GET", "/ip", 200, host)
    assert line.upstream_cluster == f"outbound|80||{host}", line.line
    assert line.forwarded_chain[:1] == [sleep_ip], line.line
