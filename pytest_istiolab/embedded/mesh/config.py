"""A read-only snapshot of everything the data plane acts on, taken from the store.

It holds the Istio networking config (VirtualServices, DestinationRules, Gateways,
ServiceEntries), the security config (PeerAuthentication, RequestAuthentication,
AuthorizationPolicy: every served version of a type lives in one store type, so apiVersion does
not matter), the mesh config from ConfigMap ``istio`` in ``istio-system`` (``data.mesh``),
and the Kubernetes Services, Endpoints and Pods. When the Istio CRDs are not registered
(Istio not installed) there is simply no Istio config. A snapshot is rebuilt only when the
store's resourceVersion moved, so a burst of requests reuses one.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import yaml

from ..runtime import CLUSTER_DOMAIN, Runtime
from .state import extension, mesh_state

Obj = dict[str, Any]
NETWORKING = "networking.istio.io"
SECURITY = "security.istio.io"
ROOT_NAMESPACE = "istio-system"


@dataclass(frozen=True)
class MeshConfig:
    """The parts of ``meshConfig`` the model reads (defaults as Istio 1.26 applies them)."""

    access_log_file: str = ""
    access_log_encoding: str = "TEXT"
    access_log_format: str = ""
    outbound_policy: str = "ALLOW_ANY"
    trust_domain: str = "cluster.local"
    raw: Obj = field(default_factory=dict, compare=False)


@dataclass
class Snapshot:
    rv: int
    mesh: MeshConfig
    istio_config_present: bool
    services: list[Obj]
    endpoints: dict[tuple[str, str], Obj]
    pods: list[Obj]
    virtual_services: list[Obj]
    destination_rules: list[Obj]
    gateways: list[Obj]
    service_entries: list[Obj]
    telemetries: list[Obj]
    peer_authentications: list[Obj] = field(default_factory=list)
    request_authentications: list[Obj] = field(default_factory=list)
    authorization_policies: list[Obj] = field(default_factory=list)
    services_by_fqdn: dict[str, Obj] = field(default_factory=dict)
    services_by_ip: dict[str, Obj] = field(default_factory=dict)
    pods_by_ip: dict[str, Obj] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for svc in self.services:
            self.services_by_fqdn[service_fqdn(svc)] = svc
            ip = (svc.get("spec") or {}).get("clusterIP")
            if ip and ip != "None":
                self.services_by_ip[ip] = svc
        for pod in self.pods:
            ip = (pod.get("status") or {}).get("podIP")
            if ip and not pod["metadata"].get("deletionTimestamp"):
                self.pods_by_ip[ip] = pod


def snapshot(runtime: Runtime) -> Snapshot:
    """The current config, rebuilt only when the store changed since the last call."""
    state = mesh_state(runtime)
    rv = runtime.store.resource_version
    cached = state.snapshot
    if cached is not None and cached.rv == rv:
        return cached  # type: ignore[no-any-return]
    snap = build_snapshot(runtime, rv)
    state.snapshot = snap
    if runtime.realism is not None:
        _pushes(runtime).record(snap)
    return snap


def proxy_view(runtime: Runtime, proxy: Obj | None) -> Snapshot:
    """The config ``proxy`` (a sidecar or gateway pod) routes by: the current one, or under the
    realism profile the newest version that has reached it (see :mod:`..realism`)."""
    snap = snapshot(runtime)
    if runtime.realism is None or proxy is None:
        return snap
    return _pushes(runtime).view(runtime, proxy)


def fully_pushed(runtime: Runtime) -> bool:
    """Whether every proxy has the current config (always, without the realism profile)."""
    snapshot(runtime)
    return runtime.realism is None or _pushes(runtime).settled(runtime)


@dataclass
class _Push:
    at: float  # when the model first saw this version (wall clock)
    version: int
    fingerprint: int
    snap: Snapshot  # the newest snapshot with this fingerprint


class _Pushes:
    """The config versions some proxy may still be on, oldest first."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.entries: list[_Push] = []
        self.serial = 0

    def record(self, snap: Snapshot) -> None:
        fp = _fingerprint(snap)
        with self.lock:
            if self.entries and self.entries[-1].fingerprint == fp:
                self.entries[-1].snap = snap  # same config for Envoy: no push
                return
            self.serial += 1
            self.entries.append(_Push(time.time(), self.serial, fp, snap))

    def view(self, runtime: Runtime, proxy: Obj) -> Snapshot:
        realism = runtime.realism
        assert realism is not None
        meta = proxy.get("metadata") or {}
        key = f"{meta.get('namespace', '')}/{meta.get('name', '')}"
        born = _epoch(meta.get("creationTimestamp"))  # whole seconds: pushes of that second wait
        now = time.time()
        with self.lock:
            self._prune(now, realism.push_delay[1])
            for entry in reversed(self.entries):
                if entry.at < born or now >= entry.at + realism.push_delay_of(key, entry.version):
                    return entry.snap
            return self.entries[0].snap

    def settled(self, runtime: Runtime) -> bool:
        realism = runtime.realism
        assert realism is not None
        with self.lock:
            return not self.entries or time.time() >= self.entries[-1].at + realism.push_delay[1]

    def _prune(self, now: float, longest: float) -> None:
        """Forget versions older than the newest one every proxy has."""
        everyone = [i for i, e in enumerate(self.entries) if now >= e.at + longest]
        if everyone:
            del self.entries[: everyone[-1]]


