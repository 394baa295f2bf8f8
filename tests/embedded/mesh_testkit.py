"""Build cluster state by hand for the mesh, workload, curl and listener tests.

No API server and no controllers: Pods (Running, Ready, with podIP), Services (ClusterIP,
NodePorts), Endpoints and Istio config go straight into a :class:`Store`, shaped as the
controllers and ``istioctl install`` would create them.
"""

from __future__ import annotations

import itertools
import random
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import yaml

from pytest_istiolab.embedded.mesh.headers import Headers
from pytest_istiolab.embedded.mesh.model import Request
from pytest_istiolab.embedded.resources import ResourceType
from pytest_istiolab.embedded.runtime import Runtime
from pytest_istiolab.embedded.store import Store
from pytest_istiolab.kube.manifests import substitute

Obj = dict[str, Any]
ISTIO_TYPES = [("virtualservices", "VirtualService", "vs"),
               ("destinationrules", "DestinationRule", "dr"),
               ("gateways", "Gateway", "gw"), ("serviceentries", "ServiceEntry", "se")]
SECURITY_TYPES = [("peerauthentications", "PeerAuthentication", "pa"),
                  ("requestauthentications", "RequestAuthentication", "ra"),
                  ("authorizationpolicies", "AuthorizationPolicy", "ap")]
MANIFESTS = Path(__file__).resolve().parents[2] / "manifests"


def manifest_text(*paths: str, external_host: str = "httpbin.org") -> str:
    """The text of manifests under ``manifests/`` (``${EXTERNAL_HOST}`` filled in), joined."""
    texts = [(MANIFESTS / p).read_text() for p in paths]
    return "\n---\n".join(substitute(t, {"EXTERNAL_HOST": external_host}, p) if "${" in t
                           else t for p, t in zip(paths, texts))


def edited(text: str, *edits: Callable[[Obj], None]) -> str:
    """``text`` with each document passed through ``edits`` (a variant of a manual's file)."""
    docs = [d for d in yaml.safe_load_all(text) if d]
    for doc in docs:
        for edit in edits:
            edit(doc)
    return yaml.safe_dump_all(docs, sort_keys=False)


def any_host(doc: Obj) -> None:
    """Gateway servers and VirtualService hosts become ``*``."""
    if doc["kind"] == "Gateway":
        for server in doc["spec"]["servers"]:
            server["hosts"] = ["*"]
    if doc["kind"] == "VirtualService":
        doc["spec"]["hosts"] = ["*"]


def vs_hosts(*hosts: str) -> Callable[[Obj], None]:
    def edit(doc: Obj) -> None:
        if doc["kind"] == "VirtualService":
            doc["spec"]["hosts"] = list(hosts)
    return edit


def vs_gateways(*names: str) -> Callable[[Obj], None]:
    def edit(doc: Obj) -> None:
        if doc["kind"] == "VirtualService":
            doc["spec"]["gateways"] = list(names)
    return edit


def vs_prefixes(*prefixes: str) -> Callable[[Obj], None]:
    """The first HTTP rule matches exactly these uri prefixes."""
    def edit(doc: Obj) -> None:
        if doc["kind"] == "VirtualService":
            doc["spec"]["http"][0]["match"] = [{"uri": {"prefix": p}} for p in prefixes]
    return edit


def gateway_selector(**labels: str) -> Callable[[Obj], None]:
    def edit(doc: Obj) -> None:
        if doc["kind"] == "Gateway":
            doc["spec"]["selector"] = dict(labels)
    return edit


def renamed(name: str) -> Callable[[Obj], None]:
    def edit(doc: Obj) -> None:
        doc["metadata"]["name"] = name
    return edit


# ---- Istio config the labs apply: the repo's own copies of the 1.26 samples and manual files
NETWORKING = "samples/bookinfo/networking/"
BOOKINFO_GATEWAY = manifest_text(NETWORKING + "bookinfo-gateway.yaml")
TEST_GATEWAY = manifest_text("lab03-traffic-management/gateway.yaml",
                             "lab03-traffic-management/virtualservice.yaml")
HTTPBIN_GATEWAY = manifest_text("lab03-traffic-management/ingressgateway.yaml",
                                "lab03-traffic-management/ingressvs.yaml")
