"""Kiali's traffic graph, computed from Prometheus answers as Kiali v2.8 computes it.

Pure functions: :func:`traffic_queries` are the PromQL queries Kiali's Istio telemetry vendor
sends for one namespace (``graph/telemetry/istio/istio.go`` @v2.8.0, HTTP/gRPC request
traffic: unserviced incoming, destination-reported incoming, source-reported outgoing), and
:func:`build` turns their vectors into the cytoscape JSON of ``graph/config/common`` (node
and edge ids are SHA-256 hex of Kiali's internal ids; rates are strings with Kiali's
precision; app and versionedApp graphs box the versions of an app; nodes and edges sorted as
Kiali sorts them).

Scope and limitations
---------------------
Modelled: graph types ``versionedApp``, ``app`` and ``workload``; ``injectServiceNodes``;
``boxBy`` ``app``/``namespace``/``cluster``; duplicate series from both reporters counted once
(Kiali's per-edge time-series hash); HTTP rates (``http``, ``http3xx/4xx/5xx``,
``httpNoResponse``, ``httpPercentErr``, ``httpPercentReq``; nodes ``httpIn*``/``httpOut``)
and ``responses`` by code with flags and hosts. Not modelled (the server answers Kiali's
error shape naming them): the ``service`` graph type, gRPC message and TCP rates, ambient
and waypoint handling. Appenders: :mod:`.kiali_appenders`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

Obj = dict[str, Any]
METRIC = "istio_requests_total"
GROUP_BY = ("source_cluster,source_workload_namespace,source_workload,source_canonical_service,"
            "source_canonical_revision,destination_cluster,destination_service_namespace,"
            "destination_service,destination_service_name,destination_workload_namespace,"
            "destination_workload,destination_canonical_service,destination_canonical_revision,"
            "request_protocol,response_code,grpc_response_status,response_flags")
GRAPH_TYPES = ("versionedApp", "app", "workload")
UNKNOWN = "unknown"
EDGE_RATES = (("http", "total"), ("httpNoResponse", "err"), ("http3xx", ""),
              ("http4xx", "err"), ("http5xx", "err"))
NODE_RATES = ("httpIn", "httpInNoResponse", "httpIn3xx", "httpIn4xx", "httpIn5xx", "httpOut")


def traffic_queries(namespace: str, duration: int, include_idle: bool = False) -> list[str]:
    """The request-traffic queries for ``namespace`` over ``duration`` seconds."""
    idle = "" if include_idle else " > 0"
    ns = namespace

    def q(selector: str) -> str:
        return f"sum(rate({METRIC}{{{selector}}} [{duration}s])) by ({GROUP_BY}){idle}"

    return [
        q(f'reporter=~"waypoint|source",source_workload_namespace!="{ns}",destination_workload_'
          f'namespace="unknown",destination_workload="unknown",destination_service=~"^.+\\\\.'
          f'{ns}\\\\..+$"'),
        q(f'reporter=~"waypoint|destination",destination_workload_namespace="{ns}"'),
        q(f'reporter=~"waypoint|source",source_workload_namespace="{ns}"'),
    ]


@dataclass
class Options:
    graph_type: str = "versionedApp"
    inject_service_nodes: bool = False
    box_by: str = ""
    duration: int = 600
    query_time: int = 0


@dataclass
class Node:
    key: str
    node_type: str
    cluster: str
    namespace: str
    workload: str = ""
    app: str = ""
    version: str = ""
    service: str = ""
    rates: dict[str, float] = field(default_factory=dict)
    dest_services: dict[tuple[str, str, str], None] = field(default_factory=dict)
    flags: dict[str, bool] = field(default_factory=dict)  # isRoot, isOutside …


@dataclass
class Edge:
    source: Node
    dest: Node
    protocol: str
    rates: dict[str, float] = field(default_factory=dict)
    responses: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    seen: set[str] = field(default_factory=set)
    response_time: float | None = None  # ms, from the responseTime appender
    mtls: float | None = None  # percent, from the securityPolicy appender
    principals: tuple[str, str] | None = None  # (source, destination), securityPolicy


def ok(value: str) -> bool:
    return value not in ("", UNKNOWN)


def node_key(cluster: str, svc_ns: str, service: str, wl_ns: str, workload: str, app: str,
             version: str, graph_type: str) -> tuple[str, str]:
    """Kiali's ``graph.Id``: (internal id, node type)."""
    namespace = wl_ns if ok(wl_ns) else svc_ns
    if namespace == UNKNOWN and workload == UNKNOWN and app == UNKNOWN and service == "":
        return f"{cluster}_unknown_source", "unknown"
    if workload == UNKNOWN and app == UNKNOWN and service == UNKNOWN:
        return f"svc_{cluster}_{namespace}_unknown", "service"
    if not (ok(workload) or ok(app) or ok(service)):
        raise ValueError(f"Failed ID gen1: cluster=[{cluster}] namespace=[{namespace}] "
                         f"workload=[{workload}] app=[{app}] version=[{version}] "
                         f"service=[{service}] graphType=[{graph_type}]")
    if graph_type == "workload":
        if not ok(workload):
            return f"svc_{cluster}_{namespace}_{service if ok(service) else UNKNOWN}", "service"
        return f"wl_{cluster}_{namespace}_{workload}", "workload"
    if ok(app):
        if graph_type == "versionedApp":
            if ok(workload):
                return f"vapp_{cluster}_{namespace}_{workload}", "app"
            if ok(version):
                return f"vapp_{cluster}_{namespace}_{app}_{version}", "app"
        return f"app_{cluster}_{namespace}_{app}", "app"
    if ok(workload):
        return f"wl_{cluster}_{namespace}_{workload}", "workload"
    return f"svc_{cluster}_{namespace}_{service}", "service"


