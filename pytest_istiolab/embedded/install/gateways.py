"""The ``IngressGateways`` and ``EgressGateways`` components of Istio 1.26.

``istio-ingressgateway``: a ``LoadBalancer`` Service with the istio-ingress chart's ports
(status-port 15021, http2 80->8080, https 443->8443); the demo profile's
``profile-demo.yaml`` replaces them with those plus tcp 31400 and tls 15443.
``istio-egressgateway``: ``ClusterIP`` (http2 80->8080, https 443->8443). Each has a
Deployment running ``proxyv2`` in router mode, a ServiceAccount, an SDS Role/RoleBinding, a
PodDisruptionBudget and, when autoscaling, an HPA. The ingress gateway's objects go to
``components.ingressGateways[0].namespace`` (istio-system unless set; Helm's layout uses
``istio-ingress``), which must exist: istioctl creates only the Istio namespace.
"""

from __future__ import annotations

from typing import Any

from .common import NAMESPACE, chart_labels, obj, proxy_env
from .istiod import hpa
from .profiles import InstallSpec
from .sidecar import canonical_resources, proxy_image

Obj = dict[str, Any]

INGRESS_PORTS = [
    {"name": "status-port", "port": 15021, "protocol": "TCP", "targetPort": 15021},
    {"name": "http2", "port": 80, "protocol": "TCP", "targetPort": 8080},
    {"name": "https", "port": 443, "protocol": "TCP", "targetPort": 8443},
]
DEMO_INGRESS_PORTS = [
    *INGRESS_PORTS,
    {"name": "tcp", "port": 31400, "protocol": "TCP", "targetPort": 31400},
    {"name": "tls", "port": 15443, "protocol": "TCP", "targetPort": 15443},
]
EGRESS_PORTS = [
    {"name": "http2", "port": 80, "protocol": "TCP", "targetPort": 8080},
    {"name": "https", "port": 443, "protocol": "TCP", "targetPort": 8443},
]


def ingress_objects(spec: InstallSpec) -> list[Obj]:
    ports = DEMO_INGRESS_PORTS if spec.profile == "demo" else INGRESS_PORTS
    return gateway_objects(spec, "istio-ingressgateway", "ingressgateway", "IngressGateways",
                           "LoadBalancer", ports, spec.ingress_namespace)


def egress_objects(spec: InstallSpec) -> list[Obj]:
    return gateway_objects(spec, "istio-egressgateway", "egressgateway", "EgressGateways",
                           "ClusterIP", EGRESS_PORTS)


def gateway_objects(spec: InstallSpec, name: str, istio: str, component: str, svc_type: str,
                    ports: list[Obj], namespace: str = NAMESPACE) -> list[Obj]:
    labels = chart_labels(name, component, {"istio": istio})
    sa = f"{name}-service-account"
    rbac = "rbac.authorization.k8s.io/v1"
    out = [
        obj("v1", "ServiceAccount", sa, labels),
        obj(rbac, "Role", f"{name}-sds", labels, {"rules": [
            {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "watch", "list"]}]}),
        obj(rbac, "RoleBinding", f"{name}-sds", labels, {
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                        "name": f"{name}-sds"},
            "subjects": [{"kind": "ServiceAccount", "name": sa}]}),
        gateway_deployment(spec, name, istio, labels, sa, ports, namespace),
        obj("v1", "Service", name, labels, {"spec": {
            "type": svc_type, "selector": {"app": name, "istio": istio},
            "ports": [dict(p) for p in ports]}}),
        obj("policy/v1", "PodDisruptionBudget", name, labels, {"spec": {
            "minAvailable": 1, "selector": {"matchLabels": {"app": name, "istio": istio}}}}),
    ]
    if ((spec.values.get("gateways") or {}).get(name) or {}).get("autoscaleEnabled"):
        out.append(hpa(name, labels))
    for o in out:
        o["metadata"]["namespace"] = namespace
    return out


