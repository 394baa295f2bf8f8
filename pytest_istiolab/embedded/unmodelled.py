"""What the embedded cluster stores but does not model: one table, for the API and controllers.

A write of a kind in :data:`KINDS` (or of any Gateway API kind), or of a modelled kind with a
field in :data:`FIELDS`, is accepted as a real cluster accepts it, and the embedded cluster
says what it ignores: the API answers with a ``Warning: 299`` header per note (kubectl and the
Kubernetes Python client print them) and the controllers record a ``Warning`` Event
``NotModelled`` on the object. A Gateway API ``Gateway`` also gets ``Accepted``/``Programmed``
conditions ``False`` with reason ``NotModelled``.

When a lab models a kind or a field, it removes the entry here (and nothing else changes).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

Obj = dict[str, Any]
NET = "networking.istio.io"
SEC = "security.istio.io"
TELEMETRY = "telemetry.istio.io"
GATEWAY_API_GROUPS = ("gateway.networking.k8s.io", "gateway.networking.x-k8s.io")
GATEWAY_API = ("no gateway is deployed for it and no route of it is served; use an Istio "
               "Gateway with a VirtualService (networking.istio.io)")
REASON = "NotModelled"
COMPONENT = "istiolab-embedded"

# (group, kind) -> what the data plane does instead of enforcing the object
KINDS: dict[tuple[str, str], str] = {
    (NET, "Sidecar"): "sidecar scoping (egress hosts, ingress listeners, outbound traffic "
    "policy) is not applied",
    (NET, "EnvoyFilter"): "Envoy configuration patches are not applied",
    (NET, "ProxyConfig"): "proxy settings are not applied",
    (NET, "WorkloadEntry"): "workload entries are not added to any service's endpoints",
    (NET, "WorkloadGroup"): "workload groups are not used",
    ("extensions.istio.io", "WasmPlugin"): "Wasm plugins are not loaded into any proxy",
}

MUTUAL = "ISTIO_MUTUAL|DISABLE"  # the client TLS modes the model applies (mesh.authn)
# (group, kind) -> (field path[=values it matches the model with], what is ignored);
# "[]" steps into every element of a list
FIELDS: dict[tuple[str, str], tuple[tuple[str, str], ...]] = {
    (NET, "VirtualService"): (
        ("spec.tcp", "TCP routes are not applied"),
        ("spec.tls", "TLS (SNI) routes are not applied"),
        ("spec.exportTo", "visibility is not applied: the routes apply in every namespace"),
        ("spec.http[].corsPolicy", "CORS is not applied"),
        ("spec.http[].delegate", "delegation is not applied"),
        ("spec.http[].route[].headers", "per-destination header operations are not applied"),
    ),
    (NET, "DestinationRule"): (
        (f"spec.trafficPolicy.tls.mode={MUTUAL}", "TLS origination (SIMPLE, MUTUAL) is not "
         "modelled: the sidecar sends plaintext"),
        (f"spec.trafficPolicy.portLevelSettings[].tls.mode={MUTUAL}", "TLS origination "
         "(SIMPLE, MUTUAL) is not modelled: the sidecar sends plaintext"),
        (f"spec.subsets[].trafficPolicy.tls.mode={MUTUAL}", "TLS origination (SIMPLE, MUTUAL) "
         "is not modelled: the sidecar sends plaintext"),
        ("spec.trafficPolicy.loadBalancer", "load balancer settings are not applied: "
         "endpoints are picked at random"),
        ("spec.subsets[].trafficPolicy.loadBalancer", "load balancer settings are not applied: "
         "endpoints are picked at random"),
        ("spec.exportTo", "visibility is not applied"),
        ("spec.workloadSelector", "the rule applies to every workload"),
    ),
    (SEC, "AuthorizationPolicy"): (
        ("spec.action=ALLOW|DENY|AUDIT", "CUSTOM (external authorization) is not modelled: "
         "every request the policy applies to is denied with 403"),
    ),
    (SEC, "RequestAuthentication"): (
        ("spec.jwtRules[].fromCookies", "tokens in cookies are not read"),
    ),
    (NET, "Gateway"): (  # TLS termination: embedded.tls models SIMPLE and MUTUAL
        ("spec.servers[].tls.mode=SIMPLE|MUTUAL", "only SIMPLE and MUTUAL TLS are served "
         "(PASSTHROUGH, AUTO_PASSTHROUGH, ISTIO_MUTUAL and OPTIONAL_MUTUAL are not modelled)"),
        ("spec.servers[].tls.httpsRedirect", "the redirect to HTTPS is not sent"),
        ("spec.servers[].tls.serverCertificate", "certificate files are not read: use "
         "credentialName"),
        ("spec.servers[].tls.subjectAltNames", "client certificate names are not checked"),
        ("spec.servers[].tls.verifyCertificateSpki", "client certificate pins are not checked"),
        ("spec.servers[].tls.verifyCertificateHash", "client certificate pins are not checked"),
        ("spec.servers[].tls.cipherSuites", "cipher settings are not applied"),
        ("spec.servers[].tls.minProtocolVersion", "TLS version settings are not applied"),
        ("spec.servers[].tls.maxProtocolVersion", "TLS version settings are not applied"),
    ),
    (NET, "ServiceEntry"): (
        ("spec.workloadSelector", "workload selection is not applied"),
        ("spec.exportTo", "visibility is not applied"),
    ),
    (TELEMETRY, "Telemetry"): (
        ("spec.accessLogging", "access log settings are not applied (meshConfig.accessLogFile "
         "is)"),
        ("spec.metrics", "metrics are not modelled"),
        ("spec.tracing[].customTags", "custom tags are not applied"),
        ("spec.tracing[].useRequestIdForTraceSampling", "the x-request-id trace mark is "
         "always used"),
    ),
}

# The mesh config (the ``mesh`` key of the ``istio``/``istio-<rev>`` ConfigMap, what
# ``istioctl install --set meshConfig.X`` writes): the paths the data plane model reads, and
# those whose installed value is the only one modelled. Anything else set is ignored.
MESH_MODELLED = ("accessLogFile", "accessLogEncoding", "accessLogFormat",
                 "outboundTrafficPolicy.mode", "trustDomain", "enableTracing",
                 "defaultHttpRetryPolicy", "extensionProviders", "defaultProviders.tracing",
                 "defaultConfig.tracing", "defaultConfig.proxyStatsMatcher",
                 "defaultConfig.discoveryAddress")
MESH_FIXED: dict[str, object] = {"rootNamespace": "istio-system", "enablePrometheusMerge": True,
                                 "defaultProviders.metrics": ["prometheus"]}


@dataclass(frozen=True)
class Note:
    """One thing the embedded cluster ignores in one object."""

    subject: str  # "kind" or a field path
    text: str  # what is ignored, for a warning or an Event

    def warning(self, kind: str, obj: Obj, namespace: str | None = None) -> str:
        meta = obj.get("metadata") or {}
        ns = namespace or meta.get("namespace")
        where = "/".join(str(p) for p in (ns, meta.get("name")) if p)
        return f"{kind} {where}: {self.text}"


def is_gateway_api(group: str) -> bool:
    return group in GATEWAY_API_GROUPS


def watched(group: str, kind: str) -> bool:
    """True when objects of this kind can carry notes."""
    return (is_gateway_api(group) or (group, kind) in KINDS or (group, kind) in FIELDS
            or (group, kind) in (("apiextensions.k8s.io", "CustomResourceDefinition"),
                                 ("", "ConfigMap")))


def notes(group: str, kind: str, obj: Obj) -> list[Note]:
    """What the embedded cluster ignores of ``obj`` (an object of ``group``/``kind``)."""
    if is_gateway_api(group):
        return [Note("kind", f"the Gateway API is not modelled by the embedded cluster: "
                             f"{GATEWAY_API}")]
    if (group, kind) in KINDS:
        return [Note("kind", f"not modelled by the embedded cluster: {KINDS[(group, kind)]}")]
    if kind == "CustomResourceDefinition" and is_gateway_api(
            str((obj.get("spec") or {}).get("group") or "")):
        return [Note("kind", f"stored, but the Gateway API is not modelled by the embedded "
                             f"cluster: {GATEWAY_API}")]
    if (group, kind) == ("", "ConfigMap"):
        mesh = _mesh_config_map(obj)
        return [] if mesh is None else [
            Note(n.subject, n.text.replace(" is ignored", " (mesh config) is ignored", 1))
            for n in mesh_notes(mesh)]
    out = []
    for entry, what in FIELDS.get((group, kind), ()):
        path, _, modelled = entry.partition("=")
        if present(obj, path, tuple(modelled.split("|")) if modelled else ()):
            out.append(Note(path, f"{path} is ignored by the embedded cluster: {what}"))
    return out


def mesh_notes(mesh: Obj, prefix: str = "") -> list[Note]:
    """What the embedded cluster ignores of a mesh config (``prefix``: ``meshConfig.`` for
    istioctl's wording)."""
    out = []
    for path, value in _leaves(mesh, ""):
        if path in MESH_FIXED and value == MESH_FIXED[path]:
            continue
        if path in MESH_FIXED:
            what = f"only {MESH_FIXED[path]!r} is modelled"
        else:
            what = "not modelled, the proxies run as if it were unset"
        out.append(Note(path, f"{prefix}{path} is ignored by the embedded cluster: {what}"))
    return out


def _leaves(value: Any, path: str) -> list[tuple[str, Any]]:
    """The set paths of ``value`` that are not under a modelled path."""
    if path and (path in MESH_MODELLED or any(path.startswith(m + ".") for m in MESH_MODELLED)):
        return []
    if path in MESH_FIXED or not isinstance(value, dict) or not value:
        return [] if value in (None, {}, [], "") else [(path, value)]
    return [leaf for key, child in value.items()
            for leaf in _leaves(child, f"{path}.{key}" if path else str(key))]


def _mesh_config_map(obj: Obj) -> Obj | None:
    """The parsed ``mesh`` of an ``istio``/``istio-<rev>`` ConfigMap, else None."""
    name = str((obj.get("metadata") or {}).get("name") or "")
    data = obj.get("data") or {}
    if not (name == "istio" or name.startswith("istio-")) or "mesh" not in data:
        return None
    try:
        mesh = yaml.safe_load(str(data["mesh"]) or "{}")
    except yaml.YAMLError:
        return None
    return mesh if isinstance(mesh, dict) else None


def warnings(group: str, kind: str, obj: Obj, namespace: str | None = None) -> list[str]:
    """The ``Warning: 299`` texts for a write of ``obj`` (in ``namespace``, if it is not set)."""
    return [n.warning(kind, obj, namespace) for n in notes(group, kind, obj)]


def present(obj: Any, path: str, modelled: tuple[str, ...] = ()) -> bool:
    """Whether ``path`` (``a.b[].c``) is set (not null, not empty) anywhere in ``obj`` to a
    value other than the ``modelled`` ones."""
    values = [obj]
    for step in path.split("."):
        each = step.endswith("[]")
        key = step[:-2] if each else step
        found = []
        for value in values:
            if isinstance(value, dict) and value.get(key) not in (None, {}, [], ""):
                child = value[key]
                if each:
                    found.extend(child if isinstance(child, list) else [])
                else:
                    found.append(child)
        values = found
    return any(str(v) not in modelled for v in values)


def gateway_conditions(generation: int, when: str) -> list[Obj]:
    """The status conditions of a Gateway API ``Gateway`` in the embedded cluster."""
    message = f"The embedded istiolab cluster does not model the Gateway API: {GATEWAY_API}"
    return [{"type": kind, "status": "False", "reason": REASON, "message": message,
             "observedGeneration": generation, "lastTransitionTime": when}
            for kind in ("Accepted", "Programmed")]
