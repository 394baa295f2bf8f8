"""VirtualService ``HTTPMatchRequest`` semantics, evaluated against one request.

Modelled: ``uri``, ``scheme``, ``method``, ``authority`` (StringMatch exact/prefix/regex; regex
is a full match, as RE2 in Envoy), ``headers`` (names case-insensitive; an empty StringMatch
means "present"), ``withoutHeaders``, ``queryParams`` (exact/regex), ``port``, ``gateways``,
``sourceLabels``, ``sourceNamespace``, ``ignoreUriCase``. Conditions inside one match are ANDed,
the entries of ``match`` are ORed, and a route without ``match`` matches everything.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from .headers import Headers

Obj = dict[str, Any]


@dataclass
class MatchContext:
    path: str  # without the query string
    method: str
    authority: str
    headers: Headers
    query: list[tuple[str, str]] = field(default_factory=list)
    scheme: str = "http"
    port: int | None = None  # mesh: the service port; gateway: the Gateway server port
    gateway: str = "mesh"  # "mesh" or "<namespace>/<gateway name>"
    source_labels: dict[str, str] = field(default_factory=dict)  # the routing proxy's workload
    source_namespace: str = ""


def string_matches(rule: Obj | None, value: str | None, ignore_case: bool = False) -> bool:
    """An Istio StringMatch; ``value`` None means the field is absent."""
    if rule is None:
        return True
    if value is None:
        return False
    if not rule:
        return True  # {} : presence
    if ignore_case:
        value = value.lower()
    if "exact" in rule:
        expected = str(rule["exact"])
        return value == (expected.lower() if ignore_case else expected)
    if "prefix" in rule:
        expected = str(rule["prefix"])
        return value.startswith(expected.lower() if ignore_case else expected)
    if "regex" in rule:
        try:
            return re.fullmatch(str(rule["regex"]), value) is not None
        except re.error:
            return False
    return True


def gateway_names(names: list[str], vs_namespace: str) -> set[str]:
    """VirtualService gateway references as ``mesh`` or ``namespace/name``."""
    out = set()
    for name in names:
        if name == "mesh":
            out.add("mesh")
        elif "/" in name:
            out.add(name)
        elif "." in name:  # name.namespace.svc.cluster.local (old form)
            parts = name.split(".")
            out.add(f"{parts[1]}/{parts[0]}")
        else:
            out.add(f"{vs_namespace}/{name}")
    return out


def vs_gateways(vs: Obj) -> set[str]:
    spec = vs.get("spec") or {}
    names = spec.get("gateways") or ["mesh"]
    return gateway_names([str(n) for n in names], vs["metadata"].get("namespace", "default"))


def match_one(match: Obj, ctx: MatchContext, vs_namespace: str) -> bool:
    ignore_case = bool(match.get("ignoreUriCase"))
    checks = (
        string_matches(match.get("uri"), ctx.path, ignore_case),
        string_matches(match.get("scheme"), ctx.scheme),
        string_matches(match.get("method"), ctx.method),
        string_matches(match.get("authority"), ctx.authority),
        _headers_match(match.get("headers") or {}, ctx.headers),
        _without_headers(match.get("withoutHeaders") or {}, ctx.headers),
        _query_match(match.get("queryParams") or {}, ctx.query),
        match.get("port") is None or int(match["port"]) == ctx.port,
        _gateways_match(match.get("gateways"), ctx.gateway, vs_namespace),
        _labels_match(match.get("sourceLabels"), ctx),
        not match.get("sourceNamespace") or match["sourceNamespace"] == ctx.source_namespace,
    )
    return all(checks)


def route_matches(http_route: Obj, ctx: MatchContext, vs_namespace: str) -> bool:
    matches = http_route.get("match") or []
    return not matches or any(match_one(m or {}, ctx, vs_namespace) for m in matches)


def _headers_match(rules: Obj, headers: Headers) -> bool:
    return all(string_matches(rule or {}, headers.get(name)) for name, rule in rules.items())


def _without_headers(rules: Obj, headers: Headers) -> bool:
    return not any(string_matches(rule or {}, headers.get(name)) for name, rule in rules.items()
                   if headers.get(name) is not None)


def _query_match(rules: Obj, query: list[tuple[str, str]]) -> bool:
    values = dict(query)
    return all(string_matches(rule or {}, values.get(name)) for name, rule in rules.items())


def _gateways_match(names: list[str] | None, gateway: str, vs_namespace: str) -> bool:
    return not names or gateway in gateway_names([str(n) for n in names], vs_namespace)


def _labels_match(labels: dict[str, str] | None, ctx: MatchContext) -> bool:
    if not labels:
        return True
    return all(ctx.source_labels.get(k) == v for k, v in labels.items())
