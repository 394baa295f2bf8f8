"""Distributed tracing as Istio 1.26 configures Envoy: who traces, the context, the spans.

Scope and limitations
---------------------
Which tracer a proxy has (``pilot/pkg/model/telemetry.go`` Tracing and
``pilot/pkg/networking/core/tracing.go`` @1.26.0): the Telemetry resources that apply to it
(the root namespace's namespace-wide one, then its own namespace's, then those whose
``selector`` matches it; ``match.mode`` CLIENT / SERVER / CLIENT_AND_SERVER, the first of
``providers``, ``disableSpanReporting``, ``randomSamplingPercentage``, ``enableIstioTags``)
over ``meshConfig.defaultProviders.tracing``; the provider is looked up by name in
``meshConfig.extensionProviders``. With no Telemetry and no default provider the legacy
mesh config applies: ``enableTracing`` (default true) with a
``defaultConfig.tracing.zipkin.address``. Since 1.22 there is no implicit tracer (catalogue
D-22): a demo install traces nothing until a Telemetry selects its ``jaeger`` provider.
Sidecar outbound and gateway hops use the client spec, inbound hops the server spec.

Sampling: ``randomSamplingPercentage`` > ``defaultConfig.tracing.sampling`` > istiod's
``PILOT_TRACE_SAMPLING`` (the demo profile's ``pilot.traceSampling: 100``; default 1). The
first proxy of a request decides and marks the decision in ``x-request-id`` as Envoy's UUID
extension does (the version digit becomes ``9``); later proxies keep a parent context's
sampled flag.

Propagation: an ``opentelemetry`` provider is Envoy's OpenTelemetry tracer (W3C
``traceparent``, ``00-<trace>-<span>-<flags>``), ``zipkin`` (and the legacy zipkin address)
is B3 multi-header (``x-b3-traceid`` 128-bit, ``x-b3-spanid``, ``x-b3-parentspanid``,
``x-b3-sampled``). Every traced hop makes one span (Envoy's HCM span, ``spawn_upstream_span``
off): SERVER for a sidecar's inbound side, CLIENT for its outbound side and for gateways,
child of the context the request arrived with, and forwards its own span id. Applications
carry the context only if they copy the headers (Bookinfo's productpage and reviews do).

Span contents: the operation is the route's decorator (``<host>:<port><path>`` with ``/*``,
a prefix + ``*``, or the exact path; ``<virtualservice>:<port>…`` for a weighted route;
inbound ``<service fqdn>:<port>/*``; Envoy's ``ingress``/``egress <host>`` without a route);
the service is the proxy's xDS cluster, ``<app>.<namespace>``. Tags are Envoy's
(``component``, ``node_id``, ``guid:x-request-id``, ``http.url``, ``http.method``,
``http.protocol``, ``downstream_cluster``, ``user_agent``, ``peer.address``,
``request_size``, ``response_size``, ``http.status_code``, ``response_flags``,
``upstream_cluster``, ``upstream_cluster.name``, ``upstream_address``, ``error`` on 5xx),
plus Istio's ``istio.canonical_service``, ``istio.canonical_revision``, ``istio.mesh_id``,
``istio.namespace`` and ``istio.cluster_id``, and ``span.kind`` as Jaeger records it.

Spans are delivered to the pod behind the provider's Service and port when a ready Jaeger
pod serves a collector port there (4317, 4318, 9411, 14250, 14268); otherwise they are
lost, as Envoy's exporter loses them. They are kept at once (Envoy batches and flushes every
few seconds: the suite polls). Not modelled: other provider kinds (skywalking, datadog,
lightstep: no tracer), ``customTags``, OTel samplers, ``zone``, span logs, the
``x-client-trace-id``/``x-envoy-force-trace`` reasons.
"""

from __future__ import annotations

import re
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from ..images import workload_kind
from .config import ROOT_NAMESPACE, Snapshot, namespace_of, service_fqdn
from .headers import Headers
from .hosts import service_for_name
from .state import extension
from .telemetry import canonical
from .topology import (
    pod_ip,
    pod_labels,
    pod_name,
    selects,
    service_pods,
    service_port,
    services_selecting,
    target_port,
)

Obj = dict[str, Any]
COLLECTOR_PORTS = (4317, 4318, 9411, 14250, 14268)
TRACED_REASONS = "9ab"  # x-request-id version digit: sampled, forced, client
MAX_SPANS = 200_000
_TRACEPARENT = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")


