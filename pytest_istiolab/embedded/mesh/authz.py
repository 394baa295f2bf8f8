"""AuthorizationPolicy: Envoy's RBAC filter as Istio 1.26 builds it, after ``jwt_authn``.

Policies apply as RequestAuthentication does (:func:`.jwtauthn.applies`). Evaluation:
``CUSTOM`` is not modelled (the request is answered 403 and the policy named, never let
through silently), ``AUDIT`` changes nothing, then any matching ``DENY`` denies, then, if any
``ALLOW`` policy applies, a request no ``ALLOW`` rule matches is denied; otherwise allowed.
A policy without ``rules`` matches nothing (so ``ALLOW`` with no rules denies everything); a
rule ``{}`` matches everything.

A rule matches when one of its ``from`` sources, one of its ``to`` operations and every
``when`` condition match. Sources: ``principals`` (the mTLS peer's ``<trust>/ns/<ns>/sa/<sa>``),
``requestPrincipals`` (the JWT's ``iss/sub``), ``namespaces``, ``ipBlocks``/``remoteIpBlocks``
and their ``not`` forms; operations: ``hosts``, ``ports``, ``methods``, ``paths`` and ``not``
forms. Values match exactly, by prefix (``abc*``), by suffix (``*abc``) or as presence (``*``).
Conditions: ``request.auth.claims[a]`` (and nested ``[a][b]``; a list claim matches by
element), ``request.auth.principal``, ``request.auth.audiences``, ``request.auth.presenter``,
``request.headers[h]``, ``source.principal``, ``source.namespace``, ``source.ip``,
``destination.port``, ``destination.ip``.

Denied: 403 ``RBAC: access denied`` (text/plain), details
``rbac_access_denied_matched_policy[ns[<ns>]-policy[<name>]-rule[<i>]]`` for a DENY match and
``rbac_access_denied_matched_policy[none]`` when no ALLOW matched.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from .config import name_of, namespace_of, spec_of
from .flow import HopContext, Next
from .jwtauthn import METADATA_KEY, applies
from .model import LocalReply, Request, Response, RouteDecision
from .topology import spiffe_id

Obj = dict[str, Any]
DENIED_BODY = "RBAC: access denied"
CLAIM = re.compile(r"^request\.auth\.claims((?:\[[^\]]+\])+)$")
HEADER = re.compile(r"^request\.headers\[([^\]]+)\]$")


def rbac_filter(hop: HopContext, decision: RouteDecision, request: Request, start: float,
                deadline: float | None, next: Next) -> Response:
    policies = [p for p in hop.flow.snap.authorization_policies if applies(p, hop.proxy)]
    if not policies:
        return next(request, start)
    attrs = _attributes(hop, request)
    for policy in policies:
        if str(spec_of(policy).get("action") or "ALLOW").upper() == "CUSTOM":
            return _deny(hop, request, start, f"ns[{namespace_of(policy)}]-policy["
                         f"{name_of(policy)}]-custom_action_not_modelled")
    for policy in _with_action(policies, "DENY"):
        index = _matching_rule(policy, attrs)
        if index is not None:
            return _deny(hop, request, start, f"ns[{namespace_of(policy)}]-policy["
                         f"{name_of(policy)}]-rule[{index}]")
    allows = _with_action(policies, "ALLOW")
    if allows and all(_matching_rule(p, attrs) is None for p in allows):
        return _deny(hop, request, start, "none")
    return next(request, start)


def _with_action(policies: list[Obj], action: str) -> list[Obj]:
    return [p for p in policies if str(spec_of(p).get("action") or "ALLOW").upper() == action]


def _deny(hop: HopContext, request: Request, at: float, matched: str) -> Response:
    return hop.local_reply(LocalReply(403, DENIED_BODY, "-",
                                      f"rbac_access_denied_matched_policy[{matched}]"),
                           request, at)


# ------------------------------------------------------------------ attributes
def _attributes(hop: HopContext, request: Request) -> Obj:
    jwt = request.metadata.get(METADATA_KEY) or {}
    peer = hop.downstream
    principal = None
    if peer.mtls and peer.pod is not None:
        principal = spiffe_id(peer.pod, hop.flow.snap.mesh.trust_domain).removeprefix("spiffe://")
    claims = jwt.get("claims") or {}
    aud = claims.get("aud")
    return {
        "source.principal": principal,
        "source.namespace": namespace_of(peer.pod) if principal and peer.pod else None,
        "source.ip": peer.ip,
        "request.auth.principal": jwt.get("principal"),
        "request.auth.audiences": aud if isinstance(aud, list) else [aud] if aud else [],
        "request.auth.presenter": claims.get("azp"),
        "claims": claims,
        "host": request.host,
        "authority": request.authority,
        "method": request.method,
        "path": request.path_only,
        "destination.port": str(hop.local[1]),
        "destination.ip": hop.local[0],
        "headers": request.headers,
    }


# ------------------------------------------------------------------ matching
def _matching_rule(policy: Obj, attrs: Obj) -> int | None:
    for index, rule in enumerate(spec_of(policy).get("rules") or []):
        if _rule_matches(rule or {}, attrs):
            return index
    return None


def _rule_matches(rule: Obj, attrs: Obj) -> bool:
    sources = [s.get("source") or {} for s in rule.get("from") or []]
    operations = [o.get("operation") or {} for o in rule.get("to") or []]
    if sources and not any(_source(s, attrs) for s in sources):
        return False
    if operations and not any(_operation(o, attrs) for o in operations):
        return False
    return all(_condition(c, attrs) for c in rule.get("when") or [])


def value_matches(pattern: str, value: str | None) -> bool:
    if value is None:
        return False
    if pattern == "*":
        return value != ""
    if pattern.endswith("*"):
        return value.startswith(pattern[:-1])
    if pattern.startswith("*"):
        return value.endswith(pattern[1:])
    return value == pattern


def _field(spec: Obj, name: str, value: str | None, match=value_matches) -> bool:  # type: ignore[no-untyped-def]
    positive = [str(v) for v in spec.get(name) or []]
    negative = [str(v) for v in spec.get("not" + name[0].upper() + name[1:]) or []]
    if positive and not any(match(p, value) for p in positive):
        return False
    return not any(match(n, value) for n in negative)


def _in_block(block: str, ip: str | None) -> bool:
    try:
        return ip is not None and ipaddress.ip_address(ip) in ipaddress.ip_network(block,
                                                                                  strict=False)
    except ValueError:
        return False


def _source(source: Obj, attrs: Obj) -> bool:
    return (_field(source, "principals", attrs["source.principal"])
            and _field(source, "requestPrincipals", attrs["request.auth.principal"])
            and _field(source, "namespaces", attrs["source.namespace"])
            and _field(source, "ipBlocks", attrs["source.ip"], _in_block)
            and _field(source, "remoteIpBlocks", attrs["source.ip"], _in_block))


def _operation(operation: Obj, attrs: Obj) -> bool:
    def host(pattern: str, value: str | None) -> bool:
        return value_matches(pattern.lower(), attrs["host"]) or \
            value_matches(pattern.lower(), (value or "").lower())
    return (_field(operation, "hosts", attrs["authority"], host)
            and _field(operation, "ports", attrs["destination.port"])
            and _field(operation, "methods", attrs["method"])
            and _field(operation, "paths", attrs["path"]))


def _condition(condition: Obj, attrs: Obj) -> bool:
    values = _condition_values(str(condition.get("key") or ""), attrs)
    wanted = [str(v) for v in condition.get("values") or []]
    unwanted = [str(v) for v in condition.get("notValues") or []]
    if wanted and not any(value_matches(w, v) for w in wanted for v in values):
        return False
    return not any(value_matches(u, v) for u in unwanted for v in values)


def _condition_values(key: str, attrs: Obj) -> list[str]:
    claim = CLAIM.match(key)
    if claim:
        value: Any = attrs["claims"]
        for part in re.findall(r"\[([^\]]+)\]", claim.group(1)):
            value = value.get(part) if isinstance(value, dict) else None
        if isinstance(value, list):
            return [str(v) for v in value]
        return [] if value is None else [str(value)]
    header = HEADER.match(key)
    if header:
        found = attrs["headers"].get(header.group(1))
        return [] if found is None else [found]
    if key == "request.auth.audiences":
        return [str(a) for a in attrs[key]]
    value = attrs.get(key)
    return [] if value is None else [str(value)]
