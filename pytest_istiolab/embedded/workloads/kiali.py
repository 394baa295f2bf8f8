"""The Kiali addon (``quay.io/kiali/kiali:v2.8`` of ``samples/addons/kiali.yaml``).

Scope and limitations
---------------------
Serves port 20001 under the ``server.web_root`` of its ConfigMap (``/kiali``), anonymous
access: ``/kiali/healthz``, the UI's index page, ``/kiali/api`` and ``/kiali/api/status``
(Kiali's status map; external services Kubernetes and Prometheus with the version its
``/api/v1/status/buildinfo`` reports, not Grafana's or the tracing backend's, which this
model does not query: Kiali leaves out what it cannot read), ``/kiali/api/namespaces`` (every
namespace: ``accessible_namespaces: ['**']``), ``/kiali/api/clusters/apps|services|workloads``
(``namespaces=...``, ``health=true``) and ``/kiali/api/clusters/health`` (``type`` app,
service or workload; ``rateInterval``), and ``/kiali/api/namespaces/graph``
(:mod:`.kiali_graph`).

Traffic is never read from the mesh: like Kiali, the graph and the request health are
computed from ``istio_requests_total`` queried over HTTP from the Prometheus of
``external_services.prometheus.url`` (through the mesh, from Kiali's pod), so they show
what Prometheus holds. Workload status comes from the Deployments and Pods in the API.
Kiali caches Kubernetes objects and a real Prometheus lags a scrape (15 s); this model reads
both at the request's instant.

Not modelled, answered with Kiali's error shape (``{"error": "..."}``, HTTP 501) naming
what is missing: every other API route (Istio config and validations, details pages,
metrics and dashboards, traces, mesh graph, pod logs and config dumps), and the graph
features and appenders :mod:`.kiali_graph` and :mod:`.kiali_appenders` list (a graph request
without ``appenders`` runs the modelled ones, where Kiali runs all). The metrics port 9090
refuses connections. Health has no health annotations and no ``adjustRateInterval`` (the
interval is used as given); the lists carry no Istio references or validations (empty).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import yaml

from ..mesh.config import namespace_of
from ..mesh.topology import has_sidecar, is_gateway, pod_labels, pod_ready, selects
from . import kiali_appenders as ka
from . import kiali_graph as kg
from .base import AppContext, AppRequest, AppResponse, json_response, text_response
from .kiali_lists import app_of, list_items

Obj = dict[str, Any]
VERSION = "v2.8.0"
COMMIT = "912029aeba4c6b71cbd81072de1da9bf1d77668e"  # tag v2.8.0
CLUSTER = "Kubernetes"
DEFAULT_PROMETHEUS = "http://prometheus.istio-system:9090"


class KialiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def _error(status: int, message: str) -> AppResponse:
    return json_response({"error": message}, status=status)


def _duration(raw: str, name: str) -> int:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    try:
        if raw[-1:] in units:
            return int(float(raw[:-1]) * units[raw[-1]])
        return int(raw)
    except ValueError:
        raise KialiError(400, f"Invalid {name} [{raw}]") from None


class Kiali:
    def __init__(self, pod: Obj, container: Obj) -> None:
        self.pod, self.container = pod, container

    # ------------------------------------------------------------ plumbing
    def _config(self, ctx: AppContext) -> Obj:
        for cm in ctx.runtime.store.by_kind("", "configmaps", namespace_of(self.pod)):
            if cm["metadata"]["name"] == "kiali":
                try:
                    return yaml.safe_load((cm.get("data") or {}).get("config.yaml") or "") or {}
                except yaml.YAMLError:
                    return {}
        return {}

    def _prometheus(self, ctx: AppContext, path: str, params: dict[str, str]) -> Any:
        conf = self._config(ctx)
        base = ((conf.get("external_services") or {}).get("prometheus") or {}).get("url") \
            or DEFAULT_PROMETHEUS
        answer = ctx.call("GET", f"{base.rstrip('/')}{path}?{urlencode(params)}", timeout=30)
        try:
            body = json.loads(answer.body)
        except ValueError:
            raise KialiError(503, f"Prometheus client error: {answer.status} from {base}: "
                             f"{answer.text[:200]}") from None
        if body.get("status") != "success":
            raise KialiError(503, f"Prometheus client error: {body.get('error')}")
        return body["data"]

    def _vector(self, ctx: AppContext, query: str, when: float | None = None) -> list[Obj]:
        at = ctx.now if when is None else when
        return list(self._prometheus(ctx, "/api/v1/query",
                                     {"query": query, "time": f"{at:.3f}"})["result"])

    def handle(self, ctx: AppContext, req: AppRequest) -> AppResponse:
        ctx.spend(1, 5)
        root = "/" + str((self._config(ctx).get("server") or {}).get("web_root") or
                         "/kiali").strip("/")
        prefix = "" if root == "/" else root
        path = req.path_only.rstrip("/") or "/"
        if path == "/" and prefix:
            return AppResponse(302, _headers(root + "/"), b"")
        if path == (prefix or "/"):
            return text_response("<!doctype html><html><head><title>Kiali</title></head>"
                                 "<body><div id=\"root\"></div></body></html>")
        if path == f"{prefix}/healthz":
            return text_response("", content_type="text/plain")
        api = f"{prefix}/api"
        if path != api and not path.startswith(api + "/"):
            return text_response("404 page not found\n", 404, "text/plain; charset=utf-8")
        params = dict(req.query)
        try:
            return self._api(ctx, path[len(api):] or "/", params)
        except KialiError as err:
            return _error(err.status, err.message)

    def _api(self, ctx: AppContext, route: str, params: dict[str, str]) -> AppResponse:
        if route in ("/", "/status"):
            return json_response(self._status(ctx))
        if route == "/namespaces":
            return json_response([self._namespace(ns) for ns in self._namespaces(ctx)])
        if route == "/namespaces/graph":
            return json_response(self._graph(ctx, params))
        if route == "/clusters/health":
            return json_response(self._health(ctx, params))
        if route in ("/clusters/apps", "/clusters/services", "/clusters/workloads"):
            return json_response(self._list(ctx, route.rsplit("/", 1)[1], params))
        raise KialiError(501, f"GET /api{route} is not modelled by the embedded Kiali (modelled: "
                         "status, namespaces, namespaces/graph, clusters/health, clusters/apps, "
                         "clusters/services, clusters/workloads)")

    # -------------------------------------------------------------- status
    def _status(self, ctx: AppContext) -> Obj:
        image = str(self.container.get("image", ""))
        from ..api.discovery import VERSION_INFO  # what the API server's /version says

        # status/versions.go: Kubernetes of each cluster, then Prometheus; a service whose
        # version cannot be read is left out (Kiali only logs it)
        services = [{"name": f"Kubernetes-{CLUSTER}", "version": VERSION_INFO["gitVersion"]}]
        try:
            build = self._prometheus(ctx, "/api/v1/status/buildinfo", {})
            services.append({"name": "Prometheus", "version": str(build.get("version"))})
        except KialiError:
            pass
        return {"status": {"Kiali container version": image.rpartition(":")[2] or VERSION,
                           "Kiali version": VERSION, "Kiali commit hash": COMMIT,
                           "Kiali state": "running"},
                "externalServices": services, "warningMessages": [],
                "istioEnvironment": {"istioAPIEnabled": True}}

    # ---------------------------------------------------------- namespaces
    @staticmethod
    def _namespaces(ctx: AppContext) -> list[Obj]:
        return sorted(ctx.runtime.store.by_kind("", "namespaces"),
                      key=lambda n: n["metadata"]["name"])

    @staticmethod
    def _namespace(ns: Obj) -> Obj:
        meta = ns["metadata"]
        return {"name": meta["name"], "cluster": CLUSTER, "isAmbient": False,
                "labels": dict(meta.get("labels") or {}),
                "annotations": dict(meta.get("annotations") or {})}

    def _requested(self, ctx: AppContext, params: dict[str, str]) -> list[str]:
        known = [n["metadata"]["name"] for n in self._namespaces(ctx)]
        wanted = [n for n in (params.get("namespaces") or "").split(",") if n] or known
        for name in wanted:
            if name not in known:
                raise KialiError(403, f"Cannot access namespace data: namespaces \"{name}\" "
                                 "not found")
        return wanted

    # --------------------------------------------------------------- graph
    def _graph(self, ctx: AppContext, params: dict[str, str]) -> Obj:
        graph_type = params.get("graphType") or "workload"
        if graph_type not in kg.GRAPH_TYPES:
            if graph_type == "service":
                raise KialiError(501, "graphType [service] is not modelled by the embedded "
                                 f"Kiali (modelled: {', '.join(kg.GRAPH_TYPES)})")
            raise KialiError(400, f"Invalid graphType [{graph_type}]")
        appenders = [a for a in (params.get("appenders") or "").split(",") if a]
        invalid = ka.check(appenders, params.get("responseTime") or "")
        if invalid:
            raise KialiError(400, invalid)
        missing = [a for a in appenders if a not in ka.MODELLED]
        if missing:
            raise KialiError(501, f"appenders {missing} are not modelled by the embedded Kiali "
                             f"(modelled: {', '.join(ka.MODELLED)})")
        for name in ("rateGrpc", "rateTcp"):
            if params.get(name) not in (None, "", "requests" if name == "rateGrpc" else "sent"):
                raise KialiError(501, f"{name}={params[name]} is not modelled by the embedded "
                                 "Kiali (HTTP request rates only)")
        if params.get("rateHttp") not in (None, "", "requests"):
            raise KialiError(400, f"Invalid rateHttp [{params['rateHttp']}]")
        if not params.get("namespaces"):
            raise KialiError(400, "At least one namespace must be specified via the "
                             "namespaces query parameter.")
        namespaces = self._requested(ctx, params)
        duration = _duration(params.get("duration") or "10m", "duration")
        raw_time = params.get("queryTime") or ""
        if raw_time and not raw_time.isdigit():
            raise KialiError(400, f"Invalid queryTime [{raw_time}]")
        # Kiali queries at whole seconds; without queryTime the model queries at its own
        # instant instead: its load comes in a burst of virtual time, which cutting to the
        # second would split (a real scrape lags far more than that)
        when = float(raw_time) if raw_time else ctx.now
        options = kg.Options(graph_type, params.get("injectServiceNodes") == "true",
                             params.get("boxBy") or "", duration, int(when))
        traffic = kg.TrafficMap(options)
        idle = params.get("includeIdleEdges") == "true"
        for ns in namespaces:
            for query in kg.traffic_queries(ns, duration, idle):
                try:
                    traffic.add_vector(self._vector(ctx, query, when))
                except ValueError as err:
                    raise KialiError(500, str(err)) from None
        ka.run(traffic, namespaces, appenders, params.get("responseTime") or "",
               lambda q: self._vector(ctx, q, when))
        return kg.build(traffic)

    # -------------------------------------------------------------- health
    def _health(self, ctx: AppContext, params: dict[str, str]) -> Obj:
        kind = params.get("type") or "app"
        if kind not in ("app", "service", "workload"):
            raise KialiError(400, "Bad request, query parameter 'type' must be one of ['app',"
                             "'service','workload']")
        interval = f'{_duration(params.get("rateInterval") or "10m", "rateInterval")}s'
        key = {"app": "namespaceAppHealth", "service": "namespaceServiceHealth",
               "workload": "namespaceWorkloadHealth"}[kind]
        return {key: {ns: self._namespace_health(ctx, ns, kind, interval)
                      for ns in self._requested(ctx, params)}}

    def _rates(self, ctx: AppContext, ns: str, interval: str) -> list[Obj]:
        """Kiali's getAllRequestRates: traffic into the namespace from outside, and traffic
        from the namespace's workloads (raw series, both reporters)."""
        return [s for selector in (f'destination_service_namespace="{ns}",'
                                   f'source_workload_namespace!="{ns}"',
                                   f'source_workload_namespace="{ns}"')
                for s in self._vector(ctx, f"rate(istio_requests_total{{{selector}}}"
                                           f"[{interval}]) > 0")]

    def _namespace_health(self, ctx: AppContext, ns: str, kind: str, interval: str) -> Obj:
        samples = self._rates(ctx, ns, interval)
        workloads = self._workloads(ctx, ns)
        if kind == "service":
            names = [s["metadata"]["name"] for s in ctx.runtime.store.by_kind("", "services", ns)]
            return {n: {"requests": _service_health(samples, ns, n)} for n in names}
        meshed = {(a if kind == "app" else n) for n, a, st in workloads
                  if st["syncedProxies"] != -1 or st.get("gateway")}
        if kind == "app":
            names = sorted({a for _, a, _ in workloads if a})
            rates = _fill(samples, names, meshed, "canonical_service")
            return {name: {"workloadStatuses": [_public(st) for _, a, st in workloads
                                                if a == name], "requests": rates[name]}
                    for name in names}
        names = [n for n, _, _ in workloads]
        rates = _fill(samples, names, meshed, "workload")
        return {n: {"workloadStatus": _public(st), "requests": rates[n]}
                for n, _, st in workloads}

    # ---------------------------------------------------------- workloads
    def _workloads(self, ctx: AppContext, ns: str) -> list[tuple[str, str, Obj]]:
        """(Deployment name, app label, WorkloadStatus) of every Deployment in ``ns``."""
        pods = ctx.runtime.store.by_kind("", "pods", ns)
        out = []
        for dep in sorted(ctx.runtime.store.by_kind("apps", "deployments", ns),
                          key=lambda d: d["metadata"]["name"]):
            template = ((dep.get("spec") or {}).get("template") or {}).get("metadata") or {}
            selector = ((dep.get("spec") or {}).get("selector") or {}).get("matchLabels")
            mine = [p for p in pods if selects(selector, pod_labels(p))]
            status = dep.get("status") or {}
            synced = sum(1 for p in mine if has_sidecar(p) and pod_ready(p)) \
                if any(has_sidecar(p) for p in mine) else -1
            gateway = any(is_gateway(p) for p in mine)
            labels = {k: str(v) for k, v in (template.get("labels") or {}).items()}
            out.append((dep["metadata"]["name"], app_of(labels),
                        {"name": dep["metadata"]["name"],
                         "desiredReplicas": int((dep.get("spec") or {}).get("replicas", 1)),
                         "currentReplicas": int(status.get("replicas", 0)),
                         "availableReplicas": int(status.get("availableReplicas", 0)),
                         "syncedProxies": synced, "gateway": gateway}))
        return out

    def _list(self, ctx: AppContext, what: str, params: dict[str, str]) -> Obj:
        namespaces = self._requested(ctx, params)
        health = None
        if params.get("health") == "true":
            kind = {"apps": "app", "services": "service", "workloads": "workload"}[what]
            interval = f'{_duration(params.get("rateInterval") or "10m", "rateInterval")}s'
            health = {ns: self._namespace_health(ctx, ns, kind, interval) for ns in namespaces}
        return list_items(ctx, what, namespaces, health, CLUSTER)