class TrafficMap:
    def __init__(self, options: Options) -> None:
        self.options = options
        self.nodes: dict[str, Node] = {}
        self.edges: list[Edge] = []

    def node(self, cluster: str, svc_ns: str, service: str, wl_ns: str, workload: str,
             app: str, version: str) -> Node:
        key, kind = node_key(cluster, svc_ns, service, wl_ns, workload, app, version,
                             self.options.graph_type)
        if key not in self.nodes:
            namespace = wl_ns if ok(wl_ns) else svc_ns
            if kind == "app":
                service = ""
                if self.options.graph_type != "versionedApp":
                    workload = version = ""
            elif kind == "service":
                app = workload = version = ""
            elif kind == "workload":
                app = "" if app == UNKNOWN else app
                version = "" if version == UNKNOWN else version
                service = ""
            self.nodes[key] = Node(key, kind, cluster, namespace, workload, app, version,
                                   service)
        return self.nodes[key]

    def add_vector(self, samples: list[Obj]) -> None:
        """Kiali's ``populateTrafficMap`` for ``istio_requests_total`` samples."""
        for sample in samples:
            m = sample["metric"]
            value = float(sample["value"][1])
            needed = ("source_workload_namespace", "source_workload", "source_canonical_service",
                      "source_canonical_revision", "destination_service_namespace",
                      "destination_service", "destination_service_name",
                      "destination_workload_namespace", "destination_workload",
                      "destination_canonical_service", "destination_canonical_revision",
                      "response_flags", "request_protocol", "response_code")
            if any(k not in m for k in needed) or m["request_protocol"] != "http":
                continue  # Kiali: "missing expected TS labels"; gRPC/TCP: not modelled
            code = "-" if m["response_code"] == "0" else m["response_code"]
            self._add(m, value, code)

    def _add(self, m: dict[str, str], value: float, code: str) -> None:
        src_cluster = m.get("source_cluster") or UNKNOWN
        dst_cluster = m.get("destination_cluster") or src_cluster
        src = (src_cluster, m["source_workload_namespace"], "", m["source_workload_namespace"],
               m["source_workload"], m["source_canonical_service"],
               m["source_canonical_revision"])
        svc_ns, svc = m["destination_service_namespace"], m["destination_service_name"]
        dst = (dst_cluster, svc_ns, svc, m["destination_workload_namespace"],
               m["destination_workload"], m["destination_canonical_service"],
               m["destination_canonical_revision"])
        source, dest = self.node(*src), self.node(*dst)
        host, flags = m["destination_service"], m["response_flags"]
        # Kiali's edge time-series hash: the series' own peer labels (not the node ids, which
        # an app graph shares between versions), so only the other reporter's copy repeats it
        ts = f"{METRIC}:{':'.join(src)}:{':'.join(dst)}:{code}:{flags}:{host}"
        inject = self.options.inject_service_nodes and ok(svc) and dest.node_type != "service" \
            and svc != "PassthroughCluster"
        if inject:
            injected = self.node(dst_cluster, svc_ns, svc, "", "", "", "")
            if self._edge_traffic(source, injected, ts, value, code, flags, host):
                injected.dest_services[(dst_cluster, svc_ns, svc)] = None
                self._edge_traffic(injected, dest, ts, value, code, flags, host)
                dest.dest_services[(dst_cluster, svc_ns, svc)] = None
        elif self._edge_traffic(source, dest, ts, value, code, flags, host) and ok(svc):
            dest.dest_services[(dst_cluster, svc_ns, svc)] = None

    def _edge_traffic(self, source: Node, dest: Node, ts: str, value: float, code: str,
                      flags: str, host: str) -> bool:
        edge = next((e for e in self.edges if e.source is source and e.dest is dest), None)
        if edge is None:
            edge = Edge(source, dest, "http")
            self.edges.append(edge)
        if ts in edge.seen:
            return False  # the other reporter's copy of a series already counted
        edge.seen.add(ts)
        if value <= 0:
            return True
        _add(source.rates, "httpOut", value)
        _add(dest.rates, "httpIn", value)
        _add(edge.rates, "http", value)
        detail = edge.responses.setdefault(code, {"flags": {}, "hosts": {}})
        _add(detail["flags"], flags, value)
        _add(detail["hosts"], host, value)
        suffix = {"-": "NoResponse", "3": "3xx", "4": "4xx", "5": "5xx"}.get(code[:1])
        if code == "-" or (suffix and len(code) == 3):
            _add(dest.rates, f"httpIn{suffix}", value)
            _add(edge.rates, f"http{suffix}", value)
        return True