def gateway_deployment(spec: InstallSpec, name: str, istio: str, labels: dict[str, str],
                       sa: str, ports: list[Obj], namespace: str = NAMESPACE) -> Obj:
    proxy = (spec.values.get("global") or {}).get("proxy") or {}
    pod_labels = {**labels, "chart": "gateways", "heritage": "Tiller",
                  "service.istio.io/canonical-name": name,
                  "service.istio.io/canonical-revision": "latest",
                  "sidecar.istio.io/inject": "false"}
    container_ports = [{"containerPort": int(p["targetPort"]), "protocol": "TCP"}
                       for p in ports] + [{"containerPort": 15090, "name": "http-envoy-prom",
                                           "protocol": "TCP"}]
    container = {
        "name": "istio-proxy", "image": proxy_image(spec.version),
        "imagePullPolicy": "IfNotPresent",
        "args": ["proxy", "router", "--domain", "$(POD_NAMESPACE).svc.cluster.local",
                 f"--proxyLogLevel={proxy.get('logLevel', 'warning')}",
                 f"--proxyComponentLogLevel={proxy.get('componentLogLevel', 'misc:error')}",
                 "--log_output_level=default:info"],
        "ports": container_ports,
        "env": proxy_env(name, istiod=spec.named("istiod"), namespace=namespace),
        "readinessProbe": {"httpGet": {"path": "/healthz/ready", "port": 15021,
                                       "scheme": "HTTP"}, "failureThreshold": 30,
                           "initialDelaySeconds": 1, "periodSeconds": 2, "timeoutSeconds": 1,
                           "successThreshold": 1},
        "resources": canonical_resources(proxy.get("resources") or {}),
        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
                            "privileged": False, "readOnlyRootFilesystem": True},
        "volumeMounts": [
            {"mountPath": "/var/run/secrets/workload-spiffe-uds", "name": "workload-socket"},
            {"mountPath": "/var/run/secrets/credential-uds", "name": "credential-socket"},
            {"mountPath": "/var/run/secrets/workload-spiffe-credentials",
             "name": "workload-certs"},
            {"mountPath": "/etc/istio/proxy", "name": "istio-envoy"},
            {"mountPath": "/etc/istio/config", "name": "config-volume"},
            {"mountPath": "/var/run/secrets/istio", "name": "istiod-ca-cert"},
            {"mountPath": "/var/run/secrets/tokens", "name": "istio-token", "readOnly": True},
            {"mountPath": "/var/lib/istio/data", "name": "istio-data"},
            {"mountPath": "/etc/istio/pod", "name": "podinfo"},
        ],
    }
    volumes = [
        {"name": "workload-socket", "emptyDir": {}}, {"name": "credential-socket", "emptyDir": {}},
        {"name": "workload-certs", "emptyDir": {}},
        {"name": "istiod-ca-cert", "configMap": {"name": "istio-ca-root-cert"}},
        {"name": "podinfo", "downwardAPI": {"items": [
            {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
            {"path": "annotations", "fieldRef": {"fieldPath": "metadata.annotations"}}]}},
        {"name": "istio-envoy", "emptyDir": {}}, {"name": "istio-data", "emptyDir": {}},
        {"name": "istio-token", "projected": {"sources": [{"serviceAccountToken": {
            "audience": "istio-ca", "expirationSeconds": 43200, "path": "istio-token"}}]}},
        {"name": "config-volume", "configMap": {"name": spec.named("istio"), "optional": True}},
    ]
    return obj("apps/v1", "Deployment", name, labels, {"spec": {
        "selector": {"matchLabels": {"app": name, "istio": istio}},
        "strategy": {"rollingUpdate": {"maxSurge": "100%", "maxUnavailable": "25%"}},
        "template": {"metadata": {"labels": pod_labels, "annotations": {
            "istio.io/rev": "default", "prometheus.io/path": "/stats/prometheus",
            "prometheus.io/port": "15020", "prometheus.io/scrape": "true",
            "sidecar.istio.io/inject": "false"}},
            "spec": {"serviceAccountName": sa, "securityContext": {
                "runAsUser": 1337, "runAsGroup": 1337, "runAsNonRoot": True, "fsGroup": 1337},
                "containers": [container], "volumes": volumes}}}})
