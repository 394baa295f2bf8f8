"""Objects of the ``Base`` (Istio core) and ``Pilot`` (istiod) components of Istio 1.26.

Base: the 14 CRDs, the reader ServiceAccount and the default-revision validating webhook.
Pilot (named ``<name>-<revision>`` when ``revision`` is set, as the chart names them):
istiod's ServiceAccount, RBAC, the ``istio`` mesh ConfigMap (``data.mesh``,
``data.meshNetworks``), the ``istio-sidecar-injector`` ConfigMap (``data.values`` is what
the embedded injector reads), the injection and validation webhook configurations, the
istiod Deployment, Service, PodDisruptionBudget and (when autoscaling) HPA.
The webhooks point at istiod but the embedded cluster calls no webhook: injection is an
in-process admission plugin, and validation is not modelled.
"""

from __future__ import annotations

import json
from typing import Any

import yaml

from .common import NAMESPACE, chart_labels, obj
from .crds import istio_crds
from .profiles import InstallSpec
from .sidecar import HUB, canonical_resources

Obj = dict[str, Any]
PILOT = "Pilot"
BASE = "Base"
ISTIO_GROUPS = ["config.istio.io", "networking.istio.io", "security.istio.io",
                "telemetry.istio.io", "extensions.istio.io"]


def pilot_image(version: str) -> str:
    return f"{HUB}/pilot:{version}"


def base_objects(spec: InstallSpec) -> list[Obj]:
    """The shared CRDs and reader account; the default validator only with the default
    revision (a revisioned install leaves the default one alone)."""
    labels = chart_labels("istio-reader", BASE)
    out = [*istio_crds(spec.release.networking_storage),
           obj("v1", "ServiceAccount", "istio-reader-service-account", labels)]
    if not spec.revision:
        out.append(obj("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration",
                       "istiod-default-validator",
                       chart_labels("istiod", BASE, {"istio": "istiod"}),
                       {"webhooks": [_validation_webhook("validation.istio.io", {}, "istiod")]},
                       namespaced=False))
    return out


def mesh_config(spec: InstallSpec) -> Obj:
    mesh: Obj = {"defaultConfig": {"discoveryAddress":
                                   f"{spec.named('istiod')}.istio-system.svc:15012"},
                 "defaultProviders": {"metrics": ["prometheus"]},
                 "enablePrometheusMerge": True, "rootNamespace": NAMESPACE,
                 "trustDomain": "cluster.local"}
    _merge(mesh, spec.mesh_config)
    return mesh


def _merge(into: Obj, overlay: Obj) -> None:
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


def injector_values(spec: InstallSpec) -> Obj:
    glob = spec.values.get("global") or {}
    return {"global": {"proxy": glob.get("proxy") or {}, "meshID": glob.get("meshID") or "",
                       "multiCluster": glob.get("multiCluster") or {"clusterName": ""},
                       "hub": HUB, "tag": spec.version,
                       "istioNamespace": NAMESPACE},
            "revision": spec.revision,
            "sidecarInjectorWebhook": {"enableNamespacesByDefault": False,
                                       "rewriteAppHTTPProbe": True},
            "pilot": {"traceSampling": (spec.values.get("pilot") or {}).get("traceSampling")}}