def _add(rates: dict[str, float], key: str, value: float) -> None:
    rates[key] = rates.get(key, 0.0) + value


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def rate_string(value: float, min_precision: int = 2) -> str:
    """Kiali's ``rateToString``: at least one significant digit, up to 5 decimals."""
    precision, v = 0, value
    while precision < 5 and 0 < v < 1:
        v *= 10
        precision += 1
    return f"{value:.{max(min_precision, precision)}f}"


def build(traffic: TrafficMap) -> Obj:
    """Kiali's ``NewConfig``: the cytoscape JSON of ``traffic``."""
    o = traffic.options
    nodes = [_node_data(n) for n in traffic.nodes.values()]
    edges = [_edge_data(e) for e in traffic.edges]
    if "app" in o.box_by or o.graph_type in ("app", "versionedApp"):
        _box(nodes, "app", lambda d: d.get("app", "") not in ("", UNKNOWN),
             lambda d: f"box_{d['cluster']}_{d['namespace']}_{d['app']}", need_many=False)
    if "namespace" in o.box_by:
        _box(nodes, "namespace", lambda d: not d.get("parent") and d["namespace"] != UNKNOWN,
             lambda d: f"box_{d['cluster']}_{d['namespace']}", need_many=True)
    if "cluster" in o.box_by:
        _box(nodes, "cluster", lambda d: not d.get("parent") and d["cluster"] != UNKNOWN,
             lambda d: f"box_{d['cluster']}", need_many=True)
    rank = {"cluster": 0, "namespace": 1, "app": 2}
    nodes.sort(key=lambda d: (rank.get(d.get("isBox", ""), 3), d["cluster"], d["namespace"],
                              d.get("app", ""), d.get("version", ""), d.get("service", ""),
                              d.get("workload", "")))
    edges.sort(key=lambda d: (d["source"], d["target"], d["traffic"]["protocol"]))
    return {"timestamp": o.query_time, "duration": o.duration, "graphType": o.graph_type,
            "elements": {"nodes": [{"data": d} for d in nodes],
                         "edges": [{"data": d} for d in edges]}}


