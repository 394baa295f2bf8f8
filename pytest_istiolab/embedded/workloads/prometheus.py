"""The Prometheus addon (``prom/prometheus:v3.2.1`` of ``samples/addons/prometheus.yaml``).

Scope and limitations
---------------------
Serves the HTTP API on 9090: ``/api/v1/query`` and ``query_range`` (GET or POST, PromQL
parsed by ``promql-parser`` and evaluated by :mod:`.promql` for the subset it states; the rest
is answered as Prometheus's ``bad_data`` naming what is not modelled), ``/api/v1/series``,
``/api/v1/labels``, ``/api/v1/label/<name>/values``, ``/api/v1/targets``,
``/api/v1/status/buildinfo`` (version and the v3.2.1 tag's revision; the build user, date and
Go version are not known to the model and are empty), ``status/runtimeinfo``,
``status/config`` (the ``prometheus.yml`` of the mounted ConfigMap), ``/-/ready``,
``/-/healthy``.

Scraping and time: the addon's ``kubernetes-pods`` job scrapes every pod annotated
``prometheus.io/scrape: "true"`` (the injector adds it for sidecars, ``:15020/stats/
prometheus``; istiod on 15014) every 15 s. The model instead answers from every sample up to
the query time: a counter's value at *t* includes every request that ended by *t*, so a
request is visible at once, where a real Prometheus shows it after the next scrape (up to
15 s, plus the ``rate`` window's need for two scrapes). The suite polls with timeouts that
fit a real scrape interval. Target labels are those of the addon's relabelling
(``job``, ``instance``, ``namespace``, ``pod``, ``node`` and every pod label through
``labelmap``, with ``honor_labels: true``). Series from a sidecar: Istio's standard metrics
(:mod:`..mesh.telemetry`) and Envoy's default-matcher stats ``envoy_server_live``,
``envoy_server_state``, ``envoy_cluster_manager_active_clusters``,
``envoy_cluster_upstream_cx_active{cluster_name="xds-grpc"}``; from istiod ``pilot_xds``
(connected proxies) and ``pilot_xds_pushes{type}`` (one push of each type per proxy: the
model has no push history) and ``istio_build``. Annotated pods without a proxy (the Kiali
and Jaeger addons) are targets with no series: their own metrics are not modelled, and they
have no Envoy stats. When the mounted ``prometheus.yml`` has the
``kubernetes-nodes-cadvisor`` job (the 1.26 addon's), each node is a target of it, with the
kubelet's cAdvisor series of :mod:`.cadvisor` (``container_cpu_usage_seconds_total``,
``container_memory_working_set_bytes``). Not modelled: the other scrape jobs (apiservers,
nodes, service endpoints: no targets), recording and alerting rules, remote write, the TSDB
admin API, native histograms, ``limit``/``timeout`` parameters. A query that selects a
metric family a real mesh has but the model does not emit (cAdvisor's other
``container_*``, the Go and process metrics, istiod's other ``pilot_*``, ``galley_*`` and
``sidecar_injection_*``) is answered as Prometheus answers an unknown name (no series), with a
``warnings`` entry in the envelope saying the family is not modelled.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl

import yaml

from ..mesh import telemetry
from ..mesh.config import namespace_of
from ..mesh.topology import container_named, pod_ip, pod_labels, pod_ready
from . import cadvisor, promql
from .base import AppContext, AppRequest, AppResponse, json_response, text_response
from .promql import Const

Obj = dict[str, Any]
VERSION = "3.2.1"
REVISION = "804c49d58f3f3784c77c9c8ec17c9062092cae27"  # tag v3.2.1
SCRAPE_INTERVAL = "15s"


def _started(pod: Obj) -> float:
    raw = (pod.get("status") or {}).get("startTime") or pod["metadata"].get("creationTimestamp")
    try:
        return datetime.fromisoformat(str(raw).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def _label_name(name: str) -> str:
    return re.sub(r"[^a-zA-Z0-9_]", "_", name)


def scraped_pods(ctx: AppContext) -> list[Obj]:
    pods = ctx.runtime.store.by_kind("", "pods")
    return [p for p in pods if (p["metadata"].get("annotations") or {})
            .get("prometheus.io/scrape") == "true" and pod_ip(p)]


def target_labels(pod: Obj) -> dict[str, str]:
    ann = pod["metadata"].get("annotations") or {}
    labels = {_label_name(k): str(v) for k, v in pod_labels(pod).items()}
    labels.update({"instance": f"{pod_ip(pod)}:{ann.get('prometheus.io/port', '80')}",
                   "job": "kubernetes-pods", "namespace": namespace_of(pod),
                   "pod": pod["metadata"]["name"],
                   "node": str((pod.get("spec") or {}).get("nodeName") or "")})
    return labels


class Scrape(promql.Source):
    """Every series of every scraped pod, with its target labels."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self._cadvisor: list[tuple[dict[str, str], Any]] | None = None

    def _kubelets(self) -> list[tuple[dict[str, str], Any]]:
        """The cAdvisor series, gathered once per query (a range query reads them per step)."""
        if self._cadvisor is None:
            rt = self.ctx.runtime
            self._cadvisor = [row for node in cadvisor.nodes(rt)
                              for row in cadvisor.series(rt, node, cadvisor.target_labels(node))
                              ] if cadvisor.JOB in configured_jobs(self.ctx) else []
        return self._cadvisor

    def series(self) -> Iterable[tuple[dict[str, str], Any]]:
        yield from self._kubelets()
        store = telemetry.of(self.ctx.runtime)
        pods = scraped_pods(self.ctx)
        proxies = [p for p in pods if container_named(p, "istio-proxy") is not None]
        for pod in pods:
            base = target_labels(pod)
            since = _started(pod)
            if _is_istiod(pod):
                yield from self._istiod(base, since, len(proxies), _istiod_version(pod))
                continue
            if container_named(pod, "istio-proxy") is None:
                continue  # an addon's own metrics (Kiali's, Jaeger's): not modelled, no Envoy
            for name, value, extra in (
                    ("envoy_server_live", 1.0, {}), ("envoy_server_state", 0.0, {}),
                    ("envoy_cluster_manager_active_clusters", 1.0, {}),
                    ("envoy_cluster_upstream_cx_active", 1.0, {"cluster_name": "xds-grpc"})):
                yield {**base, **extra, "__name__": name}, Const(value, since)
            with store.lock:
                metrics = store.pods.get(telemetry.pod_key(pod))
                items = [] if metrics is None else [
                    (name, labels, series) for name, by_labels in metrics.series.items()
                    for labels, series in by_labels.items()]
            for name, labels, series in items:
                yield {**base, **dict(labels), "__name__": name}, series  # honor_labels

    @staticmethod
    def _istiod(base: dict[str, str], since: float, proxies: int, version: str
                ) -> Iterable[tuple[dict[str, str], Any]]:
        yield {**base, "__name__": "istio_build", "component": "pilot", "tag": version}, \
            Const(1.0, since)
        yield {**base, "__name__": "pilot_xds", "version": version}, Const(float(proxies), since)
        for kind in ("cds", "eds", "lds", "rds"):
            yield {**base, "__name__": "pilot_xds_pushes", "type": kind}, \
                Const(float(proxies), since)


