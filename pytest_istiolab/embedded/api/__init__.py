"""The embedded cluster's Kubernetes API server (see :mod:`.server`).

Scope: REST for every type the store knows (core, apps, CRDs and all their served
versions), legacy discovery, a skeleton OpenAPI v3 (so ``kubectl apply`` validates
server-side), Tables for ``kubectl get``, watch (replay, 410, bookmarks, WatchList),
merge/JSON/strategic patches, a simplified server-side apply, ``pods/log`` (with follow)
and ``pods/exec`` over websockets (v5/v4 channel protocols), following
``reference/kubernetes-wire.md``.

Writes are checked for unknown fields (``fieldValidation`` Strict/Warn/Ignore; server-side
apply always strict; see :mod:`.writes`): custom resources against their CRD's schema,
built-in kinds against the kubernetes client's models (:mod:`..builtin_schemas`).

Not modelled: authentication and RBAC (any token is accepted), the value validation of
built-in kinds (a field's type, required fields, enums), aggregated discovery (kubectl
falls back to the legacy documents), protobuf and CBOR, SPDY (``kubectl port-forward``,
``kubectl exec`` older than 1.30), ``pods/attach`` and ``pods/portforward``, managedFields
and apply conflicts, ``propagationPolicy=Orphan``.
"""

from __future__ import annotations

from .server import ApiServer

__all__ = ["ApiServer"]