def _node_data(n: Node) -> Obj:
    data: Obj = {"id": sha(n.key), "nodeType": n.node_type, "cluster": n.cluster,
                 "namespace": n.namespace}
    for key, value in (("workload", n.workload), ("app", n.app), ("version", n.version),
                       ("service", n.service)):
        if value:
            data[key] = value
    if n.dest_services:
        data["destServices"] = [{"cluster": c, "namespace": ns, "name": s}
                                for c, ns, s in sorted(n.dest_services)]
    rates = {k: rate_string(n.rates[k]) for k in NODE_RATES if n.rates.get(k, 0) > 0}
    if rates:
        data["traffic"] = [{"protocol": "http", "rates": rates}]
    data["healthData"] = None
    data.update({k: v for k, v in sorted(n.flags.items()) if v})
    return data


def _edge_data(e: Edge) -> Obj:
    source, target = sha(e.source.key), sha(e.dest.key)
    data: Obj = {"id": sha(f"{source}.{target}.{e.protocol}"), "source": source,
                 "target": target, "traffic": {"protocol": e.protocol}}
    if e.principals is not None:
        data["sourcePrincipal"], data["destPrincipal"] = e.principals
    if e.mtls is not None:
        data["isMTLS"] = f"{e.mtls:.0f}"
    if e.response_time is not None:
        data["responseTime"] = f"{e.response_time:.0f}"
    total = e.rates.get("http", 0.0)
    if total <= 0:
        return data
    rates = {k: rate_string(e.rates[k]) for k, _ in EDGE_RATES if e.rates.get(k, 0) > 0}
    errors = sum(e.rates.get(k, 0.0) for k, kind in EDGE_RATES if kind == "err")
    if errors > 0:
        rates["httpPercentErr"] = f"{errors / total * 100:.1f}"
    out = e.source.rates.get("httpOut", 0.0)
    if out > 0:
        rates["httpPercentReq"] = f"{total / out * 100:.1f}"
    responses = {code: {"flags": {f: f"{v / total * 100:.1f}" for f, v in d["flags"].items()},
                        "hosts": {h: f"{v / total * 100:.1f}" for h, v in d["hosts"].items()}}
                 for code, d in e.responses.items()}
    data["traffic"].update(rates=rates, responses=responses)
    return data


def _box(nodes: list[Obj], box_by: str, member: Any, key: Any, need_many: bool) -> None:
    boxes: dict[str, list[Obj]] = {}
    for d in nodes:
        if member(d):
            boxes.setdefault(key(d), []).append(d)
    if need_many and len(boxes) < 2:
        return
    for k, members in boxes.items():
        if len(members) < 2:
            continue
        first = members[0]
        box: Obj = {"id": sha(k), "nodeType": "box", "cluster": first["cluster"],
                    "namespace": first["namespace"] if box_by != "cluster" else "",
                    "isBox": box_by, "healthData": None}
        if box_by == "app":
            box["app"] = first["app"]
        for d in members:
            d["parent"] = box["id"]
        nodes.append(box)