def _public(status: Obj) -> Obj:
    return {k: v for k, v in status.items() if k != "gateway"}


def _code(m: dict[str, str]) -> tuple[str, str]:
    return m.get("request_protocol", "http"), \
        "-" if m.get("response_code") == "0" else m.get("response_code", "-")


def _fill(samples: list[Obj], names: list[str], meshed: set[str], field: str) -> Obj:
    """Kiali's fillAppRequestRates / fillWorkloadRequestRates: a sample to a meshed
    destination counts inbound for it (per reporter, then combined: the source reporter's
    rates, raised or completed by the destination's) and, reported by the source, outbound
    for its source."""
    per: dict[str, dict[str, dict[str, dict[str, float]]]] = {
        n: {"source": {}, "destination": {}, "outbound": {}} for n in names}
    for s in samples:
        m, value = s["metric"], float(s["value"][1])
        if m.get(f"destination_{field}", "") not in meshed:
            continue
        proto, code = _code(m)
        reporter = m.get("reporter", "")
        dest = per.get(m.get(f"destination_{field}", ""))
        src = per.get(m.get(f"source_{field}", ""))
        if dest is not None and reporter in ("source", "destination"):
            row = dest[reporter].setdefault(proto, {})
            row[code] = row.get(code, 0.0) + value
        if src is not None and reporter == "source":
            row = src["outbound"].setdefault(proto, {})
            row[code] = row.get(code, 0.0) + value
    out: Obj = {}
    for name, rates in per.items():
        inbound = {p: dict(codes) for p, codes in rates["source"].items()}
        for proto, codes in rates["destination"].items():
            row = inbound.setdefault(proto, {})
            for code, value in codes.items():
                row[code] = max(value, row.get(code, value))
        out[name] = {"inbound": inbound, "outbound": rates["outbound"], "healthAnnotations": {}}
    return out


def _service_health(samples: list[Obj], ns: str, name: str) -> Obj:
    """A service's RequestHealth: inbound rates by protocol and response code (Kiali's
    service health reads the namespace's service rates without telling reporters apart; the
    model counts the destination reporter's), no outbound."""
    inbound: dict[str, dict[str, float]] = {}
    for s in samples:
        m = s["metric"]
        if m.get("reporter") == "destination" and m.get("destination_service_name") == name \
                and m.get("destination_service_namespace") == ns:
            proto, code = _code(m)
            row = inbound.setdefault(proto, {})
            row[code] = row.get(code, 0.0) + float(s["value"][1])
    return {"inbound": inbound, "outbound": {}, "healthAnnotations": {}}


def _headers(location: str) -> Any:
    from ..mesh.headers import Headers

    return Headers([("Location", location), ("Content-Length", "0")])

