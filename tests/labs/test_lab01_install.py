"""Lab 1 — Installing the Istio environment (manual: "Istio 环境的安装"). Checks L1-C02..L1-C11.

L1-C01 (download) and L1-C12 (git clone of the lab scripts) need the internet and belong to
istioctl provisioning; the lab scripts themselves live in this repo's ``manifests/``.
Istio 1.26 differs from the manual's captured output (catalogue appendix D): the API versions
of ``kubectl api-resources`` (D-04), the addons (D-03: loki added, kiali RBAC changed) and the
demo profile's telemetry (D-01). These tests follow Istio 1.26.

The manual assumes the default revision (``istiod``). On a revision-based mesh (after a canary
upgrade removed the default revision, the 1.26 chart with ``--set revision=X`` installs only
``istiod-X``) the checks that name istiod's objects look for those of the control plane
injecting the labs' namespaces (the ``control_plane`` fixture): a deviation that follows
Istio 1.26.
"""

from __future__ import annotations

import pytest

from pytest_istiolab import waiting
from pytest_istiolab.kube import api_resources, has_sidecar

pytestmark = [pytest.mark.lab(1)]

ISTIO_NS = "istio-system"
PRECHECK_OK = "✔ No issues found when checking the cluster. Istio is safe to install or upgrade!"
INSTALL_LINES = ("✔ Istio core installed", "✔ Istiod installed", "✔ Egress gateways installed",
                 "✔ Ingress gateways installed", "✔ Installation complete")
ISTIO_CRDS = {
    "authorizationpolicies.security.istio.io", "destinationrules.networking.istio.io",
    "envoyfilters.networking.istio.io", "gateways.networking.istio.io",
    "peerauthentications.security.istio.io", "proxyconfigs.networking.istio.io",
    "requestauthentications.security.istio.io", "serviceentries.networking.istio.io",
    "sidecars.networking.istio.io", "telemetries.telemetry.istio.io",
    "virtualservices.networking.istio.io", "wasmplugins.extensions.istio.io",
    "workloadentries.networking.istio.io", "workloadgroups.networking.istio.io",
}


def _require_install_output(istio):
    if not istio.installed_by_run:
        pytest.skip("Istio was already installed on this cluster: the run tests it as it is and "
                    "did not see the pre-check or install output")


@pytest.mark.check("L1-C02")
def test_precheck_finds_no_issues(istio):
    _require_install_output(istio)
    assert istio.precheck.returncode == 0
    assert PRECHECK_OK in istio.precheck.stdout + istio.precheck.stderr


@pytest.mark.check("L1-C03")
@pytest.mark.requires("egress-gateway")
@pytest.mark.parametrize("line", INSTALL_LINES)
def test_install_reports_each_component(istio, line):
    """istioctl writes its progress lines to stderr and the prompt to stdout: a person sees both."""
    _require_install_output(istio)
    shown = (istio.install.stdout + istio.install.stderr).splitlines()
    assert any(out.strip().startswith(line) for out in shown), "\n".join(shown)


@pytest.mark.check("L1-C03")
@pytest.mark.requires("istiod")
def test_install_without_yes_asks_first_and_changes_nothing(istio, istioctl, kube, istio_settings,
                                                            control_plane):
    """D-26: without ``-y`` istioctl prompts; answering N must leave the mesh untouched.

    The manual's mesh is the default revision (``istiod``); on a revision-based mesh the
    command names the revision (``--set revision=<rev>``, what reinstalling that mesh takes)
    and the serving ``istiod-<rev>`` must stay untouched (Istio 1.26's names)."""
    before = kube.get("apps/v1", "Deployment", control_plane.istiod, ISTIO_NS)
    assert before is not None, f"Deployment {control_plane.istiod} missing in {ISTIO_NS}"
    sets = [a for k, v in control_plane.install_sets.items() for a in ("--set", f"{k}={v}")]
    result = istioctl.run(["install", "--set", f"profile={istio.profile}", *sets], input="N\n",
                          check=False)
    prompt = (f'This will install the Istio {istio_settings.version} profile "{istio.profile}" '
              "into the cluster. Proceed? (y/N)")
    assert prompt in result.stdout
    after = kube.get("apps/v1", "Deployment", control_plane.istiod, ISTIO_NS)
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]


