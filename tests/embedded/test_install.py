"""Istio 1.26 install content: CRDs, profiles, --set overlays, rendered objects, schemas.

Supports checks L1-C06 (the 14 CRDs), L1-C07 and D-04 (versions, short names), L1-C10 (Service
ports), L1-C11 (PDBs, no HPA in demo), L3.4-C03/D-07 (default profile, REGISTRY_ONLY) and
L9.1-C03/D-19 (the mesh ConfigMap).
"""

from __future__ import annotations

import pytest
import yaml

from pytest_istiolab.embedded.install import (
    COMPONENT_LABEL,
    InstallError,
    istio_crds,
    render_install,
    resolve,
)
from pytest_istiolab.embedded.resources import crd_to_type
from pytest_istiolab.embedded.schema import (
    apply_error_message,
    prune_unknown_fields,
    strict_error_message,
    validate_custom_resource,
)
from pytest_istiolab.embedded.store import Store

CRD_NAMES = {
    "authorizationpolicies.security.istio.io", "destinationrules.networking.istio.io",
    "envoyfilters.networking.istio.io", "gateways.networking.istio.io",
    "peerauthentications.security.istio.io", "proxyconfigs.networking.istio.io",
    "requestauthentications.security.istio.io", "serviceentries.networking.istio.io",
    "sidecars.networking.istio.io", "telemetries.telemetry.istio.io",
    "virtualservices.networking.istio.io", "wasmplugins.extensions.istio.io",
    "workloadentries.networking.istio.io", "workloadgroups.networking.istio.io",
}


def _crds() -> dict[str, dict]:
    return {c["metadata"]["name"]: c for c in istio_crds()}


def test_exactly_the_14_crds_of_1_26() -> None:
    assert set(_crds()) == CRD_NAMES


@pytest.mark.parametrize(("name", "short", "preferred", "served", "storage"), [
    ("virtualservices.networking.istio.io", ["vs"], "v1", {"v1", "v1alpha3", "v1beta1"},
     "v1beta1"),
    ("destinationrules.networking.istio.io", ["dr"], "v1", {"v1", "v1alpha3", "v1beta1"},
     "v1beta1"),
    ("gateways.networking.istio.io", ["gw"], "v1", {"v1", "v1alpha3", "v1beta1"}, "v1beta1"),
    ("serviceentries.networking.istio.io", ["se"], "v1", {"v1", "v1alpha3", "v1beta1"},
     "v1beta1"),
    ("workloadentries.networking.istio.io", ["we"], "v1", {"v1", "v1alpha3", "v1beta1"},
     "v1beta1"),
    ("workloadgroups.networking.istio.io", ["wg"], "v1", {"v1", "v1alpha3", "v1beta1"},
     "v1beta1"),
    ("envoyfilters.networking.istio.io", None, "v1alpha3", {"v1alpha3"}, "v1alpha3"),
    ("proxyconfigs.networking.istio.io", None, "v1beta1", {"v1beta1"}, "v1beta1"),
    ("peerauthentications.security.istio.io", ["pa"], "v1", {"v1", "v1beta1"}, "v1beta1"),
    ("requestauthentications.security.istio.io", ["ra"], "v1", {"v1", "v1beta1"}, "v1beta1"),
    ("authorizationpolicies.security.istio.io", ["ap"], "v1", {"v1", "v1beta1"}, "v1beta1"),
    ("telemetries.telemetry.istio.io", ["telemetry"], "v1", {"v1", "v1alpha1"}, "v1alpha1"),
    ("wasmplugins.extensions.istio.io", None, "v1alpha1", {"v1alpha1"}, "v1alpha1"),
])
def test_crd_versions_and_short_names(name: str, short: list[str] | None, preferred: str,
                                      served: set[str], storage: str) -> None:
    crd = _crds()[name]
    assert crd["spec"]["names"].get("shortNames") == short
    assert crd["spec"]["scope"] == "Namespaced"
    assert {v["name"] for v in crd["spec"]["versions"] if v["served"]} == served
    assert [v["name"] for v in crd["spec"]["versions"] if v["storage"]] == [storage]
    assert crd_to_type(crd).preferred_version == preferred
    group = crd["spec"]["group"].replace(".", "-")
    assert crd["spec"]["names"]["categories"] == ["istio-io", group]
    assert crd["metadata"]["labels"]["app"] == "istio-pilot"


def test_printer_columns() -> None:
    def cols(name: str) -> list[str]:
        version = _crds()[name]["spec"]["versions"][0]
        return [c["name"] for c in version.get("additionalPrinterColumns", [])]
    assert cols("virtualservices.networking.istio.io") == ["Gateways", "Hosts", "Age"]
    assert cols("destinationrules.networking.istio.io") == ["Host", "Age"]
    assert cols("serviceentries.networking.istio.io") == ["Hosts", "Location", "Resolution",
                                                          "Age"]
    assert cols("peerauthentications.security.istio.io") == ["Mode", "Age"]
    assert cols("authorizationpolicies.security.istio.io") == ["Action", "Age"]
    mode = _crds()["peerauthentications.security.istio.io"]["spec"]["versions"][0][
        "additionalPrinterColumns"][0]
    assert mode["jsonPath"] == ".spec.mtls.mode"


