"""The Kiali graph appenders the embedded Kiali runs (``graph/telemetry/istio/appender``
@v2.8.0): the two that always run (``trafficGenerator`` marks ``isRoot`` on nodes that only
send, ``outsider`` marks ``isOutside`` on nodes outside the requested namespaces and
``isInaccessible`` on unknown ones), ``deadNode`` (a no-op: every node here comes from
traffic), ``securityPolicy`` (an edge's ``isMTLS`` percentage and its principals, from the
destination reporter's ``connection_security_policy``; HTTP requests only, no TCP or gRPC
message traffic) and ``responseTime`` (the 0.95 quantile by default, ``responseTime=avg|50|95|99``,
from ``istio_request_duration_milliseconds``; with service nodes only the service-to-workload
edge gets it, as in Kiali).
"""

from __future__ import annotations

from collections.abc import Callable

from .kiali_graph import GROUP_BY, Obj, TrafficMap, node_key, ok

KNOWN = ("ambient", "deadNode", "health", "idleNode", "istio", "labeler", "meshCheck",
         "outsider", "responseTime", "securityPolicy", "serviceEntry", "throughput",
         "trafficGenerator", "workloadEntry")
MODELLED = ("deadNode", "outsider", "responseTime", "securityPolicy", "trafficGenerator")
SECURITY_GROUP_BY = (
    "source_cluster,source_workload_namespace,source_workload,source_canonical_service,"
    "source_canonical_revision,source_principal,destination_cluster,"
    "destination_service_namespace,destination_service_name,destination_workload_namespace,"
    "destination_workload,destination_canonical_service,destination_canonical_revision,"
    "destination_principal,connection_security_policy")
QUANTILES = {"avg": 0.0, "50": 0.5, "95": 0.95, "99": 0.99}
DURATION = "istio_request_duration_milliseconds"


def check(appenders: list[str], response_time: str) -> str | None:
    """None, or the error Kiali (or the model) answers for this appender list."""
    for name in appenders:
        if name not in KNOWN:
            return f"Invalid appender [{name}]"
    if response_time and response_time not in QUANTILES:
        return f"Invalid responseTime, must be one of: avg | 50 | 95 | 99: [{response_time}]"
    return None


def response_time_queries(ns: str, duration: int, quantile: float) -> list[str]:
    """Kiali's two queries: destination-reported incoming, then source-reported outgoing."""
    selectors = (f'reporter=~"waypoint|destination",destination_service_namespace="{ns}"',
                 f'reporter=~"waypoint|source",source_workload_namespace="{ns}"')
    if quantile == 0.0:
        by = ",".join(GROUP_BY.split(",")[:13] + ["request_protocol"])
        return [f"sum(rate({DURATION}_sum{{{s}}}[{duration}s])) by ({by}) / "
                f"sum(rate({DURATION}_count{{{s}}}[{duration}s])) by ({by}) > 0"
                for s in selectors]
    by = "le," + ",".join(GROUP_BY.split(",")[:13] + ["request_protocol"])
    return [f"histogram_quantile({quantile:.2f}, sum(rate({DURATION}_bucket{{{s}}}"
            f"[{duration}s])) by ({by})) > 0" for s in selectors]


def security_queries(ns: str, duration: int) -> list[str]:
    """Kiali's two queries (destination telemetry reports the policy): from outside the
    namespace into it, and from the namespace's workloads."""
    reporter = 'reporter=~"waypoint|destination"'
    return [f"(sum(rate(istio_requests_total{{{reporter},{s}}}[{duration}s])) by "
            f"({SECURITY_GROUP_BY}) > 0)"
            for s in (f'source_workload_namespace!="{ns}",destination_service_namespace="{ns}"',
                      f'source_workload_namespace="{ns}"')]


def _keys(traffic: TrafficMap, m: dict[str, str]) -> list[tuple[str, str]]:
    """The (source, dest) node keys a destination-side sample applies to: with service
    nodes, both halves of the injected hop."""
    graph_type = traffic.options.graph_type
    cluster = m.get("source_cluster") or "unknown"
    dst_cluster = m.get("destination_cluster") or cluster
    ns, svc_ns, svc = (m["source_workload_namespace"], m["destination_service_namespace"],
                       m["destination_service_name"])
    source, _ = node_key(cluster, ns, "", ns, m["source_workload"],
                         m["source_canonical_service"], m["source_canonical_revision"],
                         graph_type)
    dest, kind = node_key(dst_cluster, svc_ns, svc, m["destination_workload_namespace"],
                          m["destination_workload"], m["destination_canonical_service"],
                          m["destination_canonical_revision"], graph_type)
    if traffic.options.inject_service_nodes and ok(svc) and kind != "service":
        middle, _ = node_key(dst_cluster, svc_ns, svc, "", "", "", "", graph_type)
        return [(source, middle), (middle, dest)]
    return [(source, dest)]