@pytest.mark.check("L1-C05")
@pytest.mark.requires("istiod")
def test_client_control_plane_and_data_plane_versions_agree(istio, kube, cluster, istio_settings,
                                                            mesh_capabilities):
    """``(N proxies)`` counts every Envoy: the gateways plus one sidecar per injected pod.

    Other labs (other xdist workers on a shared cluster) start and delete pods while this runs,
    so N is compared with pod lists taken just before and just after ``istioctl version``:
    every proxy running in both lists is counted, none beyond those in either. On a quiet
    cluster the two lists are equal and N must equal their size."""
    def running_proxies() -> set[tuple[str, str]]:
        return {(p["metadata"]["namespace"], p["metadata"]["name"])
                for p in kube.list("v1", "Pod")
                if has_sidecar(p) and (p.get("status") or {}).get("phase") == "Running"}

    def agree():  # type: ignore[no-untyped-def]
        before = running_proxies()
        version = istio.version()
        after = running_proxies()
        steady, seen = before & after, before | after
        counted = version.proxies or 0  # istioctl prints no data plane line without proxies
        assert len(steady) <= counted <= len(seen), (
            f"istioctl version counts {counted} proxies; {len(steady)} ran before and "
            f"after it, {len(seen)} at either time")
        return version, after

    t = cluster.timeouts
    version, proxies = waiting.eventually(agree, timeout=t.eventually, interval=t.poll_interval,
                                          description="istioctl version counts the running "
                                          "proxies")
    data_plane = istio_settings.version if proxies else None  # no proxy: no data plane line
    assert (version.client, version.control_plane, version.data_plane) == (
        istio_settings.version, istio_settings.version, data_plane)
    gateways = [p for p in proxies if p[0] == ISTIO_NS]
    assert len(gateways) == len({"ingress-gateway", "egress-gateway"}
                                & mesh_capabilities.present)


@pytest.mark.check("L1-C06")
@pytest.mark.requires("istiod")
def test_the_fourteen_istio_crds_are_installed(istio, kube):
    names = {crd["metadata"]["name"] for crd in
             kube.list("apiextensions.k8s.io/v1", "CustomResourceDefinition")}
    assert {n for n in names if n.endswith("istio.io")} == ISTIO_CRDS


# name -> (short names, preferred API version on 1.26 (D-04), kind)
API_RESOURCES = {
    "wasmplugins": ((), "extensions.istio.io/v1alpha1", "WasmPlugin"),
    "destinationrules": (("dr",), "networking.istio.io/v1", "DestinationRule"),
    "envoyfilters": ((), "networking.istio.io/v1alpha3", "EnvoyFilter"),
    "gateways": (("gw",), "networking.istio.io/v1", "Gateway"),
    "proxyconfigs": ((), "networking.istio.io/v1beta1", "ProxyConfig"),
    "serviceentries": (("se",), "networking.istio.io/v1", "ServiceEntry"),
    "sidecars": ((), "networking.istio.io/v1", "Sidecar"),
    "virtualservices": (("vs",), "networking.istio.io/v1", "VirtualService"),
    "workloadentries": (("we",), "networking.istio.io/v1", "WorkloadEntry"),
    "workloadgroups": (("wg",), "networking.istio.io/v1", "WorkloadGroup"),
    "authorizationpolicies": (("ap",), "security.istio.io/v1", "AuthorizationPolicy"),
    "peerauthentications": (("pa",), "security.istio.io/v1", "PeerAuthentication"),
    "requestauthentications": (("ra",), "security.istio.io/v1", "RequestAuthentication"),
    "telemetries": (("telemetry",), "telemetry.istio.io/v1", "Telemetry"),
}


