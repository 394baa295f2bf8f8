"""OpenAPI v3 ``components.schemas`` for ``kubectl explain``.

Built-in kinds: the schemas are read back from the ``kubernetes`` Python client's models,
which are generated from Kubernetes' own OpenAPI document: field names, types, nesting,
descriptions and required fields come from there (the client's version is the schemas'
version; a kind's own description only from the pydantic clients, >= 36). Each model becomes
``io.k8s.api.<version>.<Name>`` (so kubectl prints ``<PodSpec>``), references are
``allOf: [{$ref}]`` as kube-apiserver writes them, and the kinds the server serves carry
``x-kubernetes-group-version-kind``. Custom resources: their CRD's ``openAPIV3Schema`` for
that version, with ``apiVersion``, ``kind`` and ``metadata`` added as kube-apiserver adds
them.

A field whose type is another model has no text of its own in the pydantic clients, so kubectl
shows that model's description for it (``strategy``: "DeploymentStrategy describes how to
replace existing pods with new ones.").

Not modelled: formats (``int32``/``int64``), defaults and enums; every untyped field of the
client (``object``) is published as ``IntOrString`` (``targetPort``, ``maxSurge`` …), which
is what nearly all of them are in the core kinds.
"""

from __future__ import annotations

import inspect
import re
from functools import cache
from typing import Any

from ..resources import ResourceType

Schema = dict[str, Any]
PRIMITIVES: dict[str, Schema] = {
    "str": {"type": "string"}, "int": {"type": "integer"}, "float": {"type": "number"},
    "bool": {"type": "boolean"}, "datetime": {"type": "string", "format": "date-time"},
    "date": {"type": "string", "format": "date"},
}
INT_OR_STRING = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
INT_OR_STRING_SCHEMA: Schema = {
    "type": "string", "format": "int-or-string",
    "description": "IntOrString is a type that can hold an int32 or a string.  When used in JSON "
                   "or YAML marshalling and unmarshalling, it produces or consumes the inner "
                   "type.  This allows you to have, for example, a JSON field that can accept a "
                   "name or number."}
CR_FIELDS: Schema = {
    "apiVersion": {"type": "string", "description": "APIVersion defines the versioned schema "
                   "of this representation of an object. Servers should convert recognized "
                   "schemas to the latest internal value, and may reject unrecognized values. "
                   "More info: https://git.k8s.io/community/contributors/devel/sig-architecture"
                   "/api-conventions.md#resources"},
    "kind": {"type": "string", "description": "Kind is a string value representing the REST "
             "resource this object represents. Servers may infer this from the endpoint the "
             "client submits requests to. Cannot be updated. In CamelCase. More info: "
             "https://git.k8s.io/community/contributors/devel/sig-architecture/"
             "api-conventions.md#types-kinds"},
    "metadata": {"allOf": [{"$ref": "#/components/schemas/io.k8s.api.v1.ObjectMeta"}],
                 "description": "Standard object's metadata. More info: https://git.k8s.io/"
                 "community/contributors/devel/sig-architecture/api-conventions.md#metadata"},
}
_VERSIONED = re.compile(r"^(V\d+(?:alpha\d+|beta\d+)?)([A-Z]\w*)$")


def schema_name(model: str) -> str:
    m = _VERSIONED.match(model)
    version, name = (m.group(1).lower(), m.group(2)) if m else ("v1", model)
    return f"io.k8s.api.{version}.{name}"


def _model(name: str) -> Any:
    from kubernetes.client import models

    return getattr(models, name, None)


def _field(type_name: str, out: dict[str, Schema]) -> Schema:
    if type_name in PRIMITIVES:
        return dict(PRIMITIVES[type_name])
    if type_name == "object":
        out.setdefault(INT_OR_STRING, INT_OR_STRING_SCHEMA)
        return {"allOf": [{"$ref": f"#/components/schemas/{INT_OR_STRING}"}]}
    if type_name.lower().startswith("list[") and type_name.endswith("]"):
        return {"type": "array", "items": _field(type_name[5:-1], out)}
    if type_name.lower().startswith(("dict(", "dict[")) and type_name.endswith((")", "]")):
        value = type_name[5:-1].split(",", 1)[1].strip()
        return {"type": "object", "additionalProperties": _field(value, out)}
    add_model(type_name, out)
    return {"allOf": [{"$ref": f"#/components/schemas/{schema_name(type_name)}"}]}


def _description(cls: type, attr: str) -> str:
    """The field's text: the pydantic field's description, else the property docstring's."""
    fields = getattr(cls, "model_fields", None) or {}
    if attr in fields:
        return " ".join((fields[attr].description or "").split())
    doc = getattr(getattr(cls, attr, None), "__doc__", None) or ""
    body = doc.split("\n\n", 1)[1] if "\n\n" in doc else ""
    body = body.split(":return:", 1)[0]
    return " ".join(line.replace("# noqa: E501", "").strip()
                    for line in body.splitlines()).strip()


def _kind_description(cls: type) -> str:
    first = (cls.__doc__ or "").strip().split("\n\n", 1)[0]
    return "" if first.startswith(("NOTE:", "Attributes:")) else " ".join(first.split())


@cache
def _required(cls: type) -> frozenset[str]:
    fields = getattr(cls, "model_fields", None)
    if fields:
        return frozenset(name for name, f in fields.items() if f.is_required())
    try:
        source = inspect.getsource(cls)
    except (OSError, TypeError):
        return frozenset()
    return frozenset(re.findall(r"Invalid value for `(\w+)`, must not be `None`", source))


def add_model(model: str, out: dict[str, Schema]) -> None:
    """Put ``model`` and every model it refers to into ``out`` (keyed by schema name)."""
    key = schema_name(model)
    cls = _model(model)
    if key in out or cls is None:
        return
    schema: Schema = {"type": "object", "properties": {}}
    if text := _kind_description(cls):  # the client keeps no text for ref-typed fields
        schema["description"] = text
    out[key] = schema
    required = _required(cls)
    for attr, type_name in cls.openapi_types.items():
        prop = _field(type_name, out)
        text = _description(cls, attr)
        if text:
            prop["description"] = text
        schema["properties"][cls.attribute_map[attr]] = prop
    names = sorted(cls.attribute_map[a] for a in required if a in cls.attribute_map)
    if names:
        schema["required"] = names


def builtin_schemas(entries: list[tuple[ResourceType, str]]) -> dict[str, Schema]:
    """The models of the built-in kinds in ``entries`` and all that they use."""
    out: dict[str, Schema] = {}
    for rt, version in entries:
        model = f"{version[:1].upper()}{version[1:]}{rt.kind}"
        if rt.schemas or _model(model) is None:
            continue
        add_model(model, out)
        top = out[schema_name(model)]
        top["x-kubernetes-group-version-kind"] = [{"group": rt.group, "kind": rt.kind,
                                                    "version": version}]
    return out


def custom_schemas(entries: list[tuple[ResourceType, str]]) -> dict[str, Schema]:
    """Each custom resource's CRD schema, as kube-apiserver publishes it."""
    out: dict[str, Schema] = {}
    for rt, version in entries:
        crd = rt.schemas.get(version)
        if not crd:
            continue
        schema = dict(crd)
        schema["properties"] = {**CR_FIELDS, **(crd.get("properties") or {})}
        schema["x-kubernetes-group-version-kind"] = [{"group": rt.group, "kind": rt.kind,
                                                      "version": version}]
        out[f"{'.'.join(reversed(rt.group.split('.')))}.{version}.{rt.kind}"] = schema
        add_model("V1ObjectMeta", out)
    return out