def pilot_objects(spec: InstallSpec) -> list[Obj]:
    labels = chart_labels("istiod", PILOT, {"istio": "pilot"})
    istiod, rev = spec.named("istiod"), spec.rev_label
    selector = {"app": "istiod", "istio.io/rev": rev} if spec.revision else {"istio": "pilot"}
    sa = [{"kind": "ServiceAccount", "name": istiod, "namespace": NAMESPACE}]
    suffix = f"-{spec.revision}-{NAMESPACE}" if spec.revision else f"-{NAMESPACE}"
    reader = [{"kind": "ServiceAccount", "name": "istio-reader-service-account",
               "namespace": NAMESPACE}]
    out = [
        obj("v1", "ServiceAccount", istiod, labels),
        *_cluster_role("istiod-clusterrole" + suffix, labels, sa, [
            {"apiGroups": ISTIO_GROUPS, "resources": ["*"], "verbs": ["get", "watch", "list"]},
            {"apiGroups": [""], "resources": ["pods", "nodes", "services", "namespaces",
                                              "endpoints"], "verbs": ["get", "list", "watch"]}]),
        *_cluster_role("istiod-gateway-controller" + suffix, labels, sa, [
            {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["*"]},
            {"apiGroups": [""], "resources": ["services", "serviceaccounts"], "verbs": ["*"]}]),
        *_cluster_role("istio-reader-clusterrole" + suffix, labels, reader, [
            {"apiGroups": ISTIO_GROUPS, "resources": ["*"], "verbs": ["get", "list", "watch"]}]),
        obj("rbac.authorization.k8s.io/v1", "Role", istiod, labels, {"rules": [
            {"apiGroups": [""], "resources": ["configmaps", "secrets"],
             "verbs": ["create", "get", "watch", "list", "update", "delete"]}]}),
        obj("rbac.authorization.k8s.io/v1", "RoleBinding", istiod, labels, {
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                        "name": istiod}, "subjects": sa}),
        obj("v1", "ConfigMap", spec.named("istio"),
            {k: v for k, v in labels.items() if k != "app"}, {
            "data": {"mesh": yaml.safe_dump(mesh_config(spec), sort_keys=True),
                     "meshNetworks": "networks: {}\n"}}),
        obj("v1", "ConfigMap", spec.named("istio-sidecar-injector"), labels, {"data": {
            "config": yaml.safe_dump({"policy": "enabled", "alwaysInjectSelector": [],
                                      "neverInjectSelector": [], "injectedAnnotations": {},
                                      "defaultTemplates": ["sidecar"],
                                      "templates": {"sidecar": "(modelled in-process by the "
                                                    "embedded cluster)"}}),
            "values": json.dumps(injector_values(spec), indent=2, sort_keys=True)}}),
        obj("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration",
            spec.named("istio-sidecar-injector"), {**labels, "app": "sidecar-injector"},
            {"webhooks": injection_webhooks("rev.", rev, istiod)}, namespaced=False),
        obj("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration",
            spec.named("istio-validator") + "-istio-system", labels, {"webhooks": [
                _validation_webhook("rev.validation.istio.io", {"matchExpressions": [
                    {"key": "istio.io/rev", "operator": "In", "values": [rev]}]}, istiod)]},
            namespaced=False),
        istiod_deployment(spec, labels, selector),
        obj("v1", "Service", istiod, labels, {"spec": {
            "type": "ClusterIP", "selector": {"app": "istiod", **(
                {"istio.io/rev": rev} if spec.revision else {"istio": "pilot"})},
            "ports": [
                {"name": "grpc-xds", "port": 15010, "protocol": "TCP"},
                {"name": "https-dns", "port": 15012, "protocol": "TCP"},
                {"name": "https-webhook", "port": 443, "targetPort": 15017, "protocol": "TCP"},
                {"name": "http-monitoring", "port": 15014, "protocol": "TCP"}]}}),
        obj("policy/v1", "PodDisruptionBudget", istiod, labels, {"spec": {
            "minAvailable": 1, "selector": {"matchLabels": {"app": "istiod", **selector}}}}),
    ]
    if not spec.revision:  # the default tag: istio-injection=enabled and istio.io/rev=default
        out.insert(out.index(next(o for o in out if o["kind"] ==
                                  "MutatingWebhookConfiguration")) + 1,
                   tag_webhook("default", "default", labels))
    if (spec.values.get("pilot") or {}).get("autoscaleEnabled"):
        out.append(hpa(istiod, labels))
    return out


