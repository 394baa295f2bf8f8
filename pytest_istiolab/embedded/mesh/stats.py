"""A sidecar's Envoy statistics as its admin endpoint prints them (``GET /stats``).

Scope and limitations
---------------------
Modelled: the per-cluster counters and gauges of every outbound cluster the sidecar knows
(one per Service port, per DestinationRule subset and per ServiceEntry host and port), with
Istio 1.26's stat prefix ``cluster.outbound|PORT|SUBSET|FQDN;.`` (Istio sets the cluster's
``alt_stat_name`` with a ``;`` delimiter; the manual's output, from an older release, has none):
circuit-breaker gauges (``circuit_breakers.default.remaining_pending`` …), pool counters
(``upstream_rq_pending_overflow``, ``upstream_rq_pending_total``, ``upstream_cx_overflow`` …),
``upstream_rq_<code>``/``<N>xx`` for upstream answers, retry counters (fed by the router) and
``outlier_detection.*`` when the cluster has outlier detection. Counters are cumulative for
the pod's life; gauges are read at the moment of the request.

Which stats exist follows Istio's stats matcher: by default only ``cluster_manager``,
``listener_manager``, ``server``, ``cluster.xds-grpc`` and ``wasm`` prefixes (a few
indicative lines of those are printed); ``cluster.outbound`` stats appear only when the pod's
``proxy.istio.io/config`` annotation (``proxyStatsMatcher``), the ``sidecar.istio.io/
statsInclusionPrefixes|Suffixes|Regexps`` annotations or the mesh's
``defaultConfig.proxyStatsMatcher`` include them, as the fortio sample does. Lines are sorted
by name, ``name: value``. Histograms, inbound/listener/HTTP connection manager stats and
``istio_*`` metrics are not printed here (they are recorded by ``telemetry`` and read
through the Prometheus addon model).
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from ..runtime import Runtime
from .clusters import cluster_name, destination_rule
from .config import Snapshot, namespace_of, service_fqdn, spec_of
from .pool import UNLIMITED, Lane, Limits, lanes_of, limits_of, traffic_policy
from .topology import service_ports

Obj = dict[str, Any]
DEFAULT_PREFIXES = ("cluster_manager", "listener_manager", "server", "cluster.xds-grpc", "wasm")
COUNTERS = (
    "upstream_cx_connect_fail", "upstream_cx_destroy", "upstream_cx_destroy_local",
    "upstream_cx_destroy_remote", "upstream_cx_http1_total", "upstream_cx_max_requests",
    "upstream_cx_overflow", "upstream_cx_pool_overflow", "upstream_cx_total",
    "upstream_rq_cancelled", "upstream_rq_completed", "upstream_rq_pending_failure_eject",
    "upstream_rq_pending_overflow", "upstream_rq_pending_total", "upstream_rq_per_try_timeout",
    "upstream_rq_retry", "upstream_rq_retry_limit_exceeded", "upstream_rq_retry_overflow",
    "upstream_rq_retry_success", "upstream_rq_timeout", "upstream_rq_total")
OUTLIER = ("ejections_active", "ejections_consecutive_5xx", "ejections_detected_consecutive_5xx",
           "ejections_detected_consecutive_gateway_failure", "ejections_enforced_consecutive_5xx",
           "ejections_enforced_consecutive_gateway_failure", "ejections_enforced_total",
           "ejections_overflow", "ejections_total")


def render(runtime: Runtime, snap: Snapshot, pod: Obj, now: float, *, pattern: str | None = None,
           used_only: bool = False) -> str:
    """The text of ``GET /stats`` on ``pod``'s sidecar at virtual time ``now``."""
    values: dict[str, int] = dict(_server_stats(snap, pod, now))
    lanes = lanes_of(runtime, pod)
    for name, limits, has_outlier in known_clusters(snap, pod):
        values.update(cluster_stats(name, limits, lanes.get(name), now, has_outlier))
    matcher = inclusion(snap, pod)
    regex = re.compile(pattern) if pattern else None
    lines = []
    for name in sorted(values):
        if not matcher(name) or (regex is not None and not regex.search(name)):
            continue
        if used_only and values[name] == 0:
            continue
        lines.append(f"{name}: {values[name]}\n")
    return "".join(lines)


def stat_prefix(cluster: str) -> str:
    return f"cluster.{cluster};."