def _pushes(runtime: Runtime) -> _Pushes:
    return extension(runtime, "pushes", _Pushes)


def _fingerprint(snap: Snapshot) -> int:
    """What Envoy's config is made of (pods are not: their readiness reaches it by Endpoints)."""
    parts: list[object] = [repr(snap.mesh.raw), snap.istio_config_present]
    for objs in (snap.services, list(snap.endpoints.values()), snap.virtual_services,
                 snap.destination_rules, snap.gateways, snap.service_entries, snap.telemetries,
                 snap.peer_authentications, snap.request_authentications,
                 snap.authorization_policies):
        parts.append(tuple(sorted((m.get("namespace", ""), m.get("name", ""),
                                   m.get("resourceVersion", ""))
                                  for m in (o.get("metadata") or {} for o in objs))))
    return hash(tuple(parts))


def _epoch(stamp: object) -> float:
    if not isinstance(stamp, str) or not stamp:
        return 0.0
    try:
        return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
    except ValueError:
        return 0.0


def build_snapshot(runtime: Runtime, rv: int) -> Snapshot:
    store = runtime.store
    istio_types = [store.find_type(NETWORKING, None, p) for p in
                   ("virtualservices", "destinationrules", "gateways", "serviceentries")]
    endpoints = {(o["metadata"]["namespace"], o["metadata"]["name"]): o
                 for o in store.by_kind("", "endpoints")}
    return Snapshot(
        rv=rv,
        mesh=read_mesh_config(runtime),
        istio_config_present=any(t is not None for t in istio_types),
        services=store.by_kind("", "services"),
        endpoints=endpoints,
        pods=store.by_kind("", "pods"),
        virtual_services=store.by_kind(NETWORKING, "virtualservices"),
        destination_rules=store.by_kind(NETWORKING, "destinationrules"),
        gateways=store.by_kind(NETWORKING, "gateways"),
        service_entries=store.by_kind(NETWORKING, "serviceentries"),
        telemetries=store.by_kind("telemetry.istio.io", "telemetries"),
        peer_authentications=store.by_kind(SECURITY, "peerauthentications"),
        request_authentications=store.by_kind(SECURITY, "requestauthentications"),
        authorization_policies=store.by_kind(SECURITY, "authorizationpolicies"),
    )


def read_mesh_config(runtime: Runtime) -> MeshConfig:
    """The mesh config every proxy runs with: the default revision's ``istio`` ConfigMap, or,
    on a mesh whose default revision was removed, ``istio-<rev>`` of the revision the
    ``default`` tag points at. Not modelled: a mesh config per revision while two revisions
    run (during a canary every proxy reads ``istio``)."""
    store = runtime.store
    by_name = {c["metadata"]["name"]: c for c in store.by_kind("", "configmaps", ROOT_NAMESPACE)
               if c["metadata"]["name"] == "istio" or c["metadata"]["name"].startswith("istio-")}
    cms = [by_name["istio"]] if "istio" in by_name else []
    if not cms:
        tag = next((h for h in store.by_kind("admissionregistration.k8s.io",
                                             "mutatingwebhookconfigurations")
                    if h["metadata"]["name"] == "istio-revision-tag-default"), None)
        rev = ((tag or {}).get("metadata", {}).get("labels") or {}).get("istio.io/rev")
        cms = [by_name[f"istio-{rev}"]] if rev and f"istio-{rev}" in by_name else []
    raw: Obj = {}
    if cms:
        try:
            raw = yaml.safe_load((cms[0].get("data") or {}).get("mesh") or "") or {}
        except yaml.YAMLError:
            raw = {}
    return parse_mesh_config(raw if isinstance(raw, dict) else {})


def parse_mesh_config(raw: Obj) -> MeshConfig:
    policy = (raw.get("outboundTrafficPolicy") or {}).get("mode") or "ALLOW_ANY"
    return MeshConfig(
        access_log_file=str(raw.get("accessLogFile") or ""),
        access_log_encoding=str(raw.get("accessLogEncoding") or "TEXT").upper(),
        access_log_format=str(raw.get("accessLogFormat") or ""),
        outbound_policy=str(policy).upper(),
        trust_domain=str(raw.get("trustDomain") or "cluster.local"),
        raw=raw,
    )


# ----------------------------------------------------------------- small object helpers
def service_fqdn(svc: Obj) -> str:
    meta = svc["metadata"]
    return f"{meta['name']}.{meta.get('namespace', 'default')}.svc.{CLUSTER_DOMAIN}"


def namespace_of(obj: Obj) -> str:
    return str(obj["metadata"].get("namespace") or "default")


def name_of(obj: Obj) -> str:
    return str(obj["metadata"]["name"])


def spec_of(obj: Obj) -> Obj:
    return obj.get("spec") or {}


def creation_key(obj: Obj) -> tuple[str, str, str]:
    """Istio's conflict order: oldest first, then namespace/name."""
    meta = obj["metadata"]
    return (str(meta.get("creationTimestamp") or ""), namespace_of(obj), name_of(obj))