def default_validator(revision: str) -> Obj:
    """``istiod-default-validator`` pointed at ``revision``'s istiod, as ``istioctl tag set
    default`` regenerates it (validation itself is not modelled)."""
    istiod = "istiod" if revision == "default" else f"istiod-{revision}"
    labels = {**chart_labels("istiod", BASE, {"istio": "istiod"}), "istio.io/rev": revision,
              "istio.io/tag": "default"}
    return obj("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration",
               "istiod-default-validator", labels,
               {"webhooks": [_validation_webhook("validation.istio.io", {}, istiod)]},
               namespaced=False)


def tag_webhook(tag: str, revision: str, labels: dict[str, str] | None = None) -> Obj:
    """``istio-revision-tag-<tag>``: namespaces labelled ``istio.io/rev=<tag>`` (and, for the
    ``default`` tag, ``istio-injection=enabled``) are injected by ``revision``'s istiod."""
    base = dict(labels or chart_labels("istiod", PILOT, {"istio": "pilot"}))
    base.update({"istio.io/rev": revision, "istio.io/tag": tag, "app": "sidecar-injector"})
    istiod = "istiod" if revision == "default" else f"istiod-{revision}"
    return obj("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration",
               f"istio-revision-tag-{tag}", base,
               {"webhooks": injection_webhooks("", tag, istiod)}, namespaced=False)


def hpa(name: str, labels: dict[str, str]) -> Obj:
    return obj("autoscaling/v2", "HorizontalPodAutoscaler", name, labels, {"spec": {
        "minReplicas": 1, "maxReplicas": 5,
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
        "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {
            "type": "Utilization", "averageUtilization": 80}}}]}})


def istiod_deployment(spec: InstallSpec, labels: dict[str, str],
                      selector: dict[str, str] | None = None) -> Obj:
    pilot = spec.values.get("pilot") or {}
    pod_labels = {**labels, "sidecar.istio.io/inject": "false",
                  "istio.io/dataplane-mode": "none"}
    env = [{"name": "REVISION", "value": spec.rev_label},
           {"name": "PILOT_CERT_PROVIDER", "value": "istiod"},
           {"name": "POD_NAME", "valueFrom": {"fieldRef": {"apiVersion": "v1",
                                                           "fieldPath": "metadata.name"}}},
           {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {
               "apiVersion": "v1", "fieldPath": "metadata.namespace"}}},
           {"name": "SERVICE_ACCOUNT", "valueFrom": {"fieldRef": {
               "apiVersion": "v1", "fieldPath": "spec.serviceAccountName"}}},
           {"name": "KUBECONFIG", "value": "/var/run/secrets/remote/config"},
           {"name": "CA_TRUSTED_NODE_ACCOUNTS",
            "value": "istio-system/ztunnel,kube-system/ztunnel"},
           {"name": "PILOT_TRACE_SAMPLING", "value": str(pilot.get("traceSampling", 1))},
           {"name": "PILOT_ENABLE_ANALYSIS", "value": "false"},
           {"name": "CLUSTER_ID", "value": "Kubernetes"},
           {"name": "PLATFORM", "value": ""}]
    container = {
        "name": "discovery", "image": pilot_image(spec.version),
        "imagePullPolicy": "IfNotPresent",
        "args": ["discovery", "--monitoringAddr=:15014", "--log_output_level=default:info",
                 "--domain", "cluster.local", "--keepaliveMaxServerConnectionAge", "30m"],
        "ports": [{"containerPort": 8080, "name": "http-debug", "protocol": "TCP"},
                  {"containerPort": 15010, "name": "grpc-xds", "protocol": "TCP"},
                  {"containerPort": 15012, "name": "tls-xds", "protocol": "TCP"},
                  {"containerPort": 15017, "name": "https-webhooks", "protocol": "TCP"},
                  {"containerPort": 15014, "name": "http-monitoring", "protocol": "TCP"}],
        "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080},
                           "initialDelaySeconds": 1, "periodSeconds": 3, "timeoutSeconds": 5},
        "env": env, "resources": canonical_resources(pilot.get("resources") or {}),
        "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                            "runAsNonRoot": True, "capabilities": {"drop": ["ALL"]}},
    }
    return obj("apps/v1", "Deployment", spec.named("istiod"), labels, {"spec": {
        "strategy": {"rollingUpdate": {"maxSurge": "100%", "maxUnavailable": "25%"}},
        "selector": {"matchLabels": dict(selector or {"istio": "pilot"})},
        "template": {"metadata": {"labels": pod_labels, "annotations": {
            "prometheus.io/port": "15014", "prometheus.io/scrape": "true",
            "sidecar.istio.io/inject": "false"}},
            "spec": {"serviceAccountName": spec.named("istiod"), "tolerations": [
                {"key": "cni.istio.io/not-ready", "operator": "Exists"}],
                "containers": [container]}}}})