@dataclass(frozen=True)
class Tracer:
    """The tracer one side of one proxy has."""

    provider: str
    kind: str  # opentelemetry | zipkin
    service: str  # the collector's host, as the provider names it
    port: int
    sampling: float  # percent
    istio_tags: bool = True


@dataclass
class Active:
    """The span one hop is making."""

    tracer: Tracer
    trace_id: str
    span_id: str
    parent_id: str | None
    sampled: bool
    client: bool


@dataclass(frozen=True)
class Span:
    trace_id: str
    span_id: str
    parent_id: str | None
    operation: str
    service: str
    start: float  # virtual seconds
    duration: float
    tags: tuple[tuple[str, str], ...]
    collector: str  # the pod (namespace/name) the span was delivered to
    format: str = "otlp"  # how it arrived: otlp (OpenTelemetry) or zipkin


@dataclass
class SpanStore:
    spans: deque[Span] = field(default_factory=lambda: deque(maxlen=MAX_SPANS))
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, span: Span) -> None:
        with self.lock:
            self.spans.append(span)

    def delivered_to(self, pod_key: str, until: float) -> list[Span]:
        with self.lock:
            return [s for s in self.spans if s.collector == pod_key
                    and s.start + s.duration <= until]


def store_of(runtime: Any) -> SpanStore:
    return extension(runtime, "spans", SpanStore)


# ------------------------------------------------------------------ configuration
def tracer(snap: Snapshot, proxy: Obj, client: bool) -> Tracer | None:
    """The tracer of ``proxy``'s client side (outbound, gateway) or server side (inbound)."""
    entries = _tracing_entries(snap, proxy)
    mesh = snap.mesh.raw
    defaults = [str(n) for n in (mesh.get("defaultProviders") or {}).get("tracing") or []]
    if not entries and not defaults:
        return _legacy(snap, proxy)
    provider = defaults[0] if defaults else None
    disabled, sampling, istio_tags = False, None, True
    for entry in entries:
        mode = str((entry.get("match") or {}).get("mode") or "CLIENT_AND_SERVER")
        if (mode == "CLIENT" and not client) or (mode == "SERVER" and client):
            continue
        names = [str(p["name"]) for p in entry.get("providers") or [] if p.get("name")]
        if names:
            provider = names[0]
        if entry.get("disableSpanReporting") is not None:
            disabled = bool(entry["disableSpanReporting"])
        if entry.get("randomSamplingPercentage") is not None:
            sampling = float(entry["randomSamplingPercentage"])
        if entry.get("enableIstioTags") is not None:
            istio_tags = bool(entry["enableIstioTags"])
    if provider is None or disabled:
        return None
    found = next((p for p in mesh.get("extensionProviders") or []
                  if isinstance(p, dict) and p.get("name") == provider), None)
    kind = next((k for k in ("opentelemetry", "zipkin") if found and k in found), None)
    if found is None or kind is None:
        return None  # unknown provider, or a kind the model has no tracer for
    conf = found[kind] or {}
    port = int(conf.get("port") or (9411 if kind == "zipkin" else 4317))
    return Tracer(provider, kind, str(conf.get("service") or ""), port,
                  sampling if sampling is not None else proxy_sampling(snap), istio_tags)


def _tracing_entries(snap: Snapshot, proxy: Obj) -> list[Obj]:
    ns, labels = namespace_of(proxy), pod_labels(proxy)
    mine = sorted(snap.telemetries, key=lambda t: str(t["metadata"].get("creationTimestamp")))

    def wide(namespace: str) -> list[Obj]:
        found = [t for t in mine if namespace_of(t) == namespace and not _selector(t)]
        return list((found[0].get("spec") or {}).get("tracing") or []) if found else []

    entries = wide(ROOT_NAMESPACE)
    if ns != ROOT_NAMESPACE:
        entries += wide(ns)
    for tel in mine:
        if namespace_of(tel) == ns and _selector(tel) and selects(_selector(tel), labels):
            entries += list((tel.get("spec") or {}).get("tracing") or [])
    return entries


def _selector(tel: Obj) -> dict[str, str]:
    return dict(((tel.get("spec") or {}).get("selector") or {}).get("matchLabels") or {})


def _legacy(snap: Snapshot, proxy: Obj) -> Tracer | None:
    mesh = snap.mesh.raw
    if mesh.get("enableTracing", True) is False:
        return None
    conf = (mesh.get("defaultConfig") or {}).get("tracing") or {}
    address = str((conf.get("zipkin") or {}).get("address") or "")
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        return None
    return Tracer("zipkin", "zipkin", host, int(port), proxy_sampling(snap))