TEST_V2 = manifest_text(NETWORKING + "virtual-service-reviews-test-v2.yaml")
FIFTY_V3 = manifest_text(NETWORKING + "virtual-service-reviews-50-v3.yaml")
SERVICE_ENTRY = manifest_text("lab03-service-entry-egress/egressse.yaml")
EGRESS_GATEWAY = manifest_text("lab03-service-entry-egress/egressgw.yaml")
EGRESS_VIRTUAL_SERVICE = manifest_text("lab03-service-entry-egress/egressvs.yaml")
# only the reviews rule of destination-rule-all.yaml: the mesh tests route reviews alone



DR_ALL = """
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
  - {name: v3, labels: {version: v3}}
"""




PROXY_IMAGE = "docker.io/istio/proxyv2:1.26.0"
BOOKINFO = "docker.io/istio/examples-bookinfo-{}:1.20.3"


class Kit:
    """A store plus helpers; ``kit.rt`` is the Runtime the mesh model reads."""

    def __init__(self, seed: int = 7, istio: bool = True, access_log: bool = True,
                 mesh: Obj | None = None, free_node_ports: bool = False) -> None:
        """``free_node_ports``: take nodePorts the OS says are free (for tests that listen)."""
        self.store = Store()
        self.rt = Runtime(self.store, seed)
        self._pod_ips = (f"10.244.0.{i}" for i in itertools.count(10))
        self._svc_ips = (f"10.96.{i // 250}.{i % 250 + 1}" for i in itertools.count(10))
        self._node_ports: Iterator[int] = free_ports() if free_node_ports else \
            itertools.count(30100)
        for ns in ("default", "istio-system"):
            self.namespace(ns)
        if istio:
            self.install_istio(access_log, mesh)

    # ----------------------------------------------------------------- basics
    def rtype(self, group: str, plural: str) -> ResourceType:
        return self.store.resource_type(group, plural)

    def namespace(self, name: str) -> None:
        if self.store.try_get(self.rtype("", "namespaces"), None, name) is None:
            self.store.create(self.rtype("", "namespaces"), {"metadata": {"name": name}})

    def install_istio(self, access_log: bool = True, mesh: Obj | None = None) -> None:
        for plural, kind, short in ISTIO_TYPES:
            self.store.register_type(ResourceType(
                "networking.istio.io", ("v1", "v1beta1", "v1alpha3"), plural, kind.lower(),
                kind, True, (short,)))
        for plural, kind, short in SECURITY_TYPES:
            self.store.register_type(ResourceType(
                "security.istio.io", ("v1", "v1beta1"), plural, kind.lower(), kind, True,
                (short,)))
        config = {"accessLogFile": "/dev/stdout" if access_log else "",
                  "defaultConfig": {"discoveryAddress": "istiod.istio-system.svc:15012"},
                  "enablePrometheusMerge": True, **(mesh or {})}
        self.set_mesh(config)
        self.gateway_pod("istio-ingressgateway", "ingressgateway",
                         [("status-port", 15021, 15021), ("http2", 80, 8080),
                          ("https", 443, 8443), ("tcp", 31400, 31400), ("tls", 15443, 15443)],
                         service_type="LoadBalancer")
        self.gateway_pod("istio-egressgateway", "egressgateway",
                         [("http2", 80, 8080), ("https", 443, 8443)], service_type="ClusterIP")

    def set_mesh(self, config: Obj) -> None:
        rt = self.rtype("", "configmaps")
        obj = {"metadata": {"name": "istio", "namespace": "istio-system"},
               "data": {"mesh": yaml.safe_dump(config)}}
        if self.store.try_get(rt, "istio-system", "istio") is None:
            self.store.create(rt, obj)
        else:
            self.store.mutate(rt, "istio-system", "istio", lambda o: {**o, "data": obj["data"]})

    def apply(self, text_or_obj: str | Obj, namespace: str = "default") -> list[Obj]:
        """Create (or replace) Istio config from YAML text or a dict."""
        docs = list(yaml.safe_load_all(text_or_obj)) if isinstance(text_or_obj, str) \
            else [text_or_obj]
        out = []
        for doc in filter(None, docs):
            rt = self.store.type_for(doc["apiVersion"], doc["kind"])
            assert rt is not None, f"type {doc['kind']} not registered"
            ns = doc["metadata"].get("namespace", namespace)
            if self.store.try_get(rt, ns, doc["metadata"]["name"]) is not None:
                self.store.delete(rt, ns, doc["metadata"]["name"])
            out.append(self.store.create(rt, doc, ns))
        return out

    def delete(self, group: str, plural: str, name: str, namespace: str = "default") -> None:
        self.store.delete(self.rtype(group, plural), namespace, name)

    # ------------------------------------------------------------- workloads
    def pod(self, name: str, namespace: str, image: str, labels: dict[str, str], *,
            sidecar: bool = True, ports: list[int] | None = None, sa: str = "default",
            env: dict[str, str] | None = None, container: str | None = None,
            args: list[str] | None = None) -> Obj:
        app = {"name": container or labels.get("app", name), "image": image,
               "ports": [{"containerPort": p, "protocol": "TCP"} for p in ports or []]}
        if env:
            app["env"] = [{"name": k, "value": v} for k, v in env.items()]
        if args:
            app["args"] = args
        containers = [app]
        if sidecar:
            containers.append({"name": "istio-proxy", "image": PROXY_IMAGE,
                               "args": ["proxy", "sidecar", "--domain",
                                        "$(POD_NAMESPACE).svc.cluster.local"]})
        obj = {"metadata": {"name": name, "namespace": namespace, "labels": labels},
               "spec": {"serviceAccountName": sa, "containers": containers,
                        "nodeName": "embedded-control-plane"},
               "status": {"phase": "Running", "podIP": next(self._pod_ips),
                          "hostIP": "127.0.0.1",
                          "conditions": [{"type": "Ready", "status": "True"}]}}
        return self.store.create(self.rtype("", "pods"), obj)

    def service(self, name: str, namespace: str, selector: dict[str, str],
                ports: list[tuple[str, int, int]], service_type: str = "ClusterIP") -> Obj:
        spec_ports = []
        for port_name, port, target in ports:
            entry: Obj = {"name": port_name, "port": port, "targetPort": target,
                          "protocol": "TCP"}
            if service_type in ("NodePort", "LoadBalancer"):
                entry["nodePort"] = next(self._node_ports)
            spec_ports.append(entry)
        obj = {"metadata": {"name": name, "namespace": namespace, "labels": {"app": name}},
               "spec": {"type": service_type, "selector": selector, "ports": spec_ports,
                        "clusterIP": next(self._svc_ips)}}
        svc = self.store.create(self.rtype("", "services"), obj)
        self.refresh_endpoints(svc)
        return svc

    def refresh_endpoints(self, svc: Obj) -> None:
        ns, name = svc["metadata"]["namespace"], svc["metadata"]["name"]
        pods, _ = self.store.list(self.rtype("", "pods"), ns)
        selector = svc["spec"]["selector"]
        chosen = [p for p in pods if all(p["metadata"]["labels"].get(k) == v
                                         for k, v in selector.items())]
        subsets = [{"addresses": [{"ip": p["status"]["podIP"],
                                   "targetRef": {"kind": "Pod", "name": p["metadata"]["name"],
                                                 "namespace": ns}} for p in chosen],
                    "ports": [{"name": sp["name"], "port": sp["targetPort"], "protocol": "TCP"}
                              for sp in svc["spec"]["ports"]]}] if chosen else []
        rt = self.rtype("", "endpoints")
        obj = {"metadata": {"name": name, "namespace": ns}, "subsets": subsets}
        if self.store.try_get(rt, ns, name) is None:
            self.store.create(rt, obj)
        else:
            self.store.mutate(rt, ns, name, lambda o: {**o, "subsets": subsets})

    def gateway_pod(self, name: str, istio_label: str, ports: list[tuple[str, int, int]],
                    service_type: str) -> Obj:
        labels = {"app": name, "istio": istio_label}
        pod = self.pod(f"{name}-5d8c7f9b4-abcde", "istio-system", PROXY_IMAGE, labels,
                       sidecar=False, container="istio-proxy", sa=f"{name}-service-account",
                       args=["proxy", "router", "--domain", "$(POD_NAMESPACE).svc.cluster.local"])
        self.service(name, "istio-system", labels, ports, service_type)
        return pod

    def workload(self, name: str, namespace: str, image: str, port: int,
                 service_ports: list[tuple[str, int, int]] | None, *, version: str = "v1",
                 sidecar: bool = True, sa: str | None = None, app: str | None = None,
                 env: dict[str, str] | None = None) -> Obj:
        app = app or name
        labels = {"app": app, "version": version}
        pod = self.pod(f"{name}-{version}-7d9f8c6b5-{version}x1y2", namespace, image, labels,
                       sidecar=sidecar, ports=[port], sa=sa or app, env=env, container=app)
        existing = self.store.try_get(self.rtype("", "services"), namespace, app)
        if existing is not None:
            self.refresh_endpoints(existing)
        elif service_ports:
            self.service(app, namespace, {"app": app}, service_ports)
        return pod

    def bookinfo(self, namespace: str = "default", sidecar: bool = True) -> dict[str, Obj]:
        pods = {}
        for app, versions in (("details", ["v1"]), ("ratings", ["v1"]),
                              ("reviews", ["v1", "v2", "v3"]), ("productpage", ["v1"])):
            for v in versions:
                pods[f"{app}-{v}"] = self.workload(
                    app, namespace, BOOKINFO.format(f"{app}-{v}"), 9080, [("http", 9080, 9080)],
                    version=v, sidecar=sidecar, sa=f"bookinfo-{app}")
        return pods

    def sleep(self, namespace: str = "default", sidecar: bool = True) -> Obj:
        return self.workload("sleep", namespace, "curlimages/curl:8.14.1", 80,
                             [("http", 80, 80)], sidecar=sidecar)

    def httpbin(self, namespace: str = "default", sidecar: bool = True) -> Obj:
        return self.workload("httpbin", namespace, "docker.io/mccutchen/go-httpbin:v2.15.0",
                             8080, [("http", 8000, 8080)], sidecar=sidecar)

    def deploy(self, path: str, namespace: str = "default", sidecar: bool = True) -> None:
        """Apply a sample manifest as the controllers would: one Pod per Deployment."""
        docs = [d for d in yaml.safe_load_all((MANIFESTS / path).read_text()) if d]
        for doc in docs:
            if doc["kind"] == "Deployment":
                template = doc["spec"]["template"]
                spec = template["spec"]
                app = spec["containers"][0]
                self.pod(f"{doc['metadata']['name']}-6d5c7b8f9-k2x4q", namespace, app["image"],
                         dict(template["metadata"].get("labels") or {}), sidecar=sidecar,
                         ports=[p["containerPort"] for p in app.get("ports") or []],
                         sa=spec.get("serviceAccountName", "default"),
                         env={e["name"]: e["value"] for e in app.get("env") or []},
                         container=app["name"])
        for doc in docs:
            if doc["kind"] == "Service":
                ports = [(p.get("name", ""), p["port"], p.get("targetPort", p["port"]))
                         for p in doc["spec"]["ports"]]
                self.service(doc["metadata"]["name"], namespace, doc["spec"]["selector"], ports)

    # ----------------------------------------------------------------- lookups
    def get_pod(self, prefix: str, namespace: str = "default") -> Obj:
        pods, _ = self.store.list(self.rtype("", "pods"), namespace)
        return next(p for p in pods if p["metadata"]["name"].startswith(prefix))

    def ingress_pod(self) -> Obj:
        return self.get_pod("istio-ingressgateway", "istio-system")

    def egress_pod(self) -> Obj:
        return self.get_pod("istio-egressgateway", "istio-system")

    def logs(self, pod: Obj, container: str = "istio-proxy") -> list[str]:
        text = self.rt.logs.read(pod["metadata"]["namespace"], pod["metadata"]["name"], container)
        return text.splitlines()

    def node_port(self, service: str, port_name: str, namespace: str = "istio-system") -> int:
        svc = self.store.get(self.rtype("", "services"), namespace, service)
        return next(p["nodePort"] for p in svc["spec"]["ports"] if p["name"] == port_name)


def free_ports() -> Iterator[int]:
    """Ports below the NodePort and ephemeral ranges (no cluster or client takes them)."""
    rng = random.Random()
    while True:
        port = rng.randrange(20000, 30000)
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        yield port


def request(path: str = "/", authority: str = "example", method: str = "GET",
            headers: dict[str, str] | None = None, body: bytes = b"") -> Request:
    return Request(method, path, authority, Headers(headers or {}), body)
