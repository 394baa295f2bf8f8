"""The Istio 1.26 sidecar template: ``istio-init``, ``istio-proxy`` and their volumes.

Field for field what the 1.26 injector adds to a pod in sidecar mode (REDIRECT interception).
Values that depend on the installation (proxy resources, mesh ID, trust domain, cluster ID,
revision) come from :class:`SidecarValues`, which the injector reads from the
``istio-sidecar-injector`` and ``istio`` ConfigMaps.

Native sidecars (``SidecarValues.native``; Istio 1.27's ``ENABLE_NATIVE_SIDECARS=auto`` on a
node whose kubelet is >= 1.33, or the ``sidecar.istio.io/nativeSidecar: "true"`` annotation):
as the 1.27 template (``files/injection-template.yaml``) writes them, ``istio-proxy`` is an
init container right after ``istio-init`` with ``restartPolicy: Always`` and a ``preStop``
hook that drains Envoy (``pilot-agent request --debug-port=15020 POST drain``); the status
annotation lists it among the init containers and ``"containers": null``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from .releases import DEFAULT_VERSION

ISTIO_VERSION = DEFAULT_VERSION
HUB = "docker.io/istio"


def proxy_image(version: str) -> str:
    return f"{HUB}/proxyv2:{version}"


PROXY_IMAGE = proxy_image(ISTIO_VERSION)
SIDECAR_VOLUMES = ("workload-socket", "credential-socket", "workload-certs", "istio-envoy",
                   "istio-data", "istio-podinfo", "istio-token", "istiod-ca-cert")

Obj = dict[str, Any]


@dataclass
class SidecarValues:
    """Installation-dependent inputs of the template."""

    requests: dict[str, str] = field(default_factory=lambda: {"cpu": "100m", "memory": "128Mi"})
    limits: dict[str, str] = field(default_factory=lambda: {"cpu": "2", "memory": "1Gi"})
    revision: str = "default"
    cluster_id: str = "Kubernetes"
    mesh_id: str = "cluster.local"
    trust_domain: str = "cluster.local"
    log_level: str = "warning"
    component_log_level: str = "misc:error"
    image: str = PROXY_IMAGE
    native: bool = False  # istio-proxy as a native sidecar (a restartable init container)

    @property
    def istiod(self) -> str:
        """The istiod Service this revision's proxies connect to."""
        return "istiod" if self.revision == "default" else f"istiod-{self.revision}"

    @property
    def version(self) -> str:
        return self.image.rsplit(":", 1)[-1]

    def resources(self) -> Obj:
        return canonical_resources({"limits": self.limits, "requests": self.requests})


def canonical_quantity(value: Any) -> str:
    """Quantities as kube-apiserver stores them: ``2000m`` -> ``2``, ``1024Mi`` -> ``1Gi``."""
    text = str(value)
    if text.endswith("m") and text[:-1].isdigit() and int(text[:-1]) % 1000 == 0:
        return str(int(text[:-1]) // 1000)
    units = ["Ki", "Mi", "Gi", "Ti"]
    for i, unit in enumerate(units[:-1]):
        if text.endswith(unit) and text[:-2].isdigit():
            number = int(text[:-2])
            while number and number % 1024 == 0 and i < len(units) - 1:
                number, i = number // 1024, i + 1
            return f"{number}{units[i]}"
    return text


def canonical_resources(resources: Obj) -> Obj:
    return {kind: {name: canonical_quantity(q) for name, q in (values or {}).items()}
            for kind, values in resources.items() if values}


def init_container(values: SidecarValues) -> Obj:
    return {
        "name": "istio-init", "image": values.image,
        "args": ["istio-iptables", "-p", "15001", "-z", "15006", "-u", "1337", "-m", "REDIRECT",
                 "-i", "*", "-x", "", "-b", "*", "-d", "15090,15021,15020",
                 "--log_output_level=default:info"],
        "imagePullPolicy": "IfNotPresent",
        "resources": values.resources(),
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "capabilities": {"add": ["NET_ADMIN", "NET_RAW"], "drop": ["ALL"]},
            "privileged": False, "readOnlyRootFilesystem": False, "runAsGroup": 0,
            "runAsNonRoot": False, "runAsUser": 0},
    }


def pod_ports_json(app_containers: list[Obj]) -> str:
    """The ``ISTIO_META_POD_PORTS`` value: the app containers' ports, one per line."""
    ports = []
    for c in app_containers:
        for p in c.get("ports") or []:
            entry: Obj = {}
            if p.get("name"):
                entry["name"] = p["name"]
            entry["containerPort"] = p.get("containerPort")
            entry["protocol"] = p.get("protocol", "TCP")
            ports.append("    " + json.dumps(entry, separators=(",", ":")))
    return "[\n" + ",\n".join(ports) + ("\n" if ports else "") + "]"


def _field(name: str, path: str) -> Obj:
    return {"name": name, "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": path}}}


def _resource(name: str, resource: str, divisor: str | None = None) -> Obj:
    ref: Obj = {"resource": resource}
    if divisor:
        ref["divisor"] = divisor
    return {"name": name, "valueFrom": {"resourceFieldRef": ref}}