def _names(objs: list[dict]) -> set[tuple[str, str]]:
    return {(o["kind"], o["metadata"]["name"]) for o in objs}


def test_profiles_install_their_components() -> None:
    demo, default = _names(render_install("demo")), _names(render_install("default"))
    minimal = _names(render_install("minimal"))
    for objs in (demo, default, minimal):
        assert ("Deployment", "istiod") in objs and ("ConfigMap", "istio") in objs
        assert ("MutatingWebhookConfiguration", "istio-sidecar-injector") in objs
        assert ("ValidatingWebhookConfiguration", "istio-validator-istio-system") in objs
    assert ("Deployment", "istio-egressgateway") in demo
    assert ("Deployment", "istio-egressgateway") not in default
    assert ("Deployment", "istio-ingressgateway") in default
    assert ("Deployment", "istio-ingressgateway") not in minimal
    assert render_install("empty") == []
    assert ("HorizontalPodAutoscaler", "istiod") in default
    assert ("HorizontalPodAutoscaler", "istiod") not in demo


def test_every_object_carries_the_owner_labels() -> None:
    for o in render_install("demo"):
        labels = o["metadata"]["labels"]
        assert labels["operator.istio.io/managed"] == "Reconcile"
        assert labels["operator.istio.io/version"] == "1.26.0"
        assert labels["istio.io/rev"] == "default"
        assert labels[COMPONENT_LABEL] in ("Base", "Pilot", "IngressGateways", "EgressGateways")


def _get(objs: list[dict], kind: str, name: str) -> dict:
    return next(o for o in objs if o["kind"] == kind and o["metadata"]["name"] == name)


def test_gateway_services_and_deployments() -> None:
    objs = render_install("demo")
    ingress = _get(objs, "Service", "istio-ingressgateway")["spec"]
    assert ingress["type"] == "LoadBalancer"
    assert [(p["name"], p["port"], p["targetPort"]) for p in ingress["ports"]] == [
        ("status-port", 15021, 15021), ("http2", 80, 8080), ("https", 443, 8443),
        ("tcp", 31400, 31400), ("tls", 15443, 15443)]
    default = _get(render_install("default"), "Service", "istio-ingressgateway")["spec"]
    assert [(p["name"], p["port"], p["targetPort"]) for p in default["ports"]] == [
        ("status-port", 15021, 15021), ("http2", 80, 8080), ("https", 443, 8443)]
    egress = _get(objs, "Service", "istio-egressgateway")["spec"]
    assert egress["type"] == "ClusterIP"
    assert [(p["name"], p["port"], p["targetPort"]) for p in egress["ports"]] == [
        ("http2", 80, 8080), ("https", 443, 8443)]
    istiod = _get(objs, "Service", "istiod")["spec"]
    assert [p["port"] for p in istiod["ports"]] == [15010, 15012, 443, 15014]
    dep = _get(objs, "Deployment", "istio-ingressgateway")
    assert dep["metadata"]["labels"]["istio"] == "ingressgateway"
    container = dep["spec"]["template"]["spec"]["containers"][0]
    assert container["name"] == "istio-proxy" and container["args"][:2] == ["proxy", "router"]
    assert container["image"] == "docker.io/istio/proxyv2:1.26.0"
    pilot = _get(objs, "Deployment", "istiod")
    assert pilot["spec"]["template"]["spec"]["containers"][0]["image"] == \
        "docker.io/istio/pilot:1.26.0"
    assert pilot["metadata"]["labels"]["app"] == "istiod"
    assert pilot["metadata"]["labels"]["istio"] == "pilot"


def _mesh(objs: list[dict]) -> dict:
    return yaml.safe_load(_get(objs, "ConfigMap", "istio")["data"]["mesh"])


def test_mesh_config_per_profile_and_overlays() -> None:
    demo = _mesh(render_install("demo"))
    assert demo["accessLogFile"] == "/dev/stdout"
    assert [p["name"] for p in demo["extensionProviders"]] == ["otel", "skywalking",
                                                               "otel-tracing", "jaeger"]
    assert demo["defaultConfig"]["discoveryAddress"] == "istiod.istio-system.svc:15012"
    assert demo["enablePrometheusMerge"] is True and demo["rootNamespace"] == "istio-system"
    assert "accessLogFile" not in _mesh(render_install("default"))
    registry_only = _mesh(render_install("default", {
        "meshConfig.outboundTrafficPolicy.mode": "REGISTRY_ONLY"}))
    assert registry_only["outboundTrafficPolicy"] == {"mode": "REGISTRY_ONLY"}
    json_logs = _mesh(render_install("default", {
        "profile": "demo", "values.meshConfig.accessLogFile": '"/dev/stdout"',
        "values.meshConfig.accessLogEncoding": "JSON"}))
    assert json_logs["accessLogEncoding"] == "JSON"
    assert json_logs["accessLogFile"] == "/dev/stdout"
    mesh_networks = _get(render_install("demo"), "ConfigMap", "istio")["data"]["meshNetworks"]
    assert yaml.safe_load(mesh_networks) == {"networks": {}}


