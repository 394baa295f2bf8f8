"""The ingress gateway as the manual reaches it: a NodePort on the gateway pod's node.

Lab 2 computes (and every later lab reuses)::

    INGRESS_HOST = status.hostIP of the first pod labelled istio=ingressgateway (istio-system;
                   the namespace holding the Service istio=ingressgateway, see gateway_namespace)
    INGRESS_PORT = nodePort of the istio-ingressgateway port named http2
    SECURE_INGRESS_PORT = nodePort of the port named https;  TCP_INGRESS_PORT: port named tcp
    GATEWAY_URL = $INGRESS_HOST:$INGRESS_PORT

:class:`Ingress` reads the same fields through the Kubernetes API (no load balancer is assumed)
and sends HTTP requests there with one shared ``httpx.Client`` (keep-alive, no proxies from the
environment, no redirects followed — like curl). A cluster provider that knows a better address
for its nodes (kind: the node container's port mapping) passes ``node_address``.

Where the node address is not reachable from the test host (kind on macOS, private cloud
nodes: neither the http2 nor the status-port NodePort accepts a TCP connection within
``probe_timeout``), the gateway is reached through a port-forward instead: a local relay on
``127.0.0.1`` per Service port, to the gateway pod's targetPort (:mod:`.portforward`).
``via`` says which ("nodeport" or "port-forward"); host, ports and GATEWAY_URL then name the
relay. A refused connection on both ports also counts as unreachable (nothing to talk to).
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx

from pytest_istiolab.errors import ClusterError
from pytest_istiolab.kube import Kube, PortForwardRelay
from pytest_istiolab.kube.containers import running_containers
from pytest_istiolab.kube.status import is_pod_ready, is_terminating
from pytest_istiolab.timeouts import Timeouts

log = logging.getLogger(__name__)
NODEPORT, PORT_FORWARD = "nodeport", "port-forward"
PROBE_PORTS = ("http2", "status-port")

Obj = dict[str, Any]
ISTIO_NAMESPACE = "istio-system"
GATEWAY_SELECTOR = "istio=ingressgateway"
GATEWAY_SERVICE = "istio-ingressgateway"
FIX_NO_GATEWAY = "install a profile with an ingress gateway (demo or default)"


def find_gateway_namespace(kube: Kube) -> str | None:
    """The namespace of the Service labelled ``istio=ingressgateway``: ``istio-system`` when it
    has one (``istioctl install``), else the first other (the Helm layout's ``istio-ingress``);
    None when no namespace has one."""
    found = {str(s["metadata"].get("namespace") or "")
             for s in kube.list("v1", "Service", None, GATEWAY_SELECTOR)} - {""}
    if ISTIO_NAMESPACE in found or not found:
        return ISTIO_NAMESPACE if found else None
    return sorted(found)[0]


def gateway_namespace(kube: Kube) -> str:
    """:func:`find_gateway_namespace`, or ``istio-system`` when there is no gateway (the error
    that follows then names it)."""
    return find_gateway_namespace(kube) or ISTIO_NAMESPACE


@dataclass(frozen=True)
class GatewayAddress:
    """Where the gateway's NodePorts are reached: the node address and nodePort by port name."""

    host: str
    ports: dict[str, int]
    target_ports: dict[str, int | str] = field(default_factory=dict)
    namespace: str = ISTIO_NAMESPACE

    def port(self, name: str) -> int:
        if name not in self.ports:
            raise ClusterError(
                f"service {GATEWAY_SERVICE} in {self.namespace} has no nodePort for a port "
                f"named {name!r} (node ports: {self.ports or 'none'})",
                f"{FIX_NO_GATEWAY}; its Service must be of type NodePort or LoadBalancer")
        return self.ports[name]


def find_gateway(kube: Kube, node_address: str | None = None,
                 namespace: str = ISTIO_NAMESPACE) -> GatewayAddress:
    """INGRESS_HOST and the named node ports, read from the cluster."""
    service = kube.get("v1", "Service", GATEWAY_SERVICE, namespace)
    if service is None:
        raise ClusterError(f"no service {GATEWAY_SERVICE} in namespace {namespace}",
                           FIX_NO_GATEWAY)
    spec_ports = (service.get("spec") or {}).get("ports", [])
    ports = {p["name"]: int(p["nodePort"]) for p in spec_ports
             if p.get("name") and p.get("nodePort")}
    targets = {p["name"]: p.get("targetPort", p.get("port")) for p in spec_ports if p.get("name")}
    return GatewayAddress(node_address or _gateway_host_ip(kube, namespace), ports, targets,
                          namespace)


def ready_gateway_pod(kube: Kube, namespace: str = ISTIO_NAMESPACE) -> Obj:
    """The ready ingress gateway pod a port-forward goes to (ClusterError when none)."""
    pods = [p for p in kube.pods(namespace, GATEWAY_SELECTOR)
            if not is_terminating(p) and is_pod_ready(p)]
    if not pods:
        raise ClusterError(f"no ready ingress gateway pod (label {GATEWAY_SELECTOR}) in "
                           f"namespace {namespace} to port-forward to", FIX_NO_GATEWAY)
    return sorted(pods, key=lambda p: str(p["metadata"]["name"]))[0]


def container_port(pod: Obj, target: int | str) -> int:
    """A Service targetPort (a number or a container port name) as a port number."""
    if isinstance(target, int) or str(target).isdigit():
        return int(target)
    for container in running_containers(pod):
        for port in container.get("ports") or []:
            if port.get("name") == target:
                return int(port["containerPort"])
    raise ClusterError(f"gateway pod {pod['metadata']['name']} has no container port named "
                       f"{target!r}", "fix the targetPort of the istio-ingressgateway Service")


def accepts(host: str, port: int, timeout: float) -> bool:
    """Whether ``host:port`` accepts a TCP connection within ``timeout`` seconds."""
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError:
        return False
    return True


def _gateway_host_ip(kube: Kube, namespace: str) -> str:
    pods = [p for p in kube.pods(namespace, GATEWAY_SELECTOR) if not is_terminating(p)]
    if not pods:
        raise ClusterError(f"no ingress gateway pod (label {GATEWAY_SELECTOR}) in namespace "
                           f"{namespace}", FIX_NO_GATEWAY)
    pods.sort(key=lambda p: (not is_pod_ready(p), p["metadata"]["name"]))
    status = pods[0].get("status") or {}
    if not status.get("hostIP"):
        raise ClusterError(f"ingress gateway pod {pods[0]['metadata']['name']} has no hostIP "
                           f"yet (phase {status.get('phase', 'Unknown')})",
                           "wait until the gateway pod is scheduled and running")
    return str(status["hostIP"])


class Ingress:
    """HTTP to the ingress gateway's NodePorts (``http://$GATEWAY_URL/...``)."""

    def __init__(self, kube: Kube, *, node_address: str | None = None,
                 timeouts: Timeouts | None = None, namespace: str | None = None,
                 probe_timeout: float = 2.0) -> None:
        # namespace None: the one holding the gateway's Service, read again on refresh()
        self.kube, self.node_address, self._pinned = kube, node_address, namespace
        self._namespace = namespace
        self.timeouts = timeouts or kube.timeouts
        self.probe_timeout = probe_timeout
        self._address: GatewayAddress | None = None
        self._client: httpx.Client | None = None
        self._retired: list[httpx.Client] = []
        self._via: str | None = None
        self._relays: dict[str, PortForwardRelay] = {}
        self._relay_api: Any = None

    # ------------------------------------------------------------------ addresses
    @property
    def namespace(self) -> str:
        """The gateway's namespace (given, or found: see :func:`gateway_namespace`)."""
        if self._namespace is None:
            self._namespace = gateway_namespace(self.kube)
        return self._namespace

    @property
    def address(self) -> GatewayAddress:
        if self._address is None:
            self._address = find_gateway(self.kube, self.node_address, self.namespace)
        return self._address

    def refresh(self) -> None:
        """Read host and ports again (after a reinstall rolled or recreated the gateway).

        Later requests use a new shared client, not the keep-alive connections of the old one
        (a gateway pod of the old rollout may hold them); the old client is closed with this
        object, as a request on another thread (a load loop) may still be using it. Relays
        stay: each connection picks a ready gateway pod when it starts."""
        self._address = None
        self._namespace = self._pinned
        if self._client is not None:
            self._retired.append(self._client)
            self._client = None

    @property
    def via(self) -> str:
        """How the gateway is reached: "nodeport" (node address) or "port-forward" (API): a
        port-forward when the node refuses the NodePorts, or when the Service has none (a
        ClusterIP gateway, as Helm's gateway chart can install it: ``service.type``)."""
        if self._via is None:
            address = self.address
            probes = [address.ports[n] for n in PROBE_PORTS if n in address.ports]
            if not address.ports and address.target_ports:
                self._via = PORT_FORWARD
                log.warning("ingress: service %s has no NodePorts (type ClusterIP); using a "
                            "port-forward to the gateway pod through the Kubernetes API",
                            GATEWAY_SERVICE)
            elif not probes or any(accepts(address.host, p, self.probe_timeout) for p in probes):
                self._via = NODEPORT
            else:
                self._via = PORT_FORWARD
                log.warning("ingress: node address %s does not accept connections on the "
                            "gateway NodePorts %s; falling back to a port-forward to the "
                            "gateway pod through the Kubernetes API", address.host, probes)
        return self._via

    @property
    def host(self) -> str:
        """INGRESS_HOST (127.0.0.1 through a port-forward)."""
        return "127.0.0.1" if self.via == PORT_FORWARD else self.address.host

    def named_port(self, name: str) -> int:
        """The nodePort of the Service port ``name``, or the local port relaying to it."""
        if self.via == NODEPORT:
            return self.address.port(name)
        relay = self._relays.get(name)
        if relay is None:
            relay = self._relays[name] = self._new_relay(name)
        return relay.port

    def _new_relay(self, name: str) -> PortForwardRelay:
        target = self.address.target_ports.get(name)
        if target is None:
            raise ClusterError(f"service {GATEWAY_SERVICE} in {self.namespace} has no port "
                               f"named {name!r} to port-forward to", FIX_NO_GATEWAY)
        if self._relay_api is None:
            self._relay_api = self.kube.new_api_client()

        def pick() -> tuple[str, int]:
            pod = ready_gateway_pod(self.kube, self.namespace)
            return str(pod["metadata"]["name"]), container_port(pod, target)

        return PortForwardRelay(self._relay_api, self.namespace, pick,
                                name=f"ingress port-forward ({name})")

    @property
    def port(self) -> int:
        """INGRESS_PORT: the nodePort of the port named http2."""
        return self.named_port("http2")

    @property
    def secure_port(self) -> int:
        """SECURE_INGRESS_PORT: the nodePort of the port named https."""
        return self.named_port("https")

    @property
    def tcp_port(self) -> int:
        """TCP_INGRESS_PORT: the nodePort of the port named tcp."""
        return self.named_port("tcp")

    @property
    def gateway_url(self) -> str:
        """GATEWAY_URL, ``host:port`` as the manual prints it."""
        return f"{_bracket(self.host)}:{self.port}"

    def url(self, path: str = "/", *, secure: bool = False) -> str:
        """``http://$GATEWAY_URL/path`` (``https://$INGRESS_HOST:$SECURE_INGRESS_PORT/path``)."""
        path = path if path.startswith("/") else "/" + path
        if secure:
            return f"https://{_bracket(self.host)}:{self.secure_port}{path}"
        return f"http://{self.gateway_url}{path}"

    def curl_resolve(self, hostname: str, *, secure: bool = True) -> str:
        """``--resolve`` value sending ``hostname`` to the gateway (Lab 6's curl commands)."""
        port = self.secure_port if secure else self.port
        return f"{hostname}:{port}:{self.host}"

    # ------------------------------------------------------------------ requests
    @property
    def client(self) -> httpx.Client:
        """The shared keep-alive client (created on first use)."""
        if self._client is None:
            self._client = self._new_client()
        return self._client

    def _new_client(self, **kwargs: Any) -> httpx.Client:
        timeout = httpx.Timeout(self.timeouts.http, connect=self.timeouts.api_request)
        return httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False, **kwargs)

    def request(self, method: str, path: str, *, host: str | None = None,
                headers: dict[str, str] | None = None, cookies: dict[str, str] | None = None,
                **kwargs: Any) -> httpx.Response:
        """One request to the gateway; ``host`` sets the Host header (``curl -HHost:...``)."""
        all_headers = dict(headers or {})
        if host:
            all_headers["Host"] = host
        if cookies:
            all_headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
        url = path if path.startswith(("http://", "https://")) else self.url(path)
        response = self.client.request(method, url, headers=all_headers, **kwargs)
        self._record(method, url, host, response)
        return response

    def get(self, path: str = "/", **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def head(self, path: str = "/", **kwargs: Any) -> httpx.Response:
        """``curl -I``."""
        return self.request("HEAD", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, **kwargs)

    @contextmanager
    def session(self, *, host: str | None = None) -> Iterator[httpx.Client]:
        """A separate client with its own cookie jar (a browser session: log in, then browse).

        Relative paths resolve against ``http://$GATEWAY_URL``.
        """
        headers = {"Host": host} if host else {}
        client = self._new_client(base_url=self.url(""), headers=headers)
        try:
            yield client
        finally:
            client.close()

    def close(self) -> None:
        if self._client is not None:
            self._retired.append(self._client)
            self._client = None
        retired, self._retired = self._retired, []
        for client in retired:
            client.close()
        relays, self._relays = list(self._relays.values()), {}
        for relay in relays:
            relay.close()
        if self._relay_api is not None:
            self._relay_api.close()
            self._relay_api = None

    def _record(self, method: str, url: str, host: str | None, response: httpx.Response) -> None:
        hook = self.kube.on_command
        if hook is not None:
            via = f" (Host: {host})" if host else ""
            hook(f"{method} {url}{via}",
                 f"{response.status_code} {response.reason_phrase}, "
                 f"{len(response.content)} bytes")


def _bracket(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host
