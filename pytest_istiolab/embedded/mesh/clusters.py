"""From a route destination to an Envoy cluster and its endpoints.

Cluster names are Istio's: ``outbound|<port>|<subset>|<host>``. istiod builds a cluster per
Service port, per ServiceEntry host and port, and one per DestinationRule subset; a route
to anything else points at a cluster that does not exist, and Envoy answers 503 with flag
``NC`` (``cluster_not_found``), an empty body. That is what a VirtualService naming a subset
no DestinationRule defines gets on 1.26 (evidence: access logs reproduced in
idouba.com "NC(没有上游集群)" (KubeCon China 2023) and several 1.2x troubleshooting guides show
``"GET ..." 503 NC cluster_not_found - "-" 0 0 0 - ... "-" - -``; Envoy's router replies with
``cluster_not_found_response_code``, 503 by default, and no body).
A cluster that exists but has no healthy endpoint (a subset whose labels match no ready pod,
a Service without ready pods) gives 503 ``UH`` ``no healthy upstream``.

DestinationRule lookup follows Istio: the rule's host is qualified in the rule's namespace;
a rule in the client's namespace wins over one in the service's namespace, which wins over
one in the root namespace (istio-system); exact hosts before wildcards; oldest first.
"""

from __future__ import annotations

from typing import Any

from . import hosts, internet
from .config import ROOT_NAMESPACE, Snapshot, creation_key, namespace_of, spec_of
from .model import Cluster, Destination, Endpoint
from .topology import service_endpoints, service_port, service_ports

Obj = dict[str, Any]


def cluster_name(port: int, subset: str | None, host: str) -> str:
    return f"outbound|{port}|{subset or ''}|{host}"


def resolve(snap: Snapshot, client_ns: str, dest: Destination, default_port: int | None) -> Cluster:
    """The cluster a proxy in ``client_ns`` uses for ``dest``."""
    service = snap.services_by_fqdn.get(dest.host)
    if service is not None:
        return _service_cluster(snap, client_ns, service, dest, default_port)
    entry = _entry_for(snap, dest.host)
    if entry is not None:
        return _entry_cluster(snap, client_ns, entry, dest, default_port)
    port = dest.port or default_port or 0
    return Cluster(cluster_name(port, dest.subset, dest.host), dest.host, port, dest.subset,
                   exists=False)


def _service_cluster(snap: Snapshot, client_ns: str, service: Obj, dest: Destination,
                     default_port: int | None) -> Cluster:
    ports = service_ports(service)
    port = dest.port
    if port is None:
        if default_port is not None and service_port(service, default_port) is not None:
            port = default_port
        elif ports:
            port = int(ports[0]["port"])
    port = port or 0
    name = cluster_name(port, dest.subset, dest.host)
    if service_port(service, port) is None:
        return Cluster(name, dest.host, port, dest.subset, exists=False, service=service)
    rule = destination_rule(snap, client_ns, dest.host, namespace_of(service))
    labels: dict[str, str] | None = None
    if dest.subset:
        subset = _subset(rule, dest.subset)
        if subset is None:
            return Cluster(name, dest.host, port, dest.subset, exists=False, service=service,
                           destination_rule=rule)
        labels = dict(subset.get("labels") or {})
    endpoints = service_endpoints(snap, service, port, labels)
    return Cluster(name, dest.host, port, dest.subset, True, endpoints, service, rule)


def _entry_cluster(snap: Snapshot, client_ns: str, entry: tuple[Obj, str], dest: Destination,
                   default_port: int | None) -> Cluster:
    se, pattern = entry
    spec = spec_of(se)
    numbers = [int(p.get("number", 0)) for p in spec.get("ports") or []]
    port = dest.port or (default_port if default_port in numbers else None) or \
        (numbers[0] if numbers else 0)
    name = cluster_name(port, dest.subset, pattern)
    if port not in numbers:
        return Cluster(name, pattern, port, dest.subset, exists=False)
    rule = destination_rule(snap, client_ns, pattern, namespace_of(se))
    if dest.subset and _subset(rule, dest.subset) is None:
        return Cluster(name, pattern, port, dest.subset, exists=False, destination_rule=rule)
    return Cluster(name, pattern, port, dest.subset, True, _entry_endpoints(se, pattern, port),
                   destination_rule=rule)


def _entry_endpoints(se: Obj, pattern: str, port: int) -> list[Endpoint]:
    spec = spec_of(se)
    target = next((int(p.get("targetPort") or port) for p in spec.get("ports") or []
                   if int(p.get("number", 0)) == port), port)
    listed = spec.get("endpoints") or []
    if listed:
        out = []
        for ep in listed:
            address = str(ep.get("address", ""))
            public = internet.lookup(address)
            ep_port = int((ep.get("ports") or {}).get(_port_name(spec, port), target))
            for ip in (public.addresses if public else (address,)):
                out.append(Endpoint(ip, ep_port, external_host=public.name if public else None))
        return out
    resolution = str(spec.get("resolution") or "NONE").upper()
    if resolution == "DNS" and not pattern.startswith("*"):
        public = internet.lookup(pattern)
        if public is None:
            return []  # Envoy's DNS resolution of an unknown name: no endpoints
        return [Endpoint(ip, target, external_host=public.name) for ip in public.addresses]
    return []  # resolution NONE/STATIC without endpoints: see proxy (original destination)


def _port_name(spec: Obj, number: int) -> str:
    return next((str(p.get("name", "")) for p in spec.get("ports") or []
                 if int(p.get("number", 0)) == number), "")


def _entry_for(snap: Snapshot, host: str) -> tuple[Obj, str] | None:
    found = []
    for se in snap.service_entries:
        for pattern in spec_of(se).get("hosts") or []:
            pattern = str(pattern).lower()
            if pattern == host or (pattern.startswith("*") and hosts.host_matches(pattern, host)):
                found.append((hosts.specificity(pattern), creation_key(se), se, pattern))
    if not found:
        return None
    found.sort(key=lambda f: (f[0], f[1]))
    return found[0][2], found[0][3]


def destination_rule(snap: Snapshot, client_ns: str, host: str, service_ns: str) -> Obj | None:
    """The DestinationRule that applies to ``host`` for a proxy in ``client_ns``."""
    ranked = []
    for rule in snap.destination_rules:
        rule_ns = namespace_of(rule)
        pattern = hosts.resolve_short(str(spec_of(rule).get("host", "")), rule_ns)
        if not hosts.host_matches(pattern, host):
            continue
        scope = 0 if rule_ns == client_ns else 1 if rule_ns == service_ns else \
            2 if rule_ns == ROOT_NAMESPACE else 3
        ranked.append((scope, hosts.specificity(pattern), creation_key(rule), rule))
    if not ranked:
        return None
    ranked.sort(key=lambda r: (r[0], r[1], r[2]))
    return ranked[0][3]


def _subset(rule: Obj | None, name: str) -> Obj | None:
    if rule is None:
        return None
    return next((s for s in spec_of(rule).get("subsets") or [] if s.get("name") == name), None)
