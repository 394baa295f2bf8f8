"""JSON responses and Kubernetes ``Status`` errors for the embedded API server.

Every failure a client sees is a ``Status`` object with the code and reason kube-apiserver
uses for the same situation; handlers raise :class:`StoreError` and the error middleware
turns it into the response.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from ..resources import ResourceType
from ..store import StoreError

Obj = dict[str, Any]
JSON = "application/json"


def json_response(body: Any, status: int = 200, content_type: str = JSON) -> web.Response:
    """A compact JSON body, as kube-apiserver writes it."""
    data = json.dumps(body, separators=(",", ":")).encode()
    return web.Response(body=data, status=status, headers={"Content-Type": content_type})


def status_response(err: StoreError) -> web.Response:
    return json_response(err.status(), status=err.code)


def success_status(rt: ResourceType, obj: Obj) -> Obj:
    """What a DELETE of an object that is gone at once returns for most types."""
    meta = obj.get("metadata") or {}
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
            "details": {"name": meta.get("name", ""), "group": rt.group, "kind": rt.plural,
                        "uid": meta.get("uid", "")}}


def bad_request(message: str) -> StoreError:
    return StoreError(400, "BadRequest", message)


def not_found_path(message: str = "the server could not find the requested resource") -> StoreError:
    return StoreError(404, "NotFound", message, {})


def method_not_allowed(method: str, what: str) -> StoreError:
    return StoreError(405, "MethodNotAllowed",
                      f"the server does not allow this method on the requested resource "
                      f"({method} {what})", {})


def unsupported_media(content_type: str, what: str = "") -> StoreError:
    msg = f"the body of the request was in an unknown format - accepted media types include: " \
          f"application/json-patch+json, application/merge-patch+json, " \
          f"application/apply-patch+yaml, application/strategic-merge-patch+json ({content_type})"
    return StoreError(415, "UnsupportedMediaType", what or msg, {})


def invalid(rt: ResourceType, name: str, field: str, message: str,
            reason: str = "FieldValueInvalid") -> StoreError:
    """422 Invalid with one cause, the shape ``kubectl`` prints as ``* field: message``."""
    return StoreError(422, "Invalid", f'{rt.kind} "{name}" is invalid: {field}: {message}',
                      {"name": name, "group": rt.group, "kind": rt.kind,
                       "causes": [{"reason": reason, "message": message, "field": field}]})


def conflict(rt: ResourceType, name: str) -> StoreError:
    what = f"{rt.plural}.{rt.group}" if rt.group else rt.plural
    return StoreError(409, "Conflict",
                      f'Operation cannot be fulfilled on {what} "{name}": the object has been '
                      "modified; please apply your changes to the latest version and try again",
                      {"name": name, "group": rt.group, "kind": rt.plural})


def not_modelled(what: str) -> StoreError:
    """The honest answer for something the embedded cluster does not simulate."""
    return StoreError(501, "NotImplemented",
                      f"{what} is not modelled by the pytest-istiolab embedded cluster", {})


def internal_error(exc: BaseException) -> StoreError:
    return StoreError(500, "InternalError",
                      f"Internal error occurred: {type(exc).__name__}: {exc}", {})