def proxy_sampling(snap: Snapshot) -> float:
    """``defaultConfig.tracing.sampling``, else istiod's PILOT_TRACE_SAMPLING (default 1)."""
    conf = ((snap.mesh.raw.get("defaultConfig") or {}).get("tracing") or {})
    sampling = float(conf.get("sampling") or 0.0)
    if sampling:
        return 1.0 if sampling > 100.0 else sampling
    for pod in snap.pods:
        if pod_labels(pod).get("app") == "istiod":
            for container in (pod.get("spec") or {}).get("containers") or []:
                for env in container.get("env") or []:
                    if env.get("name") == "PILOT_TRACE_SAMPLING":
                        try:
                            return float(env.get("value"))
                        except (TypeError, ValueError):
                            return 1.0
    return 1.0


# ------------------------------------------------------------------ one hop
def start(hop: Any, headers: Headers) -> Active | None:
    """Envoy's tracing decision and span context for one request (``hop.accept``)."""
    me = tracer(hop.flow.snap, hop.proxy, hop.kind != "inbound")
    if me is None:
        return None
    traced = _decide(hop, headers, me)
    parent = _extract(headers, me.kind)
    state = hop.flow.state
    if parent is not None:
        trace_id, parent_id, sampled = parent
    else:
        trace_id, parent_id, sampled = state.hex_id(16), None, traced
    active = Active(me, trace_id, state.hex_id(8), parent_id, sampled, hop.kind != "inbound")
    _inject(headers, active)
    return active


def _decide(hop: Any, headers: Headers, me: Tracer) -> bool:
    """The x-request-id trace status, set by random sampling when it says "not traced"."""
    rid = headers.get("x-request-id") or ""
    if len(rid) == 36 and rid[14] in TRACED_REASONS:
        return True
    with hop.flow.state.lock:
        draw = hop.flow.state.noise.uniform(0.0, 100.0)
    if draw >= me.sampling or len(rid) != 36:
        return False
    headers.set("x-request-id", rid[:14] + "9" + rid[15:])
    return True


def _extract(headers: Headers, kind: str) -> tuple[str, str, bool] | None:
    if kind == "opentelemetry":
        found = _TRACEPARENT.fullmatch((headers.get("traceparent") or "").strip().lower())
        if found is None:
            return None
        return found.group(1), found.group(2), bool(int(found.group(3), 16) & 1)
    trace, span = headers.get("x-b3-traceid"), headers.get("x-b3-spanid")
    if not trace or not span:
        return None
    return trace.lower(), span.lower(), headers.get("x-b3-sampled", "1") in ("1", "true")


def _inject(headers: Headers, span: Active) -> None:
    if span.tracer.kind == "opentelemetry":
        flags = "01" if span.sampled else "00"
        headers.set("traceparent", f"00-{span.trace_id}-{span.span_id}-{flags}")
        return
    headers.set("x-b3-traceid", span.trace_id)
    headers.set("x-b3-spanid", span.span_id)
    if span.parent_id:
        headers.set("x-b3-parentspanid", span.parent_id)
    else:
        headers.remove("x-b3-parentspanid")
    headers.set("x-b3-sampled", "1" if span.sampled else "0")


def operation(hop: Any, decision: Any, request: Any) -> str:
    """The route decorator's operation, as Istio names it (called once the hop is done)."""
    if hop.kind == "inbound":
        for svc in services_selecting(hop.flow.snap, hop.proxy):
            port = service_port_for_target(svc, hop.proxy, hop.local[1])
            if port is not None:
                return f"{service_fqdn(svc)}:{port}/*"
        return "ingress"
    if decision is None or decision.passthrough or not decision.destinations:
        return f"egress {request.authority}"
    path = _route_path(decision.http_route, request.path_only)
    if len(decision.destinations) == 1:
        parts = (hop.record.upstream_cluster or "").split("|")
        if len(parts) == 4 and parts[0] == "outbound":
            return f"{parts[3]}:{parts[1]}{path}"
        dest = decision.destinations[0]
        return f"{dest.host}:{dest.port or decision.match_port or hop.local[1]}{path}"
    name = (decision.virtual_service or {}).get("metadata", {}).get("name", request.host)
    return f"{name}:{decision.match_port or hop.local[1]}{path}"


def service_port_for_target(svc: Obj, pod: Obj, port: int) -> int | None:
    for sp in (svc.get("spec") or {}).get("ports") or []:
        if target_port(sp, pod) == port:
            return int(sp.get("port", port))
    return None


