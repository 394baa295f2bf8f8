"""Observability: the addons' HTTP APIs as the labs read them (Prometheus first).

:class:`AddonPorts` exposes addon Services on the manual's fixed NodePorts (recorded and
restored) and gives a base URL for each: the node address and NodePort when the test host
reaches it, else a port-forward to the addon's pod (as ``istioctl dashboard`` does).
:class:`Prometheus` is a client of the Prometheus HTTP API. Uses the Kubernetes and traffic
layers only.
:func:`drive_load` is the manual's load loop, bounded.
"""

from pytest_istiolab.observability.addons import MANUAL_NODE_PORTS, AddonPorts, PortTaken
from pytest_istiolab.observability.load import LoadResult, drive_load
from pytest_istiolab.observability.prometheus import Prometheus, PrometheusError

__all__ = ["MANUAL_NODE_PORTS", "AddonPorts", "LoadResult", "PortTaken", "Prometheus",
           "PrometheusError", "drive_load"]