def _config_text(ctx: AppContext) -> str:
    cm = None
    for c in ctx.runtime.store.by_kind("", "configmaps", namespace_of(ctx.pod)):
        if c["metadata"]["name"] == "prometheus":
            cm = c
    return str(((cm or {}).get("data") or {}).get("prometheus.yml") or "")


_JOBS: dict[str, frozenset[str]] = {}


def configured_jobs(ctx: AppContext) -> frozenset[str]:
    """The ``job_name``s of the mounted ``prometheus.yml`` (none if it does not parse)."""
    text = _config_text(ctx)
    if text not in _JOBS:
        try:
            doc = yaml.safe_load(text) or {}
            jobs = frozenset(str(j.get("job_name")) for j in doc.get("scrape_configs") or []
                             if isinstance(j, dict))
        except (yaml.YAMLError, AttributeError):
            jobs = frozenset()
        if len(_JOBS) > 8:
            _JOBS.clear()
        _JOBS[text] = jobs
    return _JOBS[text]


def _is_istiod(pod: Obj) -> bool:
    return pod_labels(pod).get("app") == "istiod"


def format_value(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def _error(error_type: str, message: str, status: int) -> AppResponse:
    return json_response({"status": "error", "errorType": error_type, "error": message},
                         status=status)


def _ok(data: Any, warnings: list[str] | None = None) -> AppResponse:
    return json_response({"status": "success", "data": data,
                          **({"warnings": warnings} if warnings else {})})


# metric families of a real 1.26 mesh that the model does not emit: (prefix, what they are)
NOT_MODELLED = (
    ("container_", "cAdvisor's container metrics other than container_cpu_usage_seconds_total "
                   "and container_memory_working_set_bytes"),
    ("go_", "the Go runtime metrics of istiod and the proxies"),
    ("process_", "the process metrics of istiod and the proxies"),
    ("galley_", "istiod's validation webhook metrics"),
    ("sidecar_injection_", "istiod's injection webhook metrics"),
    ("pilot_", "istiod's pilot_* metrics other than pilot_xds and pilot_xds_pushes"),
)
MODELLED = ("pilot_xds", "pilot_xds_pushes", "container_cpu_usage_seconds_total",
            "container_memory_working_set_bytes")


def _selected_names(node: Any) -> Iterable[str]:
    if type(node).__name__ == "VectorSelector" and node.name:
        yield str(node.name)
    children = [getattr(node, a, None) for a in ("expr", "lhs", "rhs", "vector_selector",
                                                  "param")]
    children += list(getattr(node, "args", None) or [])
    for child in children:
        if child is not None and type(child).__module__.startswith("promql_parser"):
            yield from _selected_names(child)


def not_modelled_warnings(query: str) -> list[str]:
    """Prometheus-style warnings for the metric families ``query`` selects that the model
    never emits (an unparsable query has none: it is a bad_data error anyway)."""
    try:
        names = set(_selected_names(promql.parse(query)))
    except promql.QueryError:
        return []
    out = []
    for name in sorted(names):
        for prefix, what in NOT_MODELLED:
            if name.startswith(prefix) and name not in MODELLED:
                out.append(f"{name}: {what} are not modelled by the embedded Prometheus")
                break
    return out


def _time(raw: str | None, default: float, name: str) -> float:
    if raw in (None, ""):
        return default
    try:
        return float(raw)  # type: ignore[arg-type]
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(str(raw).replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise ValueError(f"invalid parameter \"{name}\": cannot parse \"{raw}\" to a valid "
                         "timestamp") from None


def _duration(raw: str | None, name: str) -> float:
    try:
        return float(raw or "")
    except ValueError:
        pass
    try:
        import promql_parser

        return float(promql_parser.parse_duration(raw or "").total_seconds())
    except (ValueError, TypeError):
        raise ValueError(f"invalid parameter \"{name}\": cannot parse \"{raw}\" to a valid "
                         "duration") from None


class Prometheus:
    def __init__(self, pod: Obj, container: Obj) -> None:
        self.pod = pod

    def handle(self, ctx: AppContext, req: AppRequest) -> AppResponse:
        ctx.spend(0.5, 3)
        params = dict(req.query)
        if req.method == "POST" and b"=" in req.body:
            params.update(req.form())
        multi = [v for k, v in req.query + parse_qsl(req.body.decode("utf-8", "replace"))
                 if k == "match[]"]
        path = req.path_only
        try:
            return self._route(ctx, path, params, multi, req)
        except (promql.QueryError, promql.Unsupported) as exc:
            return _error("bad_data", f"invalid parameter \"query\": {exc}", 400)
        except ValueError as exc:
            return _error("bad_data", str(exc), 400)

    def _route(self, ctx: AppContext, path: str, params: dict[str, str], matches: list[str],
               req: AppRequest) -> AppResponse:
        if path == "/-/ready":
            return text_response("Prometheus Server is Ready.\n",
                                 content_type="text/plain; charset=utf-8")
        if path == "/-/healthy":
            return text_response("Prometheus Server is Healthy.\n",
                                 content_type="text/plain; charset=utf-8")
        if path in ("/", "/graph", "/query"):
            return text_response("<!doctype html><html><head><title>Prometheus Time Series "
                                 "Collection and Processing Server</title></head></html>")
        if path == "/api/v1/query":
            return self._query(ctx, params)
        if path == "/api/v1/query_range":
            return self._query_range(ctx, params)
        if path == "/api/v1/series":
            if not matches:
                return _error("bad_data", "no match[] parameter provided", 400)
            return _ok(self._series(ctx, matches))
        if path == "/api/v1/labels":
            names = {k for labels, _ in Scrape(ctx).series() for k in labels}
            return _ok(sorted(names))
        found = re.fullmatch(r"/api/v1/label/([^/]+)/values", path)
        if found:
            name = found.group(1)
            values = {labels[name] for labels, _ in Scrape(ctx).series() if name in labels}
            return _ok(sorted(values))
        if path == "/api/v1/targets":
            return _ok(self._targets(ctx))
        if path == "/api/v1/status/buildinfo":
            return _ok({"version": VERSION, "revision": REVISION, "branch": "HEAD",
                        "buildUser": "", "buildDate": "", "goVersion": ""})
        if path == "/api/v1/status/runtimeinfo":
            return _ok({"startTime": _rfc3339(_started(self.pod)), "CWD": "/prometheus",
                        "reloadConfigSuccess": True,
                        "lastConfigTime": _rfc3339(_started(self.pod)), "corruptionCount": 0,
                        "goroutineCount": 0, "GOMAXPROCS": 2, "GOMEMLIMIT": 0, "GOGC": "",
                        "GODEBUG": "", "storageRetention": "15d"})
        if path == "/api/v1/status/config":
            return _ok({"yaml": self._config(ctx)})
        return text_response("404 page not found\n", status=404,
                             content_type="text/plain; charset=utf-8")

    # ---------------------------------------------------------------- queries
    def _query(self, ctx: AppContext, params: dict[str, str]) -> AppResponse:
        query = params.get("query")
        if not query:
            return _error("bad_data", "invalid parameter \"query\": unknown position: parse "
                          "error: no expression found in input", 400)
        when = _time(params.get("time"), ctx.now, "time")
        kind, value = promql.evaluate(query, Scrape(ctx), when)
        return _ok({"resultType": kind, "result": _result(kind, value, when)},
                   not_modelled_warnings(query))

    def _query_range(self, ctx: AppContext, params: dict[str, str]) -> AppResponse:
        query = params.get("query") or ""
        start = _time(params.get("start"), math.nan, "start")
        end = _time(params.get("end"), math.nan, "end")
        if math.isnan(start) or math.isnan(end):
            return _error("bad_data", "invalid parameter \"start\": cannot parse \"\" to a "
                          "valid timestamp", 400)
        step = _duration(params.get("step"), "step")
        if end < start:
            return _error("bad_data", "end timestamp must not be before start time", 400)
        if step <= 0:
            return _error("bad_data", "zero or negative query resolution step widths are not "
                          "accepted. Try a positive integer", 400)
        if (end - start) / step > 11000:
            return _error("bad_data", "exceeded maximum resolution of 11,000 points per "
                          "timeseries. Try decreasing the query resolution (?step=XX)", 400)
        rows: dict[tuple[tuple[str, str], ...], list[list[Any]]] = {}
        promql.parse(query)
        t = start
        source = Scrape(ctx)
        while t <= end + 1e-9:
            kind, value = promql.evaluate(query, source, t)
            if kind == "scalar":
                rows.setdefault((), []).append([_ts(t), format_value(value)])  # type: ignore
            elif kind == "vector":
                for s in value:  # type: ignore[union-attr]
                    rows.setdefault(tuple(sorted(s.labels.items())), []).append(  # type: ignore
                        [_ts(t), format_value(s.value)])  # type: ignore[union-attr]
            else:
                raise promql.QueryError(f"invalid expression type \"{_type_name(kind)}\" for "
                                        "range query, must be Scalar or instant Vector")
            t += step
        result = [{"metric": dict(k), "values": v} for k, v in sorted(rows.items())]
        return _ok({"resultType": "matrix", "result": result}, not_modelled_warnings(query))

    def _series(self, ctx: AppContext, matches: list[str]) -> list[dict[str, str]]:
        seen: dict[tuple[tuple[str, str], ...], dict[str, str]] = {}
        for match in matches:
            node = promql.parse(match)
            if type(node).__name__ != "VectorSelector":
                raise ValueError(f"invalid parameter \"match[]\": {match} is not a selector")
            for labels, _ in promql.Evaluator(Scrape(ctx), ctx.now)._selected(node):
                seen[tuple(sorted(labels.items()))] = dict(labels)
        return [seen[k] for k in sorted(seen)]

    def _targets(self, ctx: AppContext) -> Obj:
        active = []
        for pod in scraped_pods(ctx):
            labels = target_labels(pod)
            ann = pod["metadata"].get("annotations") or {}
            url = (f"http://{labels['instance']}{ann.get('prometheus.io/path', '/metrics')}")
            active.append(_target("kubernetes-pods", labels, url, pod_ready(pod), ctx.now))
        if cadvisor.JOB in configured_jobs(ctx):
            for node in cadvisor.nodes(ctx.runtime):
                t = _target(cadvisor.JOB, cadvisor.target_labels(node), cadvisor.scrape_url(node),
                            True, ctx.now)
                ip = next((a.get("address") for a in (node.get("status") or {})
                           .get("addresses") or [] if a.get("type") == "InternalIP"), "")
                t["discoveredLabels"] = {"__address__": f"{ip}:10250", "job": cadvisor.JOB,
                                         "__meta_kubernetes_node_name":
                                         node["metadata"]["name"]}
                active.append(t)
        me = {"instance": "localhost:9090", "job": "prometheus"}
        active.append(_target("prometheus", me, "http://localhost:9090/metrics", True, ctx.now))
        return {"activeTargets": active, "droppedTargets": [], "droppedTargetCounts": {}}

    def _config(self, ctx: AppContext) -> str:
        return _config_text(ctx)


def _target(job: str, labels: dict[str, str], url: str, up: bool, now: float) -> Obj:
    return {"discoveredLabels": {"__address__": labels["instance"], "job": job},
            "labels": labels, "scrapePool": job, "scrapeUrl": url, "globalUrl": url,
            "lastError": "" if up else "connection refused", "lastScrape": _rfc3339(now),
            "lastScrapeDuration": 0.004, "health": "up" if up else "down",
            "scrapeInterval": SCRAPE_INTERVAL, "scrapeTimeout": "10s"}


def _result(kind: str, value: Any, when: float) -> Any:
    if kind == "scalar":
        return [_ts(when), format_value(value)]
    if kind == "string":
        return [_ts(when), value]
    if kind == "matrix":
        return [{"metric": r.labels, "values": [[_ts(t), format_value(v)] for t, v in r.points]}
                for r in value]
    return [{"metric": s.labels, "value": [_ts(when), format_value(s.value)]} for s in value]


def _ts(t: float) -> float:
    return round(t, 3)


def _type_name(kind: str) -> str:
    return {"matrix": "range vector", "string": "string"}.get(kind, kind)


def _rfc3339(t: float) -> str:
    return datetime.fromtimestamp(t).astimezone().isoformat()


def _istiod_version(pod: dict[str, Any]) -> str:
    """istiod's version, as its ``istio_build`` metric reports it: its image's tag."""
    from ..install.releases import version_of_image

    image = next((c.get("image", "") for c in (pod.get("spec") or {}).get("containers") or []
                  if c.get("name") == "discovery"), "")
    return version_of_image(image)