def _route_path(route: Obj | None, path: str) -> str:
    for match in (route or {}).get("match") or []:
        uri = match.get("uri") or {}
        if "exact" in uri and path == str(uri["exact"]):
            return str(uri["exact"])
        if "prefix" in uri and path.startswith(str(uri["prefix"])):
            return f"{uri['prefix']}*"
        if "regex" in uri and re.fullmatch(str(uri["regex"]), path):
            return str(uri["regex"])
    return "/*"


def finish(hop: Any, request: Any, when: float) -> None:
    """Report the hop's span (when it is sampled and its collector is reachable)."""
    active = getattr(hop, "trace", None)
    if active is None or not active.sampled:
        return
    collector = _collector(hop.flow.snap, hop.proxy, active.tracer)
    if collector is None:
        return
    r = hop.record
    # an inbound (Ingress) HCM names its span after the caller's x-envoy-decorator-operation
    override = (getattr(request, "metadata", None) or {}).get("decorator_operation")
    span = Span(active.trace_id, active.span_id, active.parent_id,
                override or operation(hop, getattr(hop, "decision", None), request),
                service_name(hop.proxy), r.start, max(0.0, when - r.start),
                tuple(span_tags(hop, active, request)), collector,
                "otlp" if active.tracer.kind == "opentelemetry" else "zipkin")
    store_of(hop.flow.runtime).add(span)


def _collector(snap: Snapshot, proxy: Obj, me: Tracer) -> str | None:
    svc = service_for_name(snap, me.service, namespace_of(proxy))
    sp = service_port(svc, me.port) if svc is not None else None
    if svc is None or sp is None:
        return None
    for pod in service_pods(snap, svc):
        kinds = {workload_kind(str(c.get("image", "")))
                 for c in (pod.get("spec") or {}).get("containers") or []}
        if "jaeger" in kinds and target_port(sp, pod) in COLLECTOR_PORTS:
            return f"{namespace_of(pod)}/{pod_name(pod)}"
    return None


def service_name(pod: Obj) -> str:
    """The proxy's xDS node cluster: ``<app>.<namespace>``."""
    labels = pod_labels(pod)
    app = (labels.get("app") or labels.get("service.istio.io/canonical-name")
           or labels.get("app.kubernetes.io/name") or pod_name(pod).rsplit("-", 2)[0])
    return f"{app}.{namespace_of(pod)}"


def node_id(pod: Obj, gateway: bool) -> str:
    ns = namespace_of(pod)
    role = "router" if gateway else "sidecar"
    return f"{role}~{pod_ip(pod)}~{pod_name(pod)}.{ns}~{ns}.svc.cluster.local"


def span_tags(hop: Any, active: Active, request: Any) -> list[tuple[str, str]]:
    r = hop.record
    h = request.headers
    path = h.get("x-envoy-original-path") or request.path
    tags = [("component", "proxy"), ("node_id", node_id(hop.proxy, hop.kind == "gateway")),
            ("guid:x-request-id", r.request_id or ""),
            ("http.url", f"{h.get('x-forwarded-proto') or request.scheme}://"
                         f"{request.authority}{path}"),
            ("http.method", request.method), ("downstream_cluster", "-"),
            ("user_agent", r.user_agent or "-"), ("http.protocol", r.protocol or "HTTP/1.1"),
            ("peer.address", r.downstream_remote or ""),
            ("request_size", str(r.bytes_received)), ("response_size", str(r.bytes_sent)),
            ("http.status_code", str(r.status)), ("response_flags", r.flags or "-")]
    if r.upstream_cluster and r.upstream_host:
        tags += [("upstream_cluster", r.upstream_cluster),
                 ("upstream_cluster.name", r.upstream_cluster),
                 ("upstream_address", r.upstream_host)]
    if r.status == 0 or r.status >= 500:
        tags.append(("error", "true"))
    if active.tracer.istio_tags:
        tags += istio_tags(hop)
    tags.append(("span.kind", "client" if active.client else "server"))
    return tags


def istio_tags(hop: Any) -> list[tuple[str, str]]:
    """``buildServiceTags``: canonical service and revision, mesh id, namespace, cluster id."""
    service, revision = canonical(hop.proxy)
    return [("istio.canonical_revision", revision), ("istio.canonical_service", service),
            ("istio.cluster_id", "Kubernetes"),
            ("istio.mesh_id", hop.flow.snap.mesh.trust_domain),
            ("istio.namespace", namespace_of(hop.proxy))]