@pytest.fixture(scope="module")
def istio_api_resources(istio, kube):
    return {r.name: r for r in api_resources(kube, "istio.io")}


@pytest.mark.check("L1-C07")
@pytest.mark.requires("istiod")
@pytest.mark.parametrize("name", sorted(API_RESOURCES))
def test_api_resource_is_served_with_its_short_names(istio_api_resources, name):
    """D-04: on 1.26 the preferred versions are v1, not the manual's v1beta1/v1alpha1;
    envoyfilters (v1alpha3) and proxyconfigs (v1beta1) are served at one version only."""
    short, api_version, kind = API_RESOURCES[name]
    served = istio_api_resources[name]
    assert (served.short_names, served.api_version, served.namespaced, served.kind) == (
        short, api_version, True, kind)


@pytest.mark.check("L1-C08")
def test_istio_system_namespace_is_active(istio, kube):
    ns = kube.get("v1", "Namespace", ISTIO_NS)
    assert ns is not None and ns["status"]["phase"] == "Active"


# pod name prefix -> ready containers (L1-C09; prometheus runs a config reloader beside it)
ISTIO_PODS = {"istiod": (1, "istiod"), "istio-ingressgateway": (1, "ingress-gateway"),
              "istio-egressgateway": (1, "egress-gateway")}
ADDON_PODS = {"grafana": 1, "jaeger": 1, "kiali": 1, "prometheus": 2, "loki-0": 2}


@pytest.mark.check("L1-C09")
@pytest.mark.parametrize("prefix", sorted(ISTIO_PODS))
def test_control_plane_pod_is_running_and_ready(istio, kube, mesh_capabilities, prefix):
    containers, capability = ISTIO_PODS[prefix]
    if capability and not mesh_capabilities.has(capability):
        pytest.skip(mesh_capabilities.reason([capability]))
    _assert_pod_ready(kube, prefix, containers)


@pytest.mark.check("L1-C04", "L1-C09")
@pytest.mark.parametrize("prefix", sorted(ADDON_PODS))
def test_addon_pod_is_running_and_ready(addons, kube, prefix):
    """D-03: 1.26 also ships loki (a StatefulSet, pod ``loki-0``)."""
    _assert_pod_ready(kube, prefix, ADDON_PODS[prefix])


def _assert_pod_ready(kube, prefix, containers):
    __tracebackhide__ = True
    pods = [p for p in kube.list("v1", "Pod", ISTIO_NS) if p["metadata"]["name"].startswith(prefix)]
    assert pods, f"no pod named {prefix}* in {ISTIO_NS}"
    pod = pods[0]
    statuses = pod["status"].get("containerStatuses") or []
    ready = sum(1 for s in statuses if s.get("ready"))
    assert (pod["status"]["phase"], f"{ready}/{len(statuses)}") == ("Running",
                                                                    f"{containers}/{containers}")


# service -> (type, ports) per L1-C10, Istio 1.26 (jaeger-collector adds OTLP 4317/4318); the
# ingress gateway's tcp 31400 and tls 15443 come from the demo profile only (profile-demo.yaml)
DEFAULT_INGRESS_PORTS = [15021, 80, 443]
SERVICES = {
    "istiod": ("ClusterIP", [15010, 15012, 443, 15014], "istiod"),
    "istio-ingressgateway": ("LoadBalancer", [15021, 80, 443, 31400, 15443], "ingress-gateway"),
    "istio-egressgateway": ("ClusterIP", [80, 443], "egress-gateway"),
}
ADDON_SERVICES = {
    "grafana": ("ClusterIP", [3000]), "jaeger-collector": ("ClusterIP", [14268, 14250, 9411, 4317,
                                                                        4318]),
    "kiali": ("ClusterIP", [20001, 9090]), "prometheus": ("ClusterIP", [9090]),
    "tracing": ("ClusterIP", [80, 16685]), "zipkin": ("ClusterIP", [9411]),
}


