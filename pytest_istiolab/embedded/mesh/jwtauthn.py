"""RequestAuthentication: Envoy's ``jwt_authn`` filter as Istio 1.26 configures it.

Which policies apply (as for AuthorizationPolicy): a policy without selector in the root
namespace applies to every workload, one in a namespace to that namespace's workloads; a
selector picks workloads of its namespace (of every namespace, from the root namespace). All
jwtRules of all applying policies are providers of one ``requires_any`` with
``allow_missing`` (pilot/pkg/security/authn/policy_applier.go): **a request without a token
passes**, a request with a token that no provider verifies is answered 401.

Per rule: ``issuer``, ``audiences`` (a mismatch is 403), ``jwks`` (inline) or ``jwksUri``
(istiod fetches it and inlines the keys, PILOT_JWT_ENABLE_REMOTE_JWKS=false; a failed fetch
inlines a fake key set, so every token fails), ``fromHeaders`` (name, prefix) and
``fromParams`` (default: ``Authorization: Bearer`` and ``access_token``),
``forwardOriginalToken`` (false: the token's header is removed upstream),
``outputPayloadToHeader`` and ``outputClaimToHeaders``. Tokens are verified for real with
joserfc: RS/ES/PS signatures against the key of the header's ``kid``, ``exp``/``nbf`` with
Envoy's 60 s clock skew on the virtual clock.

Envoy's reply (jwt_authn filter.cc, jwt_verify_lib status.cc): the status text as a
``text/plain`` body, ``www-authenticate: Bearer realm="<original URI>", error="invalid_token"``,
response code details ``jwt_authn_access_denied{<text with underscores>}``. The verified
identity (``iss/sub``, the claims) goes on to AuthorizationPolicy in ``request.metadata``.
``fromCookies`` and remote JWKS in Envoy (``hybrid``/``true``) are not modelled.
"""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import urlsplit

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from .config import ROOT_NAMESPACE, Snapshot, namespace_of, spec_of
from .flow import HopContext, Next
from .headers import Headers
from .model import LocalReply, Request, Response, RouteDecision
from .state import extension
from .topology import pod_labels, selects

Obj = dict[str, Any]
CLOCK_SKEW = 60.0
METADATA_KEY = "jwt"

BAD_FORMAT = "Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections"
HEADER_BASE64 = "Jwt header is an invalid Base64url encoded"
PAYLOAD_BASE64 = "Jwt payload is an invalid Base64url encoded"
PAYLOAD_JSON = "Jwt payload is not a valid JSON"
EXPIRED = "Jwt is expired"
NOT_YET_VALID = "Jwt not yet valid"
UNKNOWN_ISSUER = "Jwt issuer is not configured"
AUDIENCE = "Audiences in Jwt are not allowed"
NO_KEY = "Jwks doesn't have key to match kid or alg from Jwt"
BAD_SIGNATURE = "Jwt verification fails"
FAKE_JWKS: Obj = {"keys": []}  # what istiod inlines when it cannot fetch a jwksUri


def applies(policy: Obj, pod: Obj) -> bool:
    """Whether an Istio security policy (RequestAuthentication, AuthorizationPolicy) selects
    ``pod``: by namespace (the root namespace's reach every namespace) and selector."""
    ns = namespace_of(policy)
    if ns not in (ROOT_NAMESPACE, namespace_of(pod)):
        return False
    selector = (spec_of(policy).get("selector") or {}).get("matchLabels") or {}
    return not selector or selects(selector, pod_labels(pod))


def rules_for(snap: Snapshot, pod: Obj) -> list[Obj]:
    return [rule for ra in snap.request_authentications if applies(ra, pod)
            for rule in spec_of(ra).get("jwtRules") or []]


def jwt_filter(hop: HopContext, decision: RouteDecision, request: Request, start: float,
               deadline: float | None, next: Next) -> Response:
    rules = rules_for(hop.flow.snap, hop.proxy)
    if not rules:
        return next(request, start)
    found = [(rule, where, token) for rule in rules for where, token in _extract(rule, request)]
    if not found:
        return next(request, start)  # allow_missing
    failure = ""
    for rule, where, token in found:
        outcome = verify(token, rule, _jwks(hop, rule, start), start)
        if isinstance(outcome, dict):
            return next(_forward(request, rule, where, token, outcome), start)
        failure = failure or outcome
    reply = hop.local_reply(_denied(failure), request, start)
    reply.headers = _with_challenge(reply.headers, request, failure)
    return reply


def _denied(text: str) -> LocalReply:
    status = 403 if text == AUDIENCE else 401
    return LocalReply(status, text, "-", f"jwt_authn_access_denied{{{text.replace(' ', '_')}}}")


def _with_challenge(headers: Headers, request: Request, text: str) -> Headers:
    out = headers.copy()
    realm = f"{request.scheme}://{request.authority}{request.path_only}"[:256]
    value = f'Bearer realm="{realm}"'
    if text != "Jwt is missing":
        value += ', error="invalid_token"'
    out.set("www-authenticate", value)
    return out


