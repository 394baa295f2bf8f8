"""Reading requests: query flags, bodies (JSON or YAML), Accept negotiation."""

from __future__ import annotations

import json
from typing import Any

import yaml
from aiohttp import web

from .protobuf import ProtobufError, decode_object
from .responses import bad_request, unsupported_media

Obj = dict[str, Any]
TABLE_MARK = "as=Table"


def flag(request: web.Request, name: str) -> bool:
    return request.query.get(name, "").lower() in ("true", "1")


def int_param(request: web.Request, name: str) -> int | None:
    raw = request.query.get(name)
    if raw in (None, ""):
        return None
    try:
        return int(raw)
    except ValueError:
        raise bad_request(f"invalid value {raw!r} for {name}: must be an integer") from None


def dry_run(request: web.Request, body: Obj | None = None) -> bool:
    values = request.query.getall("dryRun", [])
    if body and isinstance(body.get("dryRun"), list):
        values = [*values, *body["dryRun"]]
    unknown = [v for v in values if v != "All"]
    if unknown:
        raise bad_request(f"dryRun: Unsupported value: {unknown[0]!r}: supported values: \"All\"")
    return bool(values)


def wants_table(request: web.Request) -> bool:
    return TABLE_MARK in request.headers.get("Accept", "")


async def read_body(request: web.Request, *, yaml_ok: bool = False, allow_list: bool = False
                    ) -> Any:
    """The request body as JSON (or YAML, for apply); 400 when it cannot be read."""
    ctype = request.headers.get("Content-Type", "application/json").split(";")[0].strip()
    raw = await request.read()
    if "protobuf" in ctype:
        try:
            return decode_object(raw)
        except ProtobufError as exc:
            raise unsupported_media(ctype, str(exc)) from None
    if not raw.strip():
        return None
    try:
        if yaml_ok or ctype in ("application/yaml", "application/x-yaml"):
            data = yaml.safe_load(raw)
        else:
            data = json.loads(raw)
    except (ValueError, yaml.YAMLError) as exc:
        raise bad_request(f"error decoding request body: {exc}") from None
    if not isinstance(data, dict) and not (allow_list and isinstance(data, list)):
        raise bad_request("the request body must be an object")
    return data