def test_component_overlays_and_operator_files() -> None:
    spec = resolve("demo", {"components.egressGateways[0].enabled": "false"})
    assert not spec.components["egressGateways"]
    op = {"apiVersion": "install.istio.io/v1alpha1", "kind": "IstioOperator", "spec": {
        "profile": "minimal", "meshConfig": {"accessLogEncoding": "JSON"},
        "components": {"ingressGateways": [{"name": "istio-ingressgateway", "enabled": True}]}}}
    spec = resolve(None, {}, op)
    assert spec.profile == "minimal" and spec.components["ingressGateways"]
    assert spec.mesh_config == {"accessLogEncoding": "JSON"}


@pytest.mark.parametrize(("sets", "message"), [
    ({"profile": "ambient"}, "ambient mode"),
    ({"profile": "nosuch"}, "profiles are"),
    ({"tag": "1.25.5"}, r"this istioctl installs Istio 1.26.0 .*that version.s istioctl"),
    ({"revision": "Canary_1"}, "a revision is a DNS label"),
    ({"bogus.path": "1"}, 'unknown field "bogus"'),
])
def test_unmodelled_settings_are_refused(sets: dict, message: str) -> None:
    with pytest.raises(InstallError, match=message):
        render_install("demo", sets)


def test_values_paths_are_kept_with_a_notice() -> None:
    spec = resolve("demo", {"values.global.proxy.privileged": "true"})
    assert spec.values["global"]["proxy"]["privileged"] is True
    assert any("values.global.proxy.privileged" in n for n in spec.notices)
    assert not resolve("demo", {"values.pilot.traceSampling": "50"}).notices


# --------------------------------------------------------------------- schemas
def _vs_type():  # noqa: ANN202
    store = Store()
    crd = _crds()["virtualservices.networking.istio.io"]
    store.create(store.resource_type("apiextensions.k8s.io", "customresourcedefinitions"), crd)
    return store.resource_type("networking.istio.io", "virtualservices")


VS = {"apiVersion": "networking.istio.io/v1alpha3", "kind": "VirtualService",
      "metadata": {"name": "reviews"},
      "spec": {"hosts": ["reviews"], "http": [{"match": [{"headers": {"end-user": {
          "exact": "jason"}}}], "route": [{"destination": {"host": "reviews", "subset": "v2"},
                                           "weight": 100}], "fault": {"delay": {
              "percent": 100, "fixedDelay": "7s"}}, "corsPolicy": {"anything": "goes"}}]}}


def test_a_valid_virtual_service_has_no_unknown_fields() -> None:
    assert validate_custom_resource(_vs_type(), VS) == []


def test_unknown_fields_are_reported_with_kubernetes_paths() -> None:
    rt = _vs_type()
    bad = yaml.safe_load(yaml.safe_dump(VS))
    bad["spec"]["hosst"] = ["x"]
    bad["spec"]["http"][0]["route"][0]["destination"]["hots"] = "x"
    unknown = validate_custom_resource(rt, bad)
    assert unknown == ["spec.http[0].route[0].destination.hots", "spec.hosst"]  # JSON order
    unknown.reverse()
    assert strict_error_message(rt, bad, unknown[:1]) == (
        'VirtualService in version "v1alpha3" cannot be handled as a VirtualService: '
        'strict decoding error: unknown field "spec.hosst"')
    assert apply_error_message(rt, bad, unknown[:1]).endswith(
        ".spec.hosst: field not declared in schema")
    pruned, paths = prune_unknown_fields(rt, bad)
    assert sorted(paths) == sorted(unknown)
    assert "hosst" not in pruned["spec"]
    assert pruned["spec"]["http"][0]["route"][0]["destination"] == {"host": "reviews",
                                                                    "subset": "v2"}
    assert validate_custom_resource(rt, pruned) == []


@pytest.mark.parametrize(("directive", "apply", "code", "warnings"), [
    (None, False, None, ['unknown field "spec.hosst"']),
    ("Warn", False, None, ['unknown field "spec.hosst"']),
    ("Ignore", False, None, []),
    ("Strict", False, 400, None),
    ("Ignore", True, 500, None),
])
def test_field_validation_directives(directive: str | None, apply: bool, code: int | None,
                                     warnings: list[str] | None) -> None:
    from pytest_istiolab.embedded.schema import enforce_field_validation
    from pytest_istiolab.embedded.store import StoreError

    rt = _vs_type()
    bad = yaml.safe_load(yaml.safe_dump(VS))
    bad["spec"]["hosst"] = ["x"]
    if code is not None:
        with pytest.raises(StoreError) as err:
            enforce_field_validation(rt, bad, directive, apply)
        assert err.value.code == code
        assert "spec.hosst" in err.value.message
        return
    stored, sent = enforce_field_validation(rt, bad, directive, apply)
    assert "hosst" not in stored["spec"] and sent == warnings
    assert enforce_field_validation(rt, VS, "Strict") == (VS, [])
