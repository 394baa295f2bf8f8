"""A reference model of the Istio 1.26 data plane, as pure functions over the store's config.

Scope and limitations
---------------------
Modelled, for plain HTTP/1.1:

* DNS as a pod sees it (Service names by search path, ClusterIPs, a few public hosts);
  kube-proxy's ClusterIP load balancing for clients without a sidecar;
* sidecar outbound routing: per-port route tables, Service/ServiceEntry virtual hosts,
  VirtualServices bound to ``mesh`` (match on uri/headers/query/method/port/gateways/
  sourceLabels, weights, subsets, rewrite, redirect, directResponse, header operations),
  ALLOW_ANY (PassthroughCluster) and REGISTRY_ONLY (``block_all`` 502; BlackHoleCluster
  reset for ports with no HTTP listener);
* clusters and endpoints (DestinationRule subsets and precedence, ServiceEntry DNS hosts),
  the Envoy local replies for NR, NC, UH and connection failures;
* gateways: Gateway selectors, server port to pod port mapping (D-24), host
  intersection, VirtualService merging, 404 NR; Envoy's request headers (x-request-id,
  x-forwarded-for/-proto, x-envoy-internal, x-envoy-attempt-count, XFCC on mTLS inbound,
  peer-metadata headers towards non-mesh upstreams) and
  response headers (server: istio-envoy on inbound and gateway HCMs, envoy on sidecar
  outbound; x-envoy-upstream-service-time; x-envoy-decorator-operation as Envoy's
  Ingress/Egress tracing applies route decorators);
* access logs in Istio's default TEXT and JSON formats when ``accessLogFile`` is set;
* fault injection (``faults``: delay and abort, ``percentage`` and the deprecated
  ``percent``, DI/FI, ``fault filter abort``) before the router; route timeouts and
  retries (``resilience``: 504 ``UT``, Istio's default retry policy, ``retryOn``,
  ``perTryTimeout``, back-off, ``URX``);
* per-sidecar connection pools with Envoy's circuit breakers (``pool``: 503 ``UO``
  overflow) and outlier detection (``outlier``), the cluster stats ``pilot-agent request GET
  stats`` prints (``stats``), and VirtualService mirroring (``mirror``: ``-shadow`` copies);
* PeerAuthentication (``authn``: mesh/namespace/workload scopes, port-level, STRICT resets a
  plaintext client, DISABLE) and the client's mTLS choice (auto mTLS, DestinationRule
  ``tls.mode`` ISTIO_MUTUAL/DISABLE); peer identities from service accounts;
* RequestAuthentication (``jwtauthn``: tokens verified with joserfc, Envoy's 401 bodies and
  ``www-authenticate``) and AuthorizationPolicy (``authz``: ALLOW/DENY/AUDIT, from/to/when,
  403 ``RBAC: access denied``);
* Istio's standard HTTP metrics, both reporters (``telemetry``, read by the Prometheus addon
  model in ``workloads.prometheus``);
* tracing (``tracing``): the tracer from Telemetry / mesh config (none by default since
  1.22), sampling, W3C ``traceparent`` or B3 propagation, the x-request-id trace mark, one
  span per hop with Envoy's and Istio's tags, delivered to the Jaeger addon model;
* virtual time: latency is computed, never slept; a client deadline makes every hop
  still busy log ``0 DC``.

Not yet modelled (see ``proxy`` for where each slots in): AuthorizationPolicy CUSTOM,
TLS (SIMPLE, MUTUAL, origination), TCP routing, Sidecar and EnvoyFilter
resources, TCP/gRPC metrics, tracing providers other than OpenTelemetry and Zipkin.

Public API
----------
``request_from_pod(runtime, pod, method, url, headers, body, *, start, timeout,
connect_to, container, nested) -> Response`` and ``ingress(runtime, pod, port, request,
client, start) -> Response`` (engine); pure routing in ``routing``, ``gateways``,
``clusters``; per-hop pipeline and ``FILTERS`` in ``proxy``.
"""

from __future__ import annotations

from typing import Any

from .headers import Headers
from .model import Failure, Request, Response


def __getattr__(name: str) -> Any:
    # The engine imports the workloads, which import this package's data types: load it
    # on first use so either package can be imported first.
    if name in ("deliver", "ingress", "request_from_pod"):
        from . import engine

        return getattr(engine, name)
    raise AttributeError(name)


__all__ = ["Failure", "Headers", "Request", "Response", "deliver", "ingress",
           "request_from_pod"]
