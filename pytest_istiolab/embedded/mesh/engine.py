"""Entry points of the mesh model: a request from a pod, and a request arriving at a pod.

``request_from_pod`` is what an application (or ``curl`` exec'd in a container) does:
resolve the name with the pod's DNS, connect, and let the pod's sidecar (if any) take the
connection. ``ingress`` is a connection arriving from outside the cluster at a pod port
(the NodePort listeners use it for gateway pods). Both return a :class:`Response` whose
``start``/``duration`` are virtual; a top-level call moves the virtual clock past its end.
"""

from __future__ import annotations

import dataclasses
from typing import Any
from urllib.parse import urlsplit

from ..runtime import Runtime
from . import network, proxy
from .config import proxy_view
from .flow import Flow, Hops, Peer, PodEntry, failed
from .headers import Headers
from .hosts import dns_lookup
from .model import Request, Response
from .topology import has_sidecar, pod_ip

Obj = dict[str, Any]
DEFAULT_PORTS = {"http": 80, "https": 443}


def request_from_pod(runtime: Runtime, pod: Obj, method: str, url: str,
                     headers: Headers | None = None, body: bytes = b"", *,
                     start: float | None = None, timeout: float | None = None,
                     connect_to: str | None = None, container: str | None = None,
                     nested: bool = False) -> Response:
    """Send ``method url`` from ``pod`` (through its sidecar unless sent by ``istio-proxy``).

    ``connect_to`` replaces DNS (curl ``--resolve``); ``timeout`` is the client's total
    budget in seconds: past it the result is a ``timeout`` failure and every hop still busy
    logs ``DC``. ``nested`` calls (made by applications) do not move the clock.
    """
    bypass = container == "istio-proxy"
    flow = Flow.of(runtime, HOPS, None if bypass or not has_sidecar(pod) else pod)
    t = start if start is not None else runtime.clock.now()
    parts = urlsplit(url)
    scheme = parts.scheme or "http"
    host = (parts.hostname or "").lower()
    port = parts.port or DEFAULT_PORTS.get(scheme, 80)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    headers = headers.copy() if headers is not None else Headers()
    authority = headers.get("host") or parts.netloc.rpartition("@")[2]
    headers.remove("host")
    ip = connect_to or _first(dns_lookup(flow.snap, host, _namespace(pod)))
    if ip is None:
        response = failed("resolve", t, 0.002, f"Could not resolve host: {host}")
    else:
        request = Request(method, path, authority, headers, body, scheme)
        deadline = t + timeout if timeout else None
        response = deliver(flow, pod, request, ip, port, t, deadline, bypass_sidecar=bypass)
    if not nested:
        runtime.clock.advance_to(response.end)
    return response


def deliver(flow: Flow, pod: Obj | None, request: Request, ip: str, port: int, start: float,
            deadline: float | None, *, bypass_sidecar: bool = False) -> Response:
    """Open a connection from ``pod`` to ``ip:port`` and send ``request`` on it."""
    if pod is not None and has_sidecar(pod) and not bypass_sidecar:
        response = proxy.outbound(flow, pod, ip, port, request, start, deadline)
    else:
        client = Peer(pod_ip(pod) if pod else flow.runtime.node_ip, flow.state.ephemeral_port(),
                      pod)
        response = network.connect(flow, ip, port, request, client, start, deadline)
    if response.failure is None and deadline is not None and response.end > deadline:
        response = failed("timeout", start, deadline - start)
    response.remote_ip, response.remote_port = ip, port
    return response


def ingress(runtime: Runtime, pod: Obj, port: int, request: Request,
            client: tuple[str, int] = ("127.0.0.1", 40000), start: float | None = None) -> Response:
    """A request from outside the cluster arriving at ``pod``'s ``port`` (NodePort traffic)."""
    flow = Flow.of(runtime, HOPS, pod)
    t = start if start is not None else runtime.clock.now()
    response = network.to_pod(flow, pod, port, request, Peer(client[0], client[1]), t, None)
    runtime.clock.advance_to(response.end)
    return response


def _app_send(runtime: Runtime, pod: Obj, method: str, url: str, headers: Headers,
              body: bytes, start: float, timeout: float | None) -> Response:
    """An application's own request: from its pod, without moving the clock."""
    return request_from_pod(runtime, pod, method, url, headers, body, start=start,
                            timeout=timeout, nested=True)


def _own_config(entry: PodEntry) -> PodEntry:
    """Under the realism profile each Envoy acts by the config it has (not its client's)."""
    def hop(flow: Flow, pod: Obj, port: int, request: Request, client: Peer, start: float,
            deadline: float | None) -> Response:
        if flow.runtime.realism is not None:
            flow = dataclasses.replace(flow, snap=proxy_view(flow.runtime, pod))
        return entry(flow, pod, port, request, client, start, deadline)
    return hop


HOPS = Hops(gateway=_own_config(proxy.gateway), inbound=_own_config(proxy.inbound),
            app_send=_app_send)


def _first(addresses: list[str] | None) -> str | None:
    return addresses[0] if addresses else None


def _namespace(pod: Obj | None) -> str:
    return str(((pod or {}).get("metadata") or {}).get("namespace") or "default")
