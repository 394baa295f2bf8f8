"""The embedded cluster's Kubernetes API server (see :mod:`.server`).

Scope: REST for every type the store knows (core, apps, CRDs and their instances),
discovery, tables for ``kubectl get``, watch, patch/apply, pods/log and pods/exec over
websockets, as the wire facts in ``reference/kubernetes-wire.md`` describe. Not modelled:
authentication and RBAC (any token is accepted), OpenAPI documents, aggregated discovery,
protobuf, SPDY (``kubectl port-forward``, old ``kubectl exec``), pods/attach, portforward.
"""

from __future__ import annotations

from .server import ApiServer

__all__ = ["ApiServer"]