def proxy_env(values: SidecarValues, app_containers: list[Obj], workload: str,
              owner: str) -> list[Obj]:
    return [
        {"name": "PILOT_CERT_PROVIDER", "value": "istiod"},
        {"name": "CA_ADDR", "value": f"{values.istiod}.istio-system.svc:15012"},
        _field("POD_NAME", "metadata.name"),
        _field("POD_NAMESPACE", "metadata.namespace"),
        _field("INSTANCE_IP", "status.podIP"),
        _field("SERVICE_ACCOUNT", "spec.serviceAccountName"),
        _field("HOST_IP", "status.hostIP"),
        _resource("ISTIO_CPU_LIMIT", "limits.cpu"),
        {"name": "PROXY_CONFIG", "value": "{}\n"},
        {"name": "ISTIO_META_POD_PORTS", "value": pod_ports_json(app_containers)},
        {"name": "ISTIO_META_APP_CONTAINERS",
         "value": ",".join(c["name"] for c in app_containers)},
        _resource("GOMEMLIMIT", "limits.memory"),
        _resource("GOMAXPROCS", "limits.cpu", "1"),
        {"name": "ISTIO_META_CLUSTER_ID", "value": values.cluster_id},
        _field("ISTIO_META_NODE_NAME", "spec.nodeName"),
        {"name": "ISTIO_META_INTERCEPTION_MODE", "value": "REDIRECT"},
        {"name": "ISTIO_META_WORKLOAD_NAME", "value": workload},
        {"name": "ISTIO_META_OWNER", "value": owner},
        {"name": "ISTIO_META_MESH_ID", "value": values.mesh_id},
        {"name": "TRUST_DOMAIN", "value": values.trust_domain},
    ]


def proxy_container(values: SidecarValues, app_containers: list[Obj], workload: str,
                    owner: str) -> Obj:
    probe = {"httpGet": {"path": "/healthz/ready", "port": 15021, "scheme": "HTTP"},
             "timeoutSeconds": 3, "successThreshold": 1}
    native: Obj = {"restartPolicy": "Always", "lifecycle": {"preStop": {"exec": {"command": [
        "pilot-agent", "request", "--debug-port=15020", "POST", "drain"]}}}} \
        if values.native else {}
    return {
        "name": "istio-proxy", "image": values.image, **native,
        "args": ["proxy", "sidecar", "--domain", "$(POD_NAMESPACE).svc.cluster.local",
                 f"--proxyLogLevel={values.log_level}",
                 f"--proxyComponentLogLevel={values.component_log_level}",
                 "--log_output_level=default:info"],
        "env": proxy_env(values, app_containers, workload, owner),
        "imagePullPolicy": "IfNotPresent",
        "ports": [{"containerPort": 15090, "name": "http-envoy-prom", "protocol": "TCP"}],
        "readinessProbe": {**probe, "failureThreshold": 4, "periodSeconds": 15},
        "startupProbe": {**probe, "failureThreshold": 600, "initialDelaySeconds": 0,
                         "periodSeconds": 1},
        "resources": values.resources(),
        "securityContext": {
            "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
            "privileged": False, "readOnlyRootFilesystem": True, "runAsGroup": 1337,
            "runAsNonRoot": True, "runAsUser": 1337},
        "volumeMounts": [
            {"mountPath": "/var/run/secrets/workload-spiffe-uds", "name": "workload-socket"},
            {"mountPath": "/var/run/secrets/credential-uds", "name": "credential-socket"},
            {"mountPath": "/var/run/secrets/workload-spiffe-credentials",
             "name": "workload-certs"},
            {"mountPath": "/var/run/secrets/istio", "name": "istiod-ca-cert"},
            {"mountPath": "/var/lib/istio/data", "name": "istio-data"},
            {"mountPath": "/etc/istio/proxy", "name": "istio-envoy"},
            {"mountPath": "/var/run/secrets/tokens", "name": "istio-token"},
            {"mountPath": "/etc/istio/pod", "name": "istio-podinfo"},
        ],
    }


def sidecar_volumes() -> list[Obj]:
    def meta_item(path: str, field_path: str) -> Obj:
        return {"path": path, "fieldRef": {"apiVersion": "v1", "fieldPath": field_path}}

    return [
        {"name": "workload-socket", "emptyDir": {}},
        {"name": "credential-socket", "emptyDir": {}},
        {"name": "workload-certs", "emptyDir": {}},
        {"name": "istio-envoy", "emptyDir": {"medium": "Memory"}},
        {"name": "istio-data", "emptyDir": {}},
        {"name": "istio-podinfo", "downwardAPI": {"defaultMode": 420, "items": [
            meta_item("labels", "metadata.labels"),
            meta_item("annotations", "metadata.annotations")]}},
        {"name": "istio-token", "projected": {"defaultMode": 420, "sources": [
            {"serviceAccountToken": {"audience": "istio-ca", "expirationSeconds": 43200,
                                     "path": "istio-token"}}]}},
        {"name": "istiod-ca-cert", "configMap": {"defaultMode": 420,
                                                 "name": "istio-ca-root-cert"}},
    ]


def status_annotation(revision: str, native: bool = False) -> str:
    inits = ["istio-init", "istio-proxy"] if native else ["istio-init"]
    return json.dumps({"initContainers": inits, "containers": None if native else ["istio-proxy"],
                       "volumes": list(SIDECAR_VOLUMES), "imagePullSecrets": None,
                       "revision": revision}, separators=(",", ":"))