def cluster_stats(name: str, limits: Limits, lane: Lane | None, now: float,
                  has_outlier: bool) -> dict[str, int]:
    prefix = stat_prefix(name)
    counters = dict(lane.counters) if lane is not None else {}
    out = {f"{prefix}{c}": counters.get(c, 0) for c in COUNTERS}
    out.update({f"{prefix}{k}": v for k, v in counters.items()
                if re.fullmatch(r"upstream_rq_\d(xx|\d\d)", k)})
    gate = lane.gate if lane is not None else None
    pending = gate.pending_at(now) if gate else 0
    opened = gate.open_at(now) if gate else 0
    busy = gate.busy_at(now) if gate else 0
    gauges = {"upstream_rq_pending_active": pending, "upstream_cx_active": opened,
              "upstream_rq_active": busy,
              "circuit_breakers.default.cx_open": int(opened >= limits.max_connections),
              "circuit_breakers.default.cx_pool_open": 0,
              "circuit_breakers.default.rq_open": int(busy >= limits.max_requests),
              "circuit_breakers.default.rq_pending_open": int(pending >= limits.max_pending),
              "circuit_breakers.default.rq_retry_open": 0,
              "circuit_breakers.default.remaining_cx": max(0, limits.max_connections - opened),
              "circuit_breakers.default.remaining_pending": max(0, limits.max_pending - pending),
              "circuit_breakers.default.remaining_retries": limits.max_retries,
              "circuit_breakers.default.remaining_rq": max(0, limits.max_requests - busy)}
    for gauge in ("cx_open", "cx_pool_open", "rq_open", "rq_pending_open", "rq_retry_open"):
        gauges[f"circuit_breakers.high.{gauge}"] = 0
    out.update({f"{prefix}{k}": v for k, v in gauges.items()})
    if has_outlier:
        out.update({f"{prefix}outlier_detection.{k}": counters.get(f"outlier_detection.{k}", 0)
                    for k in OUTLIER})
    return out


def known_clusters(snap: Snapshot, pod: Obj) -> list[tuple[str, Limits, bool]]:
    """(cluster name, limits, has outlier detection) of every outbound cluster of the proxy."""
    client_ns = namespace_of(pod)
    out: list[tuple[str, Limits, bool]] = []
    for svc in snap.services:
        fqdn = service_fqdn(svc)
        rule = destination_rule(snap, client_ns, fqdn, namespace_of(svc))
        subsets = [None, *[str(s.get("name")) for s in spec_of(rule or {}).get("subsets") or []]]
        for port in service_ports(svc):
            for subset in subsets:
                out.append(_entry(rule, int(port["port"]), subset, fqdn))
    for entry in snap.service_entries:
        for host in spec_of(entry).get("hosts") or []:
            rule = destination_rule(snap, client_ns, str(host), namespace_of(entry))
            for port in spec_of(entry).get("ports") or []:
                out.append(_entry(rule, int(port.get("number", 0)), None, str(host)))
    return out


def _entry(rule: Obj | None, port: int, subset: str | None, host: str
           ) -> tuple[str, Limits, bool]:
    policy = traffic_policy(rule, port, subset)
    return cluster_name(port, subset, host), limits_of(policy), "outlierDetection" in policy


# ------------------------------------------------------------------ stats matcher
def inclusion(snap: Snapshot, pod: Obj):  # type: ignore[no-untyped-def]
    """A predicate: does the proxy of ``pod`` instantiate the stat called ``name``?"""
    prefixes, suffixes, regexps = list(DEFAULT_PREFIXES), [], []
    configs = [(snap.mesh.raw.get("defaultConfig") or {}).get("proxyStatsMatcher") or {}]
    annotations = pod["metadata"].get("annotations") or {}
    try:
        proxy_config = yaml.safe_load(annotations.get("proxy.istio.io/config") or "") or {}
    except yaml.YAMLError:
        proxy_config = {}
    if isinstance(proxy_config, dict):
        configs.append(proxy_config.get("proxyStatsMatcher") or {})
    for cfg in configs:
        prefixes += [str(p) for p in cfg.get("inclusionPrefixes") or []]
        suffixes += [str(s) for s in cfg.get("inclusionSuffixes") or []]
        regexps += [str(r) for r in cfg.get("inclusionRegexps") or []]
    for key, target in (("prefixes", prefixes), ("suffixes", suffixes), ("regexps", regexps)):
        raw = annotations.get(f"sidecar.istio.io/statsInclusion{key.capitalize()}") or ""
        target += [p.strip() for p in str(raw).split(",") if p.strip()]
    compiled = [re.compile(r) for r in regexps]

    def included(name: str) -> bool:
        return (name.startswith(tuple(prefixes)) or name.endswith(tuple(suffixes))
                or any(r.fullmatch(name) for r in compiled))
    return included


def _server_stats(snap: Snapshot, pod: Obj, now: float) -> dict[str, int]:
    """Indicative values of the stats every Istio sidecar exposes by default."""
    started = _start_time(pod, now)
    clusters = sum(len(service_ports(s)) for s in snap.services)
    return {"cluster_manager.active_clusters": clusters + 5,
            "cluster_manager.warming_clusters": 0,
            "cluster_manager.cds.update_success": 1 + snap.rv % 7,
            "cluster.xds-grpc.upstream_cx_active": 1,
            "cluster.xds-grpc.upstream_cx_total": 1,
            "listener_manager.total_listeners_active": 2 + len(snap.services),
            "server.concurrency": 2, "server.live": 1, "server.state": 0,
            "server.uptime": max(0, int(now - started))}


def _start_time(pod: Obj, now: float) -> float:
    from datetime import datetime

    raw = (pod.get("status") or {}).get("startTime")
    if not raw:
        return now
    try:
        return datetime.fromisoformat(str(raw).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return now


__all__ = ["UNLIMITED", "cluster_stats", "inclusion", "known_clusters", "render", "stat_prefix"]
