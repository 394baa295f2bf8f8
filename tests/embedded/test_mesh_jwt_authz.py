"""RequestAuthentication and AuthorizationPolicy through the mesh model (Lab 8 facts, §C)."""

from __future__ import annotations

import base64
import json

import pytest
from mesh_testkit import Kit

from pytest_istiolab.embedded.mesh import request_from_pod
from pytest_istiolab.embedded.mesh.headers import Headers
from pytest_istiolab.security import DEMO_ISSUER, Issuer

URL = "http://httpbin:8000/headers"
ISSUER = Issuer()


@pytest.fixture
def kit() -> Kit:
    k = Kit()
    k.httpbin()
    k.sleep()
    return k


def ra(**rule: object) -> dict:
    return {"apiVersion": "security.istio.io/v1", "kind": "RequestAuthentication",
            "metadata": {"name": "jwt"},
            "spec": {"selector": {"matchLabels": {"app": "httpbin"}},
                     "jwtRules": [{"issuer": DEMO_ISSUER, "jwks": ISSUER.jwks_json(), **rule}]}}


def ap(name: str, action: str, rules: list | None) -> dict:
    spec: dict = {"selector": {"matchLabels": {"app": "httpbin"}}, "action": action}
    if rules is not None:
        spec["rules"] = rules
    return {"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
            "metadata": {"name": name}, "spec": spec}


def send(kit: Kit, token: str | None = None, url: str = URL, **headers: str):  # type: ignore[no-untyped-def]
    h = Headers({"user-agent": "curl/8.14.1", **headers})
    if token is not None:
        h.set("authorization", f"Bearer {token}")
    return request_from_pod(kit.rt, kit.get_pod("sleep"), "GET", url, h)


def echoed(response) -> dict:  # type: ignore[no-untyped-def]
    return json.loads(response.body)["headers"]


def test_invalid_token_gets_envoys_401_with_the_challenge(kit):
    kit.apply(ra())
    answer = send(kit, "invalidToken")
    assert answer.status == 401 and answer.headers.get("content-type") == "text/plain"
    assert answer.text.startswith("Jwt is not in the form of Header.Payload.Signature")
    assert answer.headers.get("www-authenticate") == \
        'Bearer realm="http://httpbin:8000/headers", error="invalid_token"'
    assert send(kit).status == 200  # allow_missing


def test_unknown_kid_audience_and_issuer(kit):
    kit.apply(ra(audiences=["svc"]))
    assert send(kit, ISSUER.token({"aud": "other"})).text == "Audiences in Jwt are not allowed"
    assert send(kit, ISSUER.token({"aud": "other"})).status == 403
    assert send(kit, ISSUER.token({"aud": ["x", "svc"]})).status == 200
    other = Issuer(kid="another")
    assert send(kit, other.token({"aud": "svc"})).text == \
        "Jwks doesn't have key to match kid or alg from Jwt"
    assert send(kit, Issuer("someone-else").token({"aud": "svc"})).text == \
        "Jwt issuer is not configured"


def test_token_header_is_removed_unless_forwarded_and_payload_can_be_output(kit):
    kit.apply(ra(outputPayloadToHeader="x-jwt-payload"))
    token = ISSUER.demo_token()
    headers = echoed(send(kit, token))
    assert "Authorization" not in headers
    payload = headers["X-Jwt-Payload"][0]
    decoded = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert decoded["foo"] == "bar"
    kit.apply(ra(forwardOriginalToken=True))
    assert echoed(send(kit, token))["Authorization"] == [f"Bearer {token}"]


def test_from_params_and_from_headers(kit):
    kit.apply(ra(fromHeaders=[{"name": "x-token"}], fromParams=["tok"]))
    token = ISSUER.demo_token()
    assert send(kit, None, URL + "?tok=bad").status == 401
    assert send(kit, None, URL + f"?tok={token}").status == 200
    assert send(kit, None, **{"x-token": "bad"}).status == 401
    assert send(kit, "bad").status == 200  # Authorization is not a location of this rule


def test_not_yet_valid_beyond_the_clock_skew(kit):
    kit.apply(ra())
    now = kit.rt.clock.now()
    assert send(kit, ISSUER.token({"nbf": now + 600})).text == "Jwt not yet valid"
    assert send(kit, ISSUER.token({"nbf": now + 30})).status == 200  # within 60 s skew
    assert send(kit, ISSUER.token(expires=now - 30)).status == 200
    assert send(kit, ISSUER.token(expires=now - 120)).text == "Jwt is expired"


def test_deny_before_allow_and_empty_rules(kit):
    kit.apply(ap("allow-all", "ALLOW", [{}]))
    assert send(kit).status == 200
    kit.apply(ap("deny-headers", "DENY", [{"to": [{"operation": {"paths": ["/head*"]}}]}]))
    denied = send(kit)
    assert (denied.status, denied.text) == (403, "RBAC: access denied")
    assert send(kit, url="http://httpbin:8000/ip").status == 200
    kit.apply(ap("nothing", "ALLOW", None))  # no rules: matches nothing, allow-all still allows
    assert send(kit, url="http://httpbin:8000/ip").status == 200
    kit.delete("security.istio.io", "authorizationpolicies", "allow-all")
    assert send(kit, url="http://httpbin:8000/ip").status == 403


def test_audit_changes_nothing_and_source_conditions(kit):
    kit.apply(ap("audit", "AUDIT", [{}]))
    assert send(kit).status == 200
    kit.apply(ap("from-default", "ALLOW", [{
        "from": [{"source": {"principals": ["cluster.local/ns/default/sa/sleep"],
                             "namespaces": ["default"]}}],
        "when": [{"key": "source.namespace", "values": ["default"]},
                 {"key": "request.headers[x-team]", "notValues": ["blocked"]}]}]))
    assert send(kit).status == 200
    assert send(kit, **{"x-team": "blocked"}).status == 403


def test_claims_conditions_and_request_principals(kit):
    kit.apply(ra())
    kit.apply(ap("groups", "ALLOW", [{
        "from": [{"source": {"requestPrincipals": [f"{DEMO_ISSUER}/*"]}}],
        "when": [{"key": "request.auth.claims[groups]", "values": ["group2"]},
                 {"key": "request.auth.claims[org][unit]", "values": ["ops"]}]}]))
    assert send(kit, ISSUER.token({"groups": ["group1", "group2"],
                                   "org": {"unit": "ops"}})).status == 200
    assert send(kit, ISSUER.token({"groups": ["group1"], "org": {"unit": "ops"}})).status == 403
    assert send(kit).status == 403


def test_an_unreachable_jwks_uri_fails_every_token(kit):
    """D-29: istiod cannot fetch the manual's https jwksUri here, inlines a fake key set, and
    even a valid token is 401."""
    kit.apply(ra(jwks=None, jwksUri="https://raw.githubusercontent.com/istio/istio/"
                 "release-1.5/security/tools/jwt/samples/jwks.json"))
    answer = send(kit, ISSUER.demo_token())
    assert (answer.status, answer.text) == (401, "Jwks doesn't have key to match kid or alg "
                                                 "from Jwt")
    assert send(kit).status == 200
