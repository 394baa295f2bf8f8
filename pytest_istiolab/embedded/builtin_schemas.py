"""Structural schemas of the built-in kinds, so their unknown fields meet the same rules as a
custom resource's (:mod:`.schema`): ``fieldValidation=Strict`` fails, ``Warn`` prunes with a
warning, server-side apply always fails.

The fields come from the ``kubernetes`` Python client's generated models (``openapi_types`` and
``attribute_map`` of ``V1Pod``, ``V1PodSpec``, ...), which are generated from kube-apiserver's
OpenAPI document: the same field names the server decodes. The client the project installs
may be newer than the Kubernetes the embedded API server reports (``/version``), so a field
added in a later Kubernetes is accepted here where a real 1.33 server would reject it. A kind
without a model (none is known for the group and version) is not checked, and the write says
so in a ``Warning`` header (:func:`unchecked_warning`).
"""

from __future__ import annotations

import functools
import re
from typing import Any

Obj = dict[str, Any]
# the generator's type names: ``list[V1Container]``/``dict(str, str)`` (older clients),
# ``List[V1Container]``/``Dict[str, str]`` (the newer, pydantic-based ones)
_LIST = re.compile(r"^[Ll]ist\[(.+)\]$")
_DICT = re.compile(r"^(?:dict\(str, (.+)\)|Dict\[str, (.+)\])$")
_PRIMITIVES = frozenset({"str", "int", "float", "bool", "date", "datetime", "object",
                         "bytearray", "bytes", "file"})
# kinds whose model name carries its group (two groups define one)
_NAMED = {("", "v1", "Event"): "CoreV1Event", ("events.k8s.io", "v1", "Event"): "EventsV1Event"}


@functools.cache
def schema_for_kind(group: str, version: str, kind: str) -> Obj | None:
    """The structural schema of ``group/version`` ``kind``; None when no model describes it."""
    from kubernetes.client import models

    name = _NAMED.get((group, version, kind), f"{version[:1].upper()}{version[1:]}{kind}")
    model = getattr(models, name, None)
    if model is None or not hasattr(model, "openapi_types"):
        return None
    return _schema(name, {})


def unchecked_warning(kind: str, api_version: str) -> str:
    return (f"the embedded cluster does not check the fields of {kind} ({api_version}): no "
            "schema is modelled for it, unknown fields are stored as sent")


def _schema(type_name: str, memo: dict[str, Obj]) -> Obj:
    listed = _LIST.match(type_name)
    if listed:
        return {"type": "array", "items": _schema(listed.group(1), memo)}
    mapped = _DICT.match(type_name)
    if mapped:
        value = mapped.group(1) or mapped.group(2)
        return {"type": "object", "additionalProperties": _schema(value, memo)}
    if type_name in _PRIMITIVES:
        return {}  # a scalar, or free-form (IntOrString, RawExtension, JSON): not walked
    if type_name in memo:
        return memo[type_name]  # recursive types (JSONSchemaProps) share one schema
    from kubernetes.client import models

    model = getattr(models, type_name, None)
    if model is None:
        return {}
    props: Obj = {}
    out = memo[type_name] = {"type": "object", "properties": props}
    for attr, attr_type in model.openapi_types.items():
        props[model.attribute_map[attr]] = _schema(attr_type, memo)
    return out
