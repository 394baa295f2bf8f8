"""The addon Services on the manual's fixed NodePorts (Lab 9.2), and a URL to reach each.

The manual patches ``prometheus``, ``grafana``, ``tracing`` and ``kiali`` in istio-system to
``type: NodePort`` with nodePorts 31120–31123 on their first port. :meth:`AddonPorts.expose`
does that with one merge patch per Service after recording the Service's ``type`` and
``ports``; :meth:`AddonPorts.restore` writes them back (only for the Services it changed).
A nodePort already allocated to another Service (a shared cluster) raises :class:`PortTaken`,
which the lab turns into a skip naming the port.

:meth:`AddonPorts.url` is a local port-forward to a ready pod of the addon (the way
``istioctl dashboard`` reaches it), which the API checks use: it reaches this cluster's addon
whatever the network between the test host and the nodes. :meth:`AddonPorts.node_url` is the
manual's ``http://node1:31120/``, for the check that the NodePort serves.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from pytest_istiolab.errors import ClusterError
from pytest_istiolab.kube import Kube
from pytest_istiolab.kube.portforward import PortForwardRelay
from pytest_istiolab.traffic.ingress import accepts

Obj = dict[str, Any]
ISTIO_NAMESPACE = "istio-system"
# Service -> (manual nodePort, pod label selector as istioctl dashboard uses it)
MANUAL_NODE_PORTS: dict[str, tuple[int, str]] = {
    "prometheus": (31120, "app.kubernetes.io/name=prometheus"),
    "grafana": (31121, "app.kubernetes.io/name=grafana"),
    "tracing": (31122, "app=jaeger"),
    "kiali": (31123, "app=kiali"),
}


class PortTaken(ClusterError):
    """The manual's nodePort is allocated to something else on this cluster."""


@dataclass
class AddonPorts:
    kube: Kube
    node_host: str
    namespace: str = ISTIO_NAMESPACE
    probe_timeout: float = 2.0
    saved: dict[str, Obj] = field(default_factory=dict)
    _relays: dict[str, PortForwardRelay] = field(default_factory=dict)

    def expose(self, service: str) -> Obj:
        """``kubectl patch svc SERVICE -p '{"spec":{"type":"NodePort"}}'`` + the nodePort."""
        node_port = MANUAL_NODE_PORTS[service][0]
        svc = self.kube.get("v1", "Service", service, self.namespace)
        if svc is None:
            raise ClusterError(f"no Service {service} in {self.namespace}",
                               "apply samples/addons (the addons fixture does)")
        spec = svc["spec"]
        if spec.get("type") == "NodePort" and spec["ports"][0].get("nodePort") == node_port:
            return svc
        self.saved.setdefault(service, {"type": spec.get("type", "ClusterIP"),
                                        "ports": copy.deepcopy(spec["ports"])})
        ports = copy.deepcopy(spec["ports"])
        ports[0]["nodePort"] = node_port
        try:
            return self.kube.merge_patch("v1", "Service", service, self.namespace,
                                         {"spec": {"type": "NodePort", "ports": ports}})
        except ClusterError as err:
            self.saved.pop(service, None)
            if "already allocated" in str(err):
                raise PortTaken(f"nodePort {node_port} for Service {service} is already "
                                f"allocated on this cluster", "free the port, or run Lab 9.2 "
                                "on a cluster of its own") from err
            raise

    def restore(self) -> None:
        for service, saved in list(self.saved.items()):
            ports = [{k: v for k, v in p.items() if k != "nodePort"} for p in saved["ports"]] \
                if saved["type"] == "ClusterIP" else saved["ports"]
            self.kube.merge_patch("v1", "Service", service, self.namespace,
                                  {"spec": {"type": saved["type"], "ports": ports}})
            del self.saved[service]

    def close(self) -> None:
        """Put the Services back (:meth:`restore`) and close the port-forwards."""
        self.restore()
        for relay in self._relays.values():
            relay.close()
        self._relays.clear()

    def node_url(self, service: str) -> str | None:
        """``http://node:nodePort`` when the test host accepts a connection there, else None.

        Something else may answer there (on a shared host, another cluster's listener): the
        caller compares what it reaches with :meth:`url`'s answer before trusting it."""
        svc = self.kube.get("v1", "Service", service, self.namespace) or {}
        port = ((svc.get("spec") or {}).get("ports") or [{}])[0]
        if not port.get("nodePort"):
            return None
        if not accepts(self.node_host, int(port["nodePort"]), self.probe_timeout):
            return None
        host = f"[{self.node_host}]" if ":" in self.node_host else self.node_host
        return f"http://{host}:{port['nodePort']}"

    def url(self, service: str) -> str:
        """A local port-forward to a ready pod of the addon (``istioctl dashboard``'s way)."""
        _node_port, selector = MANUAL_NODE_PORTS[service]
        relay = self._relays.get(service)
        if relay is None:
            svc = self.kube.get("v1", "Service", service, self.namespace) or {}
            port = ((svc.get("spec") or {}).get("ports") or [{}])[0]
            target = int(port.get("targetPort") or port.get("port") or 0)
            api = self.kube.new_api_client()

            def pick() -> tuple[str, int]:
                return self.kube.first_pod(self.namespace, selector), target

            relay = self._relays[service] = PortForwardRelay(
                api, self.namespace, pick, name=f"{service} port-forward")
        return f"http://{relay.address}"
