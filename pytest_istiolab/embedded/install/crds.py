"""The 14 CustomResourceDefinitions of Istio 1.26 (``manifests/charts/base``).

Names, scope, short names, categories, served/storage versions, printer columns and labels
as 1.25-1.27 ship them: networking types serve v1, v1alpha3 and v1beta1 (stored as
v1beta1 up to 1.26, as v1 from 1.27: :func:`istio_crds`'s ``networking_storage``;
kube-apiserver prefers v1), except EnvoyFilter (v1alpha3 only) and ProxyConfig (v1beta1
only); security serves v1 and v1beta1 (stored as v1beta1); telemetry v1 and v1alpha1;
WasmPlugin v1alpha1. Each version carries the same structural schema
(:mod:`.crd_schemas`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from .crd_schemas import open_api_schema

Obj = dict[str, Any]

AGE = {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp",
       "description": "CreationTimestamp is a timestamp representing the server time when "
                      "this object was created. It is not guaranteed to be set in "
                      "happens-before order across separate operations. Clients may not set "
                      "this value. It is represented in RFC3339 form and is in UTC. "
                      "Populated by the system. Read-only. Null for lists."}


def _col(name: str, path: str, description: str) -> Obj:
    return {"name": name, "type": "string", "jsonPath": path, "description": description}


@dataclass(frozen=True)
class CrdSpec:
    group: str
    kind: str
    plural: str
    versions: tuple[str, ...]  # in the order the CRD lists them
    storage: str
    short_names: tuple[str, ...] = ()
    columns: tuple[Obj, ...] = (AGE,)
    istio_label: str | None = None

    @property
    def name(self) -> str:
        return f"{self.plural}.{self.group}"


NETWORKING_VERSIONS = ("v1", "v1alpha3", "v1beta1")
NET = "networking.istio.io"
SEC = "security.istio.io"

CRD_SPECS: tuple[CrdSpec, ...] = (
    CrdSpec("extensions.istio.io", "WasmPlugin", "wasmplugins", ("v1alpha1",), "v1alpha1"),
    CrdSpec(NET, "DestinationRule", "destinationrules", NETWORKING_VERSIONS, "v1beta1",
            ("dr",), (_col("Host", ".spec.host",
                           "The name of a service from the service registry"), AGE)),
    CrdSpec(NET, "EnvoyFilter", "envoyfilters", ("v1alpha3",), "v1alpha3", (), ()),
    CrdSpec(NET, "Gateway", "gateways", NETWORKING_VERSIONS, "v1beta1", ("gw",), ()),
    CrdSpec(NET, "ProxyConfig", "proxyconfigs", ("v1beta1",), "v1beta1", (), ()),
    CrdSpec(NET, "ServiceEntry", "serviceentries", NETWORKING_VERSIONS, "v1beta1", ("se",), (
        _col("Hosts", ".spec.hosts", "The hosts associated with the ServiceEntry"),
        _col("Location", ".spec.location",
             "Whether the service is external to the mesh or part of the mesh "
             "(MESH_EXTERNAL or MESH_INTERNAL)"),
        _col("Resolution", ".spec.resolution",
             "Service resolution mode for the hosts (NONE, STATIC, or DNS)"), AGE)),
    CrdSpec(NET, "Sidecar", "sidecars", NETWORKING_VERSIONS, "v1beta1", (), ()),
    CrdSpec(NET, "VirtualService", "virtualservices", NETWORKING_VERSIONS, "v1beta1", ("vs",), (
        _col("Gateways", ".spec.gateways",
             "The names of gateways and sidecars that should apply these routes"),
        _col("Hosts", ".spec.hosts",
             "The destination hosts to which traffic is being sent"), AGE)),
    CrdSpec(NET, "WorkloadEntry", "workloadentries", NETWORKING_VERSIONS, "v1beta1", ("we",), (
        AGE, _col("Address", ".spec.address",
                  "Address associated with the network endpoint."))),
    CrdSpec(NET, "WorkloadGroup", "workloadgroups", NETWORKING_VERSIONS, "v1beta1", ("wg",)),
    CrdSpec(SEC, "AuthorizationPolicy", "authorizationpolicies", ("v1", "v1beta1"), "v1beta1",
            ("ap",), (_col("Action", ".spec.action", "The operation to take."), AGE),
            istio_label="security"),
    CrdSpec(SEC, "PeerAuthentication", "peerauthentications", ("v1", "v1beta1"), "v1beta1",
            ("pa",), (_col("Mode", ".spec.mtls.mode",
                           "Defines the mTLS mode used for peer authentication."), AGE),
            istio_label="security"),
    CrdSpec(SEC, "RequestAuthentication", "requestauthentications", ("v1", "v1beta1"),
            "v1beta1", ("ra",), (), istio_label="security"),
    CrdSpec("telemetry.istio.io", "Telemetry", "telemetries", ("v1", "v1alpha1"), "v1alpha1",
            ("telemetry",), (AGE,), istio_label="telemetry"),
)


def crd_object(spec: CrdSpec) -> Obj:
    labels = {"app": "istio-pilot", "chart": "istio", "heritage": "Tiller", "release": "istio"}
    if spec.istio_label:
        labels["istio"] = spec.istio_label
    group_word = spec.group.replace(".", "-")
    names: Obj = {"categories": ["istio-io", group_word], "kind": spec.kind,
                  "listKind": f"{spec.kind}List", "plural": spec.plural,
                  "singular": spec.kind.lower()}
    if spec.short_names:
        names["shortNames"] = list(spec.short_names)
    versions = []
    for v in spec.versions:
        version: Obj = {"name": v, "served": True, "storage": v == spec.storage,
                        "schema": {"openAPIV3Schema": open_api_schema(spec.kind)},
                        "subresources": {"status": {}}}
        if spec.columns:
            version = {"additionalPrinterColumns": [dict(c) for c in spec.columns], **version}
        versions.append(version)
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": spec.name, "labels": labels,
                         "annotations": {"helm.sh/resource-policy": "keep"}},
            "spec": {"group": spec.group, "names": names, "scope": "Namespaced",
                     "versions": versions}}


def istio_crds(networking_storage: str = "v1beta1") -> list[Obj]:
    """The 14 CRD objects, in the order the chart renders them; the networking types stored
    as ``networking_storage`` (``v1beta1`` on 1.25/1.26, ``v1`` on 1.27)."""
    return [crd_object(replace(s, storage=networking_storage)
                       if s.versions == NETWORKING_VERSIONS else s) for s in CRD_SPECS]