def add_security(traffic: TrafficMap, samples: list[Obj]) -> None:
    """``isMTLS`` (percent of the edge's requests over mutual TLS) and the principals."""
    policies: dict[tuple[str, str], dict[str, float]] = {}
    principals: dict[tuple[str, str], tuple[str, str]] = {}
    for sample in samples:
        m = sample["metric"]
        try:
            keys = _keys(traffic, m)
            pair = (m["source_principal"], m["destination_principal"])
        except (KeyError, ValueError):
            continue
        for key in keys:
            # as Kiali does: the last sample of a policy for an edge sets its rate
            policies.setdefault(key, {})[m.get("connection_security_policy", "unknown")] = \
                float(sample["value"][1])
            principals.setdefault(key, pair)
    for edge in traffic.edges:
        key = (edge.source.key, edge.dest.key)
        rates = policies.get(key, {})
        mtls = rates.get("mutual_tls", 0.0)
        if mtls > 0:
            edge.mtls = mtls / sum(rates.values()) * 100
        if key in principals:
            edge.principals = principals[key]


def add_response_times(traffic: TrafficMap, samples: list[Obj]) -> None:
    """Set each edge's response time from ``samples``; the first value for an edge wins."""
    graph_type = traffic.options.graph_type
    edges = {(e.source.key, e.dest.key): e for e in traffic.edges}
    for sample in samples:
        m = sample["metric"]
        if m.get("request_protocol") != "http":
            continue
        cluster = m.get("source_cluster") or "unknown"
        dst_cluster = m.get("destination_cluster") or cluster
        try:
            dest, kind = node_key(dst_cluster, m["destination_service_namespace"],
                                  m["destination_service_name"],
                                  m["destination_workload_namespace"],
                                  m["destination_workload"], m["destination_canonical_service"],
                                  m["destination_canonical_revision"], graph_type)
            svc = m["destination_service_name"]
            if traffic.options.inject_service_nodes and ok(svc) and kind != "service":
                source, _ = node_key(dst_cluster, m["destination_service_namespace"], svc, "",
                                     "", "", "", graph_type)
            else:
                ns = m["source_workload_namespace"]
                source, _ = node_key(cluster, ns, "", ns, m["source_workload"],
                                     m["source_canonical_service"],
                                     m["source_canonical_revision"], graph_type)
        except (KeyError, ValueError):
            continue  # Kiali: "missing expected labels" / a bad id
        edge = edges.get((source, dest))
        value = float(sample["value"][1])
        if edge is not None and edge.response_time is None and value == value:  # not NaN
            edge.response_time = value


def mark(traffic: TrafficMap, namespaces: list[str]) -> None:
    """``trafficGenerator`` (isRoot) and ``outsider`` (isOutside, isInaccessible)."""
    targets = {e.dest.key for e in traffic.edges}
    senders = {e.source.key for e in traffic.edges}
    for node in traffic.nodes.values():
        if node.key in senders and node.key not in targets:
            node.flags["isRoot"] = True
        if node.node_type == "unknown" or (node.node_type == "service"
                                           and node.namespace == "unknown"):
            node.flags["isInaccessible"] = True
        elif node.namespace != "unknown" and node.namespace not in namespaces:
            node.flags["isOutside"] = True


def run(traffic: TrafficMap, namespaces: list[str], appenders: list[str], response_time: str,
        query: Callable[[str], list[Obj]]) -> None:
    """Run the requested appenders (all modelled ones when ``appenders`` is empty)."""
    wanted = set(appenders) or set(MODELLED)
    if "securityPolicy" in wanted:
        for ns in namespaces:
            for q in security_queries(ns, traffic.options.duration):
                add_security(traffic, query(q))
    if "responseTime" in wanted:
        quantile = QUANTILES[response_time or "95"]
        for ns in namespaces:
            for q in response_time_queries(ns, traffic.options.duration, quantile):
                add_response_times(traffic, query(q))
    mark(traffic, namespaces)
