"""The embedded cluster's controllers: what kube-controller-manager, the scheduler and the
kubelet of one node do for the objects the labs create.

``bootstrap(runtime)`` creates what a fresh cluster has and registers the admission
plugins (pod/service defaulting, sidecar injection); ``Controllers(runtime).start()``
reconciles Namespaces, Deployments, ReplicaSets, StatefulSets, Pods, Services, Endpoints
and EndpointSlices on a worker thread until ``.stop()``.

Scope and limitations: one node at 127.0.0.1; containers "run" only for images listed in
:mod:`..images`; no probes, restarts, resource limits, volumes, Jobs, DaemonSets, HPAs or
graceful termination. Everything else a lab does not use is left alone.
"""

from __future__ import annotations

from .bootstrap import bootstrap
from .manager import Controllers

__all__ = ["Controllers", "bootstrap"]