@pytest.mark.check("L1-C10")
@pytest.mark.parametrize("name", sorted(SERVICES))
def test_control_plane_service_type_and_ports(istio, kube, mesh_capabilities, control_plane, name):
    """The manual lists ``istiod``, the default revision's Service; on a revision-based mesh
    Istio 1.26 names it ``istiod-<rev>``, and that of the revision injecting the labs'
    namespaces is checked (a deviation that follows Istio 1.26)."""
    kind, ports, capability = SERVICES[name]
    if capability and not mesh_capabilities.has(capability):
        pytest.skip(mesh_capabilities.reason([capability]))
    if name == "istio-ingressgateway" and mesh_capabilities.profile_like != "demo":
        ports = DEFAULT_INGRESS_PORTS
    name = control_plane.istiod if name == "istiod" else name
    svc = kube.get("v1", "Service", name, ISTIO_NS)
    assert svc is not None, f"service {name} missing in {ISTIO_NS}"
    assert (svc["spec"]["type"], [p["port"] for p in svc["spec"]["ports"]]) == (kind, ports)
    if kind == "LoadBalancer":
        assert all(p.get("nodePort") for p in svc["spec"]["ports"]), "every port needs a NodePort"


@pytest.mark.check("L1-C04", "L1-C10")
@pytest.mark.parametrize("name", sorted(ADDON_SERVICES))
def test_addon_service_type_and_ports(addons, kube, name):
    kind, ports = ADDON_SERVICES[name]
    svc = kube.get("v1", "Service", name, ISTIO_NS)
    assert svc is not None, f"service {name} missing in {ISTIO_NS}"
    assert (svc["spec"]["type"], [p["port"] for p in svc["spec"]["ports"]]) == (kind, ports)


@pytest.mark.check("L1-C04")
@pytest.mark.parametrize("kind,name", [
    ("ServiceAccount", "grafana"), ("ConfigMap", "grafana"),
    ("ConfigMap", "istio-grafana-dashboards"), ("ConfigMap", "istio-services-grafana-dashboards"),
    ("ServiceAccount", "kiali"), ("ConfigMap", "kiali"), ("ServiceAccount", "prometheus"),
    ("ConfigMap", "prometheus"), ("ServiceAccount", "loki"), ("ConfigMap", "loki"),
])
def test_addon_supporting_objects_exist(addons, kube, kind, name):
    assert kube.get("v1", kind, name, ISTIO_NS) is not None, f"{kind} {name} missing"


@pytest.mark.check("L1-C04")
@pytest.mark.parametrize("kind,name", [
    ("ClusterRole", "kiali"), ("ClusterRoleBinding", "kiali"),
    ("ClusterRole", "prometheus"), ("ClusterRoleBinding", "prometheus"),
])
def test_addon_cluster_rbac_exists(addons, kube, kind, name):
    assert kube.get("rbac.authorization.k8s.io/v1", kind, name) is not None


@pytest.mark.check("L1-C11")
def test_demo_components_have_no_autoscalers_and_no_lab_routing(istio, kube, mesh_capabilities):
    """``kubectl get svc,pod,hpa,pdb,Gateway,VirtualService -n istio-system``: the demo profile
    disables autoscaling, each gateway has a PodDisruptionBudget, and no Gateway or
    VirtualService lives in istio-system."""
    if mesh_capabilities.profile_like != "demo":
        pytest.skip("the manual documents this overview for the demo profile only")
    assert kube.list("autoscaling/v2", "HorizontalPodAutoscaler", ISTIO_NS) == []
    pdbs = {p["metadata"]["name"] for p in kube.list("policy/v1", "PodDisruptionBudget", ISTIO_NS)}
    assert {"istio-ingressgateway", "istio-egressgateway"} <= pdbs
    assert kube.list("networking.istio.io/v1", "Gateway", ISTIO_NS) == []
    assert kube.list("networking.istio.io/v1", "VirtualService", ISTIO_NS) == []
