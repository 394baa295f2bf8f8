"""Reading the protobuf request bodies that ``kubectl create <kind>`` sends.

kubectl's typed commands (``create namespace``, ``create secret generic|tls``, ``create
configmap``, ``create serviceaccount``, ``create service ...``, ``create deployment``) POST
``application/vnd.kubernetes.protobuf``: the bytes ``k8s\\0`` and a ``runtime.Unknown``
(typeMeta, raw object). This module turns those into the JSON objects the rest of the server
handles, for exactly the messages those commands produce (field numbers from the
``generated.proto`` files of k8s.io/api and apimachinery).

As in Go's JSON encoding, empty and zero scalars are dropped (gogo-protobuf writes every
non-pointer field); ``DeploymentSpec.replicas`` is a pointer and keeps a zero. A body of
another kind, or with a field not listed here, is refused with a message that names it.
Responses are always JSON (kubectl accepts it).
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

MAGIC = b"k8s\x00"
Field = tuple[str, str, Any]  # (json name, kind, sub-schema name)


class ProtobufError(ValueError):
    """A protobuf body this server cannot read."""


_S, _I, _B, _M = "string", "int", "bool", "msg"
SCHEMAS: dict[str, dict[int, Field]] = {
    "Unknown": {1: ("typeMeta", _M, "TypeMeta"), 2: ("raw", "bytes", None),
                3: ("contentEncoding", _S, None), 4: ("contentType", _S, None)},
    "TypeMeta": {1: ("apiVersion", _S, None), 2: ("kind", _S, None)},
    "ObjectMeta": {1: ("name", _S, None), 2: ("generateName", _S, None),
                   3: ("namespace", _S, None), 4: ("selfLink", _S, None), 5: ("uid", _S, None),
                   6: ("resourceVersion", _S, None), 7: ("generation", _I, None),
                   8: ("creationTimestamp", _M, "Time"), 9: ("deletionTimestamp", _M, "Time"),
                   10: ("deletionGracePeriodSeconds", _I, None),
                   11: ("labels", "map", _S), 12: ("annotations", "map", _S),
                   13: ("ownerReferences", "list", "OwnerReference"),
                   14: ("finalizers", "list", _S)},
    "Time": {1: ("seconds", _I, None), 2: ("nanos", _I, None)},
    "OwnerReference": {1: ("kind", _S, None), 3: ("name", _S, None), 4: ("uid", _S, None),
                       5: ("apiVersion", _S, None), 6: ("controller", _B, None),
                       7: ("blockOwnerDeletion", _B, None)},
    "Namespace": {1: ("metadata", _M, "ObjectMeta"), 2: ("spec", _M, "NamespaceSpec"),
                  3: ("status", _M, "NamespaceStatus")},
    "NamespaceSpec": {1: ("finalizers", "list", _S)},
    "ConfigMap": {1: ("metadata", _M, "ObjectMeta"), 2: ("data", "map", _S),
                  3: ("binaryData", "map", "bytes"), 4: ("immutable", _B, None)},
    "Secret": {1: ("metadata", _M, "ObjectMeta"), 2: ("data", "map", "bytes"),
               3: ("type", _S, None), 4: ("stringData", "map", _S), 5: ("immutable", _B, None)},
    "ServiceAccount": {1: ("metadata", _M, "ObjectMeta"),
                       2: ("secrets", "list", "ObjectReference"),
                       3: ("imagePullSecrets", "list", "LocalObjectReference"),
                       4: ("automountServiceAccountToken", _B, None)},
    "ObjectReference": {1: ("kind", _S, None), 2: ("namespace", _S, None), 3: ("name", _S, None),
                        4: ("uid", _S, None), 5: ("apiVersion", _S, None),
                        6: ("resourceVersion", _S, None), 7: ("fieldPath", _S, None)},
    "LocalObjectReference": {1: ("name", _S, None)},
    "Service": {1: ("metadata", _M, "ObjectMeta"), 2: ("spec", _M, "ServiceSpec"),
                3: ("status", _M, "ServiceStatus")},
    "ServiceSpec": {1: ("ports", "list", "ServicePort"), 2: ("selector", "map", _S),
                    3: ("clusterIP", _S, None), 4: ("type", _S, None),
                    5: ("externalIPs", "list", _S), 7: ("sessionAffinity", _S, None),
                    8: ("loadBalancerIP", _S, None),
                    9: ("loadBalancerSourceRanges", "list", _S),
                    10: ("externalName", _S, None), 11: ("externalTrafficPolicy", _S, None),
                    12: ("healthCheckNodePort", _I, None),
                    13: ("publishNotReadyAddresses", _B, None),
                    17: ("ipFamilyPolicy", _S, None), 18: ("clusterIPs", "list", _S),
                    19: ("ipFamilies", "list", _S),
                    20: ("allocateLoadBalancerNodePorts", _B, None),
                    21: ("loadBalancerClass", _S, None), 22: ("internalTrafficPolicy", _S, None)},
    "ServicePort": {1: ("name", _S, None), 2: ("protocol", _S, None), 3: ("port", _I, None),
                    4: ("targetPort", "intstr", None), 5: ("nodePort", _I, None),
                    6: ("appProtocol", _S, None)},
    "Deployment": {1: ("metadata", _M, "ObjectMeta"), 2: ("spec", _M, "DeploymentSpec"),
                   3: ("status", _M, "DeploymentStatus")},
    "DeploymentSpec": {1: ("replicas", "intptr", None), 2: ("selector", _M, "LabelSelector"),
                       3: ("template", _M, "PodTemplateSpec"),
                       4: ("strategy", _M, "DeploymentStrategy"),
                       5: ("minReadySeconds", _I, None), 6: ("revisionHistoryLimit", _I, None),
                       7: ("paused", _B, None), 9: ("progressDeadlineSeconds", _I, None)},
    "DeploymentStrategy": {1: ("type", _S, None), 2: ("rollingUpdate", _M, "RollingUpdate")},
    "RollingUpdate": {1: ("maxUnavailable", "intstr", None), 2: ("maxSurge", "intstr", None)},
    "LabelSelector": {1: ("matchLabels", "map", _S),
                      2: ("matchExpressions", "list", "LabelSelectorRequirement")},
    "LabelSelectorRequirement": {1: ("key", _S, None), 2: ("operator", _S, None),
                                 3: ("values", "list", _S)},
    "PodTemplateSpec": {1: ("metadata", _M, "ObjectMeta"), 2: ("spec", _M, "PodSpec")},
    "PodSpec": {2: ("containers", "list", "Container"), 3: ("restartPolicy", _S, None),
                4: ("terminationGracePeriodSeconds", _I, None), 6: ("dnsPolicy", _S, None),
                7: ("nodeSelector", "map", _S), 8: ("serviceAccountName", _S, None),
                9: ("serviceAccount", _S, None), 10: ("nodeName", _S, None),
                11: ("hostNetwork", _B, None), 12: ("hostPID", _B, None),
                13: ("hostIPC", _B, None),
                15: ("imagePullSecrets", "list", "LocalObjectReference"),
                16: ("hostname", _S, None), 17: ("subdomain", _S, None),
                19: ("schedulerName", _S, None), 20: ("initContainers", "list", "Container"),
                24: ("priorityClassName", _S, None)},
    "Container": {1: ("name", _S, None), 2: ("image", _S, None), 3: ("command", "list", _S),
                  4: ("args", "list", _S), 5: ("workingDir", _S, None),
                  6: ("ports", "list", "ContainerPort"), 7: ("env", "list", "EnvVar"),
                  8: ("resources", _M, "ResourceRequirements"),
                  13: ("terminationMessagePath", _S, None), 14: ("imagePullPolicy", _S, None),
                  16: ("stdin", _B, None), 17: ("stdinOnce", _B, None), 18: ("tty", _B, None),
                  20: ("terminationMessagePolicy", _S, None)},
    "ContainerPort": {1: ("name", _S, None), 2: ("hostPort", _I, None),
                      3: ("containerPort", _I, None), 4: ("protocol", _S, None),
                      5: ("hostIP", _S, None)},
    "EnvVar": {1: ("name", _S, None), 2: ("value", _S, None)},
    "ResourceRequirements": {1: ("limits", "map", "quantity"), 2: ("requests", "map", "quantity")},
    # kubectl auth can-i / auth can-i --list / auth whoami (authorization, authentication v1)
    "SelfSubjectAccessReview": {1: ("metadata", _M, "ObjectMeta"),
                                2: ("spec", _M, "SelfSubjectAccessReviewSpec"),
                                3: ("status", _M, "SubjectAccessReviewStatus")},
    "SubjectAccessReviewStatus": {1: ("allowed", _B, None), 2: ("reason", _S, None),
                                  3: ("evaluationError", _S, None), 4: ("denied", _B, None)},
    "SelfSubjectAccessReviewSpec": {1: ("resourceAttributes", _M, "ResourceAttributes"),
                                    2: ("nonResourceAttributes", _M, "NonResourceAttributes")},
    "ResourceAttributes": {1: ("namespace", _S, None), 2: ("verb", _S, None),
                           3: ("group", _S, None), 4: ("version", _S, None),
                           5: ("resource", _S, None), 6: ("subresource", _S, None),
                           7: ("name", _S, None)},
    "NonResourceAttributes": {1: ("path", _S, None), 2: ("verb", _S, None)},
    "SelfSubjectRulesReview": {1: ("metadata", _M, "ObjectMeta"),
                               2: ("spec", _M, "SelfSubjectRulesReviewSpec"),
                               3: ("status", _M, "SubjectRulesReviewStatus")},
    "SubjectRulesReviewStatus": {3: ("incomplete", _B, None), 4: ("evaluationError", _S, None)},
    "SelfSubjectRulesReviewSpec": {1: ("namespace", _S, None)},
    "SelfSubjectReview": {1: ("metadata", _M, "ObjectMeta"),
                          2: ("status", _M, "SelfSubjectReviewStatus")},
    "SelfSubjectReviewStatus": {1: ("userInfo", _M, "UserInfo")},
    "UserInfo": {1: ("username", _S, None), 2: ("uid", _S, None), 3: ("groups", "list", _S)},
}
TOP_LEVEL = {("v1", "Namespace"), ("v1", "ConfigMap"), ("v1", "Secret"),
             ("v1", "ServiceAccount"), ("v1", "Service"), ("apps/v1", "Deployment"),
             ("authorization.k8s.io/v1", "SelfSubjectAccessReview"),
             ("authorization.k8s.io/v1", "SelfSubjectRulesReview"),
             ("authentication.k8s.io/v1", "SelfSubjectReview")}


def decode_object(body: bytes) -> dict[str, Any]:
    """The JSON form of a ``k8s\\0``-framed protobuf object."""
    if not body.startswith(MAGIC):
        raise ProtobufError("protobuf body without the k8s\\0 prefix")
    unknown = _message(body[len(MAGIC):], "Unknown")
    meta = unknown.get("typeMeta") or {}
    api_version, kind = meta.get("apiVersion", ""), meta.get("kind", "")
    if (api_version, kind) not in TOP_LEVEL:
        raise ProtobufError(f"protobuf bodies of {api_version} {kind} are not modelled by the "
                            "embedded cluster; send JSON (kubectl apply -f, or -o json)")
    obj = _message(base64.b64decode(unknown.get("raw", "")), kind)
    return {"apiVersion": api_version, "kind": kind, **obj}


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise ProtobufError("truncated protobuf varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return result, pos


def _fields(data: bytes) -> list[tuple[int, int | bytes]]:
    out: list[tuple[int, int | bytes]] = []
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
            out.append((number, value))
        elif wire == 2:
            size, pos = _varint(data, pos)
            out.append((number, data[pos:pos + size]))
            pos += size
        else:
            raise ProtobufError(f"unexpected protobuf wire type {wire}")
    return out


def _message(data: bytes, name: str) -> dict[str, Any]:
    if name.endswith("Status"):
        return {}  # a client cannot set status on create
    schema = SCHEMAS[name]
    out: dict[str, Any] = {}
    for number, raw in _fields(data):
        if number not in schema:
            raise ProtobufError(f"protobuf field {number} of {name} is not modelled by the "
                                "embedded cluster; send JSON instead")
        key, kind, sub = schema[number]
        value = _value(kind, sub, raw)
        if kind == "list":
            out.setdefault(key, []).append(value)
        elif kind == "map":
            out.setdefault(key, {}).update([value])
        elif kind == "intptr" or not _empty(value):
            out[key] = value
    return out


def _value(kind: str, sub: Any, raw: int | bytes) -> Any:
    if isinstance(raw, int):
        return bool(raw) if kind == _B else _signed(raw)
    if kind == "list":
        return raw.decode() if sub == _S else _message(raw, sub)
    if kind == "map":
        entry = dict(_fields(raw))
        return _bytes(entry, 1).decode(), _map_value(sub, _bytes(entry, 2))
    if kind == _M:
        return _time(raw) if sub == "Time" else _message(raw, sub)
    if kind == "intstr":  # IntOrString: type (0 int, 1 string), intVal, strVal
        parts = dict(_fields(raw))
        if _int(parts, 1) == 1:
            return _bytes(parts, 3).decode()
        return _signed(_int(parts, 2))
    if kind == "bytes":
        return base64.b64encode(raw).decode()
    return raw.decode()


def _map_value(kind: str, raw: bytes) -> str:
    if kind == "bytes":
        return base64.b64encode(raw).decode()
    if kind == "quantity":
        return _bytes(dict(_fields(raw)), 1).decode()
    return raw.decode()


def _time(raw: bytes) -> str | None:
    seconds = _int(dict(_fields(raw)), 1)
    if not seconds:
        return None
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _int(parts: dict[int, int | bytes], number: int) -> int:
    value = parts.get(number, 0)
    return value if isinstance(value, int) else 0


def _bytes(parts: dict[int, int | bytes], number: int) -> bytes:
    value = parts.get(number, b"")
    return value if isinstance(value, bytes) else b""


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _empty(value: Any) -> bool:
    return value is None or value == "" or value is False or value == 0 or value == {} \
        or value == []
