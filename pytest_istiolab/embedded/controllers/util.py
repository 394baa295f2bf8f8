"""Small helpers shared by the controllers: resource types, owner references, names, time."""

from __future__ import annotations

import json
import random
from typing import Any

from ..resources import ResourceType
from ..store import Store
from ..store import now_rfc3339 as now

Obj = dict[str, Any]

# Kubernetes' rand.SafeEncodeString alphabet (no vowels, no confusable digits).
SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"

POD = ("", "pods")
SERVICE = ("", "services")
ENDPOINTS = ("", "endpoints")
NAMESPACE = ("", "namespaces")
NODE = ("", "nodes")
EVENT = ("", "events")
CONFIGMAP = ("", "configmaps")
SERVICEACCOUNT = ("", "serviceaccounts")
DEPLOYMENT = ("apps", "deployments")
REPLICASET = ("apps", "replicasets")
STATEFULSET = ("apps", "statefulsets")
ENDPOINTSLICE = ("discovery.k8s.io", "endpointslices")
MUTATING_WEBHOOK = ("admissionregistration.k8s.io", "mutatingwebhookconfigurations")


def rtype(store: Store, key: tuple[str, str]) -> ResourceType:
    return store.resource_type(*key)


def fnv32a(data: bytes) -> int:
    h = 0x811C9DC5
    for byte in data:
        h ^= byte
        h = (h * 0x01000193) & 0xFFFFFFFF
    return h


def safe_encode(text: str) -> str:
    return "".join(SAFE_ALPHABET[ord(c) % len(SAFE_ALPHABET)] for c in text)


def template_hash(template: Obj) -> str:
    """The ``pod-template-hash`` of a pod template (same shape as Kubernetes': 9-10 chars)."""
    canonical = json.dumps(template, sort_keys=True, separators=(",", ":")).encode()
    return safe_encode(str(fnv32a(canonical)))


def random_suffix(rng: random.Random, length: int = 5) -> str:
    return "".join(rng.choice(SAFE_ALPHABET) for _ in range(length))


def owner_ref(owner: Obj, controller: bool = True) -> Obj:
    return {"apiVersion": owner["apiVersion"], "kind": owner["kind"],
            "name": owner["metadata"]["name"], "uid": owner["metadata"]["uid"],
            "controller": controller, "blockOwnerDeletion": True}


def controller_of(obj: Obj) -> Obj | None:
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return dict(ref)
    return None


def owned_by(obj: Obj, owner: Obj) -> bool:
    uid = owner["metadata"]["uid"]
    return any(r.get("uid") == uid for r in obj["metadata"].get("ownerReferences") or [])


def labels_of(obj: Obj) -> dict[str, str]:
    return dict((obj.get("metadata") or {}).get("labels") or {})


def selector_matches(selector: Obj | None, labels: dict[str, str]) -> bool:
    """A LabelSelector (matchLabels + matchExpressions) against ``labels``; empty matches all."""
    if not selector:
        return True
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        ok = {"In": labels.get(key) in values, "NotIn": labels.get(key) not in values,
              "Exists": key in labels, "DoesNotExist": key not in labels}.get(op, False)
        if not ok:
            return False
    return True


def condition(ctype: str, status: str, reason: str = "", message: str = "",
              previous: list[Obj] | None = None, probe_time: bool = False) -> Obj:
    """A status condition that keeps its transition time while its status does not change."""
    old = next((c for c in previous or [] if c.get("type") == ctype), None)
    stamp = now()
    same = old is not None and old.get("status") == status
    cond: Obj = {"type": ctype, "status": status}
    if probe_time:
        cond["lastProbeTime"] = None
    cond["lastTransitionTime"] = old.get("lastTransitionTime", stamp) if same and old else stamp
    if reason:
        cond["reason"] = reason
    if message:
        cond["message"] = message
    return cond


def is_pod_ready(pod: Obj) -> bool:
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return bool(cond.get("status") == "True")
    return False


def is_active(pod: Obj) -> bool:
    phase = (pod.get("status") or {}).get("phase")
    return phase not in ("Succeeded", "Failed") and not pod["metadata"].get("deletionTimestamp")
