"""Observability: the addons' HTTP APIs as the labs read them.

:class:`AddonPorts` exposes addon Services on the manual's fixed NodePorts (recorded and
restored) and gives a base URL for each: the node address and NodePort when the test host
reaches it, else a port-forward to the addon's pod (as ``istioctl dashboard`` does).
:class:`Prometheus` is a client of the Prometheus HTTP API; :class:`Grafana` of Grafana's,
with :class:`Board` rendering a dashboard's panel queries as Grafana does; :class:`Kiali` of
Kiali's, with :class:`Graph` reading its traffic graph as the graph page shows it;
:class:`Jaeger` of Jaeger's query API (:class:`Trace` reads a trace as the UI shows it). Uses
the Kubernetes and traffic layers only. :class:`AddonClient` is what the four clients share.
:func:`drive_load` is the manual's load loop, bounded; :class:`LoadLoop` keeps it going.
"""

from pytest_istiolab.observability.addons import MANUAL_NODE_PORTS, AddonPorts, PortTaken
from pytest_istiolab.observability.grafana import Board, Grafana, GrafanaError
from pytest_istiolab.observability.http import CONNECTION_ERRORS, AddonClient, AddonError
from pytest_istiolab.observability.jaeger import Jaeger, JaegerError, SpanView, Trace
from pytest_istiolab.observability.kiali import Graph, Kiali, KialiError
from pytest_istiolab.observability.load import LoadLoop, LoadResult, drive_load
from pytest_istiolab.observability.prometheus import Prometheus, PrometheusError

__all__ = ["CONNECTION_ERRORS", "MANUAL_NODE_PORTS", "AddonClient", "AddonError", "AddonPorts",
           "Board", "Grafana", "GrafanaError", "Graph", "Jaeger", "JaegerError", "Kiali",
           "KialiError", "LoadLoop", "LoadResult", "PortTaken", "Prometheus", "PrometheusError",
           "SpanView", "Trace", "drive_load"]
