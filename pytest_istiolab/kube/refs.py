"""Object references and API error messages, shared by the Kubernetes layer."""

from __future__ import annotations

import json
from dataclasses import dataclass

from kubernetes.client.rest import ApiException


@dataclass(frozen=True)
class ObjectRef:
    """Which object: ``str()`` reads like kubectl, e.g. ``deployment.apps/x -n ns``."""

    api_version: str
    kind: str
    name: str
    namespace: str | None = None

    def __str__(self) -> str:
        group = self.api_version.rpartition("/")[0]
        kind = f"{self.kind.lower()}.{group}" if group else self.kind.lower()
        return f"{kind}/{self.name}" + (f" -n {self.namespace}" if self.namespace else "")


RefList = list[ObjectRef]


def status_message(err: ApiException) -> str:
    """The ``message`` of the Status an API error carries (else its HTTP reason)."""
    try:
        body = json.loads(err.body or "")
    except (TypeError, ValueError):
        body = None
    if isinstance(body, dict) and body.get("message"):
        return str(body["message"])
    return f"{err.status} {err.reason}".strip()