def _cluster_role(name: str, labels: dict[str, str], subjects: list[Obj],
                  rules: list[Obj]) -> list[Obj]:
    rbac = "rbac.authorization.k8s.io/v1"
    return [obj(rbac, "ClusterRole", name, labels, {"rules": rules}, namespaced=False),
            obj(rbac, "ClusterRoleBinding", name, labels, {
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                            "name": name}, "subjects": subjects}, namespaced=False)]


def _client(path: str, service: str = "istiod") -> Obj:
    return {"service": {"name": service, "namespace": NAMESPACE, "path": path, "port": 443}}


def injection_webhooks(prefix: str, rev: str = "default", service: str = "istiod") -> list[Obj]:
    """A revision's (``rev.`` prefix) or a tag's webhooks; ``rev`` is the revision or tag
    the namespace and object selectors match."""
    def hook(name: str, ns_sel: list[Obj], obj_sel: list[Obj]) -> Obj:
        return {"name": f"{prefix}{name}.sidecar-injector.istio.io",
                "clientConfig": _client("/inject", service),
                "rules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"],
                           "resources": ["pods"], "scope": "*"}],
                "failurePolicy": "Fail", "matchPolicy": "Equivalent", "sideEffects": "None",
                "reinvocationPolicy": "Never", "timeoutSeconds": 10,
                "admissionReviewVersions": ["v1"],
                "namespaceSelector": {"matchExpressions": ns_sel},
                "objectSelector": {"matchExpressions": obj_sel}}

    def req(key: str, op: str, values: list[str] | None = None) -> Obj:
        return {"key": key, "operator": op, **({"values": values} if values else {})}
    not_false = req("sidecar.istio.io/inject", "NotIn", ["false"])
    if prefix or rev != "default":
        return [
            hook("namespace", [req("istio.io/rev", "In", [rev]),
                               req("istio-injection", "DoesNotExist")], [not_false]),
            hook("object", [req("istio.io/rev", "DoesNotExist"),
                            req("istio-injection", "DoesNotExist")],
                 [not_false, req("istio.io/rev", "In", [rev])])]
    return [
        hook("namespace", [req("istio-injection", "In", ["enabled"])], [not_false]),
        hook("object", [req("istio-injection", "DoesNotExist"),
                        req("istio.io/rev", "DoesNotExist")],
             [req("sidecar.istio.io/inject", "In", ["true"]),
              req("istio.io/rev", "DoesNotExist")])]


def _validation_webhook(name: str, object_selector: Obj, service: str) -> Obj:
    return {"name": name, "clientConfig": _client("/validate", service),
            "rules": [{"apiGroups": ISTIO_GROUPS, "apiVersions": ["*"],
                       "operations": ["CREATE", "UPDATE"], "resources": ["*"], "scope": "*"}],
            "failurePolicy": "Ignore", "matchPolicy": "Equivalent", "sideEffects": "None",
            "timeoutSeconds": 10, "admissionReviewVersions": ["v1", "v1beta1"],
            "objectSelector": object_selector}
