"""A client of Kiali's HTTP API (v2.8, the 1.26 addon) and a reader of its traffic graph.

:class:`Kiali` calls ``<base>/kiali/api/...``; an answer that is not 2xx raises
:class:`KialiError` with Kiali's ``{"error": ...}`` message. :class:`Graph` reads the
cytoscape JSON of ``/api/namespaces/graph``: nodes named as the graph page labels them
(``productpage v1``, ``reviews`` for a service node, ``istio-ingressgateway latest
(istio-system)`` outside the graphed namespaces), edges by those names with their HTTP rates,
and the side panel's counts ("5 apps (7 versions), 4 services, 11 edges").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx

from pytest_istiolab.observability.http import AddonClient, AddonError

Obj = dict[str, Any]


class KialiError(AddonError):
    """A Kiali API error: HTTP status and Kiali's ``error`` message."""

    addon = "Kiali"


class Kiali(AddonClient):
    error = KialiError

    def __init__(self, base_url: str, timeout: float = 10.0, web_root: str = "/kiali") -> None:
        super().__init__(base_url, timeout)
        self.web_root = "/" + web_root.strip("/")

    def get(self, path: str, params: Any = None) -> httpx.Response:
        return self.client.get(f"{self.web_root}{path}", params=params)

    def api(self, path: str, params: Any = None) -> Any:
        """GET ``/kiali/api<path>``: the decoded JSON, or :class:`KialiError`."""
        return self.json(f"/api{path}", params)

    def error_message(self, response: httpx.Response, body: Any) -> str | None:
        if response.is_success:
            return None
        message = body.get("error") if isinstance(body, dict) else None
        return str(message or body)

    def ready(self) -> bool:
        try:
            return self.get("/healthz").status_code == 200
        except httpx.HTTPError:
            return False

    def status(self) -> Obj:
        return dict(self.api("/status"))

    def namespaces(self) -> list[Obj]:
        return list(self.api("/namespaces"))

    def health(self, namespace: str, kind: str = "app", rate_interval: str = "10m") -> Obj:
        """``{name: health}`` of the apps, services or workloads of ``namespace``."""
        body = self.api("/clusters/health", {"namespaces": namespace, "type": kind,
                                             "rateInterval": rate_interval})
        key = {"app": "namespaceAppHealth", "service": "namespaceServiceHealth",
               "workload": "namespaceWorkloadHealth"}[kind]
        return dict((body.get(key) or {}).get(namespace) or {})

    def listing(self, what: str, namespace: str, health: bool = True,
                rate_interval: str = "10m") -> list[Obj]:
        """The Applications, Services or Workloads page of ``namespace`` (``what``: ``apps``,
        ``services``, ``workloads``)."""
        body = self.api(f"/clusters/{what}", {"namespaces": namespace,
                                              "health": str(health).lower(),
                                              "rateInterval": rate_interval})
        return list(body["applications" if what == "apps" else what])

    def graph(self, namespace: str, graph_type: str = "versionedApp", duration: str = "10m",
              inject_service_nodes: bool = True,
              appenders: str = "deadNode,responseTime,securityPolicy",
              response_time: str = "95") -> Graph:
        """The graph page of ``namespace`` (the UI's defaults: versioned apps, service nodes)."""
        params = {"namespaces": namespace, "graphType": graph_type, "duration": duration,
                  "injectServiceNodes": str(inject_service_nodes).lower(),
                  "appenders": appenders, "responseTime": response_time}
        return Graph(self.api("/namespaces/graph", params), namespace)


@dataclass
class Graph:
    """Kiali's cytoscape graph JSON, read as the graph page shows it."""

    raw: Obj
    namespace: str
    nodes: dict[str, Obj] = field(init=False)
    edges: list[Obj] = field(init=False)

    def __post_init__(self) -> None:
        elements = self.raw.get("elements") or {}
        self.nodes = {n["data"]["id"]: n["data"] for n in elements.get("nodes") or []}
        self.edges = [e["data"] for e in elements.get("edges") or []]

    def label(self, node_id: str) -> str:
        """The node's label on the graph page."""
        d = self.nodes[node_id]
        if d.get("isBox"):
            name = f"[{d.get('app') or d.get('namespace') or d.get('cluster')}]"
        elif d["nodeType"] == "service":
            name = d.get("service", "")
        elif d["nodeType"] == "app":
            name = " ".join(x for x in (d.get("app"), d.get("version")) if x)
        elif d["nodeType"] == "workload":
            name = d.get("workload", "")
        else:
            name = "unknown"
        return name if d["namespace"] == self.namespace else f"{name} ({d['namespace']})"

    def edge_map(self) -> dict[tuple[str, str], Obj]:
        """(source label, target label) -> the edge's ``traffic``."""
        return {(self.label(e["source"]), self.label(e["target"])): e.get("traffic") or {}
                for e in self.edges}

    def rate(self, source: str, target: str, key: str = "http") -> float:
        """An edge's HTTP rate (``http``, ``httpPercentReq`` …) as a number; 0 when absent."""
        traffic = self.edge_map().get((source, target)) or {}
        return float((traffic.get("rates") or {}).get(key, 0.0))

    def response_time(self, source: str, target: str) -> float | None:
        """An edge's response time label in ms (Kiali's ``responseTime`` appender), or None."""
        for e in self.edges:
            if (self.label(e["source"]), self.label(e["target"])) == (source, target):
                return float(e["responseTime"]) if "responseTime" in e else None
        return None

    def summary(self) -> dict[str, int]:
        """The side panel's counts: apps, versions, services, edges."""
        real = [d for d in self.nodes.values() if not d.get("isBox")]
        apps = {(d["namespace"], d["app"]) for d in real if d["nodeType"] == "app"}
        versions = [d for d in real if d["nodeType"] == "app" and d.get("version")]
        services = [d for d in real if d["nodeType"] == "service"]
        return {"apps": len(apps), "versions": len(versions), "services": len(services),
                "edges": len(self.edges)}