# ------------------------------------------------------------------ extraction
def _extract(rule: Obj, request: Request) -> list[tuple[tuple[str, str], str]]:
    """(("header"|"param", name), token) for every location of ``rule`` that has a token."""
    headers = rule.get("fromHeaders")
    params = rule.get("fromParams")
    if not headers and not params:
        headers, params = [{"name": "Authorization", "prefix": "Bearer "}], ["access_token"]
    out = []
    for spec in headers or []:
        value = request.headers.get(str(spec.get("name") or ""))
        prefix = str(spec.get("prefix") or "")
        if value is not None and value.startswith(prefix) and value[len(prefix):].strip():
            out.append((("header", str(spec["name"])), value[len(prefix):].strip()))
    query = dict(request.query)
    for name in params or []:
        if query.get(str(name)):
            out.append((("param", str(name)), query[str(name)]))
    return out


def _forward(request: Request, rule: Obj, where: tuple[str, str], token: str,
             payload: Obj) -> Request:
    req = request.copy()
    if not rule.get("forwardOriginalToken") and where[0] == "header":
        req.headers.remove(where[1])
    if rule.get("outputPayloadToHeader"):
        req.headers.set(str(rule["outputPayloadToHeader"]), token.split(".")[1])
    for entry in rule.get("outputClaimToHeaders") or []:
        value = payload.get(str(entry.get("claim")))
        if isinstance(value, (str, int, float, bool)) and entry.get("header"):
            req.headers.set(str(entry["header"]), str(value).lower() if isinstance(value, bool)
                            else str(value))
    req.metadata[METADATA_KEY] = {"principal": f"{payload.get('iss')}/{payload.get('sub')}",
                                  "claims": payload}
    return req


# ---------------------------------------------------------------- verification
def _b64(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def verify(token: str, rule: Obj, jwks: Obj, now: float) -> Obj | str:
    """The payload of a token ``rule`` accepts, or the status text Envoy answers with."""
    parts = token.split(".")
    if len(parts) != 3:
        return BAD_FORMAT
    try:
        header = json.loads(_b64(parts[0]))
    except (ValueError, UnicodeDecodeError):
        return HEADER_BASE64
    try:
        payload = json.loads(_b64(parts[1]))
    except ValueError:
        return PAYLOAD_BASE64
    if not isinstance(payload, dict) or not isinstance(header, dict):
        return PAYLOAD_JSON
    if rule.get("issuer") and payload.get("iss") != rule["issuer"]:
        return UNKNOWN_ISSUER
    audiences = rule.get("audiences") or []
    if audiences:
        aud = payload.get("aud")
        given = aud if isinstance(aud, list) else [aud] if aud else []
        if not set(map(str, given)) & set(map(str, audiences)):
            return AUDIENCE
    if isinstance(payload.get("nbf"), (int, float)) and payload["nbf"] > now + CLOCK_SKEW:
        return NOT_YET_VALID
    if isinstance(payload.get("exp"), (int, float)) and payload["exp"] < now - CLOCK_SKEW:
        return EXPIRED
    return _signature(token, header, jwks) or payload


def _signature(token: str, header: Obj, jwks: Obj) -> str | None:
    keys = [k for k in jwks.get("keys") or [] if isinstance(k, dict)
            and (header.get("kid") is None or k.get("kid") == header.get("kid"))]
    if not keys:
        return NO_KEY
    for key in keys:
        try:
            jws.deserialize_compact(token, KeySet.import_key_set({"keys": [key]}),
                                    algorithms=[str(header.get("alg") or "RS256")])
            return None
        except (JoseError, ValueError, TypeError):
            continue
    return BAD_SIGNATURE


# ------------------------------------------------------------------------ JWKS
def _jwks(hop: HopContext, rule: Obj, at: float) -> Obj:
    if rule.get("jwks"):
        try:
            value = json.loads(str(rule["jwks"]))
        except ValueError:
            return FAKE_JWKS
        return value if isinstance(value, dict) else FAKE_JWKS
    uri = str(rule.get("jwksUri") or "")
    if not uri:
        return FAKE_JWKS  # istiod resolves the issuer's OpenID discovery: not modelled
    cache: dict[tuple[str, int], Obj] = extension(hop.flow.runtime, "jwks", dict)
    key = (uri, hop.flow.snap.rv)
    if key not in cache:
        cache[key] = _fetch(hop, uri, at)
    return cache[key]


def _fetch(hop: HopContext, uri: str, at: float) -> Obj:
    """istiod's GET of a jwksUri (from istiod's pod, so a STRICT server refuses it as well)."""
    parts = urlsplit(uri)
    if parts.scheme != "http":
        return FAKE_JWKS  # https from a pod and the internet's hosts are not modelled
    istiod = next((p for p in hop.flow.snap.pods if namespace_of(p) == ROOT_NAMESPACE and
                   pod_labels(p).get("app") == "istiod"), None)
    if istiod is None:
        return FAKE_JWKS
    answer = hop.flow.hops.app_send(hop.flow.runtime, istiod, "GET", uri, Headers(), b"",
                                    at, 5.0)
    if answer.failure is not None or answer.status != 200:
        return FAKE_JWKS
    try:
        value = json.loads(answer.body)
    except ValueError:
        return FAKE_JWKS
    return value if isinstance(value, dict) else FAKE_JWKS

