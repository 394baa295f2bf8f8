"""Lab 8 — Authorization: JWT authentication and authorization ("授权：实现 JWT 身份的认证和授权").
Checks L8-C01..C06, companion checks L8-X01..X05.

The manual creates namespace foo with httpbin and sleep injected by ``istioctl kube-inject``,
applies RequestAuthentication ``jwt-example`` (``jwtra.yaml``: issuer ``testing@secure.istio.io``)
and sends ``invalidToken`` (401) and no token (200), then AuthorizationPolicy ``require-jwt``
(``jwtap.yaml``: ALLOW requestPrincipals ``testing@secure.istio.io/testing@secure.istio.io``),
after which the demo token passes (200) and no token is denied (403).

**Hermetic by default (D-29).** The manual's ``jwksUri`` and ``demo.jwt`` live on
raw.githubusercontent.com, which istiod must reach (if it cannot, it inlines a fake key set and
every token gets 401). By default the run mints its own RSA key under the demo ``kid`` and signs
tokens with demo.jwt's claims (iss = sub = ``testing@secure.istio.io``, ``foo: bar``, far-future
exp), and the RequestAuthentication carries that key inline (``jwks:`` instead of ``jwksUri``,
the only deviation from ``jwtra.yaml``). ``--istio-jwt-source=remote`` applies ``jwtra.yaml``
exactly and fetches the manual's token instead (clusters with internet).

Each test enters the state it checks (policies present or not), so any subset runs in any order.
Envoy's bodies (not printed by the manual) are asserted: ``Jwt is not in the form of
Header.Payload.Signature with two dots and 3 sections`` and ``RBAC: access denied``. D-27: the
manual's ``v1beta1`` files are applied as they are; the namespace is the module's own.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest

from pytest_istiolab import waiting
from pytest_istiolab.cluster import ClusterSession
from pytest_istiolab.deploy import kube_injected
from pytest_istiolab.kube import Applier, ObjectRef, manifests
from pytest_istiolab.security import DEMO_ISSUER, DEMO_TOKEN_URL, Issuer, tampered
from pytest_istiolab.traffic import curl_argv

pytestmark = [pytest.mark.lab(8)]

LAB = "lab08-jwt/"
SAMPLES = ("samples/httpbin/httpbin.yaml", "samples/sleep/sleep.yaml")
PRINCIPAL = f"{DEMO_ISSUER}/{DEMO_ISSUER}"
BAD_FORMAT = "Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections"
DENIED = "RBAC: access denied"
MARK = "\n--istiolab-status-- "
Case = tuple[int, str | None, str | None]  # (status, token, body)


@dataclass
class JwtLab:
    cluster: ClusterSession
    namespace: str
    applier: Applier
    issuer: Issuer | None  # None: the manual's remote JWKS and token
    applied: dict[str, list[ObjectRef]] = field(default_factory=dict)
    _token: str | None = None

    def _docs(self, name: str) -> list[manifests.Doc]:
        docs = manifests.load(LAB + name)
        for doc in docs:
            doc["metadata"]["namespace"] = self.namespace
            if doc["kind"] == "RequestAuthentication" and self.issuer is not None:
                for rule in doc["spec"]["jwtRules"]:
                    rule.pop("jwksUri", None)
                    rule["jwks"] = self.issuer.jwks_json()
        return docs

    def enter(self, *policies: str, extra: manifests.Doc | None = None) -> None:
        """Exactly these of ``jwtra.yaml``/``jwtap.yaml`` (and ``extra``) applied, nothing else."""
        wanted = {**{p: self._docs(p) for p in policies}, **({"extra": [extra]} if extra else {})}
        for name in [n for n in self.applied if n not in wanted or n == "extra"]:
            self.cluster.kube.delete_all(self.applied.pop(name))
        for name, docs in wanted.items():
            if name not in self.applied:
                self.applied[name] = self.applier.apply_docs(docs, LAB + name)

    @property
    def token(self) -> str:
        """The demo token: minted (local) or ``curl .../demo.jwt -s`` (remote)."""
        if self._token is None:
            if self.issuer is not None:
                self._token = self.issuer.demo_token()
            else:
                self._token = httpx.get(DEMO_TOKEN_URL, timeout=30).text.strip()
        return self._token

    def curl(self, path: str = "/headers", token: str | None = None) -> tuple[int, str]:
        """``curl http://httpbin.<ns>:8000<path> -s [-H "Authorization: Bearer T"]``:
        (status, body)."""
        headers = {"Authorization": f"Bearer {token}"} if token is not None else None
        pod = self.cluster.kube.first_pod(self.namespace, "app=sleep")
        argv = curl_argv(f"http://httpbin.{self.namespace}:8000{path}", headers=headers,
                         output=None, write_out=MARK + "%{http_code}\n")
        result = self.cluster.kube.exec(self.namespace, pod, argv, container="sleep")
        assert result.exit_code == 0, f"curl failed with exit {result.exit_code}: {result.stderr}"
        body, _, status = result.stdout.rpartition(MARK)
        return int(status.strip()), body

    def expect(self, status: int, token: str | None = None, body: str | None = None,
               path: str = "/headers") -> str:
        """Poll until the answer is ``status`` (and ``body``): policies take a moment to apply."""
        return self.expect_all((status, token, body), path=path)[0]

    def expect_all(self, *cases: Case, path: str = "/headers") -> list[str]:
        """Poll until every case (status, token, body) answers as expected in one round; the
        bodies. An answer the previous policies also give (a token accepted, no token let
        through) proves nothing alone: beside it a case only the entered policies answer so
        shows that they are in effect on httpbin's sidecar."""
        seen: list[str] = []

        def check() -> None:
            seen.clear()
            for status, token, body in cases:
                code, text = self.curl(path, token)
                seen.append(text)
                who = "no token" if token is None else f"token {token[:16]}..."
                assert code == status, f"{who}: HTTP {code}, expected {status}: {text[:200]!r}"
                if body is not None:
                    assert text == body, f"{who}: body {text[:200]!r}, expected {body!r}"

        t = self.cluster.timeouts
        wanted = " and ".join(f"HTTP {status}" for status, _, _ in cases)
        waiting.eventually(check, timeout=t.eventually, interval=t.poll_interval,
                           consecutive=t.consecutive, description=f"{wanted} from httpbin")
        return list(seen)


@pytest.fixture(scope="module")
def jwt_lab(cluster, istio, lab_namespaces, istio_settings) -> Iterator[JwtLab]:
    namespace = lab_namespaces("foo")
    applier = Applier(cluster.kube, namespace)
    applier.apply_docs(kube_injected(cluster, *SAMPLES), "istioctl kube-inject -f "
                       + " ".join(SAMPLES))
    cluster.kube.wait_for_deployments(namespace, ["httpbin", "sleep"])
    issuer = Issuer() if istio_settings.jwt_source == "local" else None
    yield JwtLab(cluster, namespace, applier, issuer)
    applier.cleanup()


def _local_only(lab: JwtLab) -> Issuer:
    if lab.issuer is None:
        pytest.skip("needs the run's own issuer (--istio-jwt-source=local)")
    return lab.issuer


@pytest.mark.check("L8-C01")
def test_baseline_without_policies_is_200(jwt_lab):
    jwt_lab.enter()
    jwt_lab.expect(200, path="/ip")


@pytest.mark.check("L8-C02")
def test_invalid_token_is_rejected_with_401(jwt_lab):
    """``-H "Authorization: Bearer invalidToken"``: 401 with jwt_verify_lib's JwtBadFormat text."""
    jwt_lab.enter("jwtra.yaml")
    jwt_lab.expect(401, "invalidToken", BAD_FORMAT)


@pytest.mark.check("L8-C03")
def test_no_token_still_passes_request_authentication(jwt_lab):
    """RequestAuthentication alone: Istio's provider has allow_missing, so no token is 200
    (polled beside ``invalidToken``'s 401: without the RequestAuthentication no token is 200
    too)."""
    jwt_lab.enter("jwtra.yaml")
    jwt_lab.expect_all((401, "invalidToken", BAD_FORMAT), (200, None, None))


@pytest.mark.check("L8-C04")
def test_policy_applied_and_token_carries_the_demo_claims(jwt_lab, kube):
    """``kubectl apply -f jwtap.yaml``; ``echo $TOKEN | cut -d . -f2 | base64 --decode``: the
    token's payload names issuer and subject ``testing@secure.istio.io``."""
    jwt_lab.enter("jwtra.yaml", "jwtap.yaml")
    policy = kube.get("security.istio.io/v1beta1", "AuthorizationPolicy", "require-jwt",
                      jwt_lab.namespace)
    assert policy is not None and policy["spec"]["action"] == "ALLOW"
    segment = jwt_lab.token.split(".")[1]
    payload = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    assert (payload["iss"], payload["sub"], payload["foo"]) == (DEMO_ISSUER, DEMO_ISSUER, "bar")


@pytest.mark.check("L8-C05")
def test_valid_token_is_allowed_under_the_policy(jwt_lab):
    """Polled beside no token's 403: without the policy the token passes too."""
    jwt_lab.enter("jwtra.yaml", "jwtap.yaml")
    jwt_lab.expect_all((403, None, DENIED), (200, jwt_lab.token, None))


@pytest.mark.check("L8-C06")
def test_no_token_is_denied_under_the_policy(jwt_lab):
    """No token, no request principal: no ALLOW rule matches, 403 ``RBAC: access denied``."""
    jwt_lab.enter("jwtra.yaml", "jwtap.yaml")
    jwt_lab.expect(403, None, DENIED)


@pytest.mark.check("L8-X01")
def test_invalid_token_stays_401_under_the_policy(jwt_lab):
    """Beyond the manual (the catalogue's recommended extra): jwt_authn answers before RBAC."""
    jwt_lab.enter("jwtra.yaml", "jwtap.yaml")
    jwt_lab.expect(401, "invalidToken", BAD_FORMAT)


@pytest.mark.check("L8-X02")
def test_expired_token_is_401(jwt_lab):
    """Beyond the manual: a token past its exp (beyond Envoy's 60 s clock skew) is 401."""
    issuer = _local_only(jwt_lab)
    jwt_lab.enter("jwtra.yaml", "jwtap.yaml")
    jwt_lab.expect(401, issuer.expired_token(), "Jwt is expired")


@pytest.mark.check("L8-X03")
def test_token_with_a_bad_signature_is_401(jwt_lab):
    """Beyond the manual: the demo claims with a changed signature fail verification."""
    jwt_lab.enter("jwtra.yaml", "jwtap.yaml")
    jwt_lab.expect(401, tampered(jwt_lab.token), "Jwt verification fails")


@pytest.mark.check("L8-X04")
def test_groups_claim_condition(jwt_lab):
    """Beyond the manual: ``when: request.auth.claims[groups] values [group1]`` matches a list
    claim by element: groups-scope.jwt's claims pass, demo.jwt's (no groups) are denied."""
    issuer = _local_only(jwt_lab)
    policy = {"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
              "metadata": {"name": "require-group1", "namespace": jwt_lab.namespace},
              "spec": {"selector": {"matchLabels": {"app": "httpbin"}}, "action": "ALLOW",
                       "rules": [{"from": [{"source": {"requestPrincipals": [PRINCIPAL]}}],
                                  "when": [{"key": "request.auth.claims[groups]",
                                            "values": ["group1"]}]}]}}
    jwt_lab.enter("jwtra.yaml", extra=policy)
    jwt_lab.expect_all((403, issuer.demo_token(), DENIED), (200, issuer.groups_token(), None))


@pytest.mark.check("L8-X05")
def test_verified_token_is_not_forwarded_to_the_application(jwt_lab):
    """Beyond the manual: without ``forwardOriginalToken`` Envoy removes the Authorization
    header after verifying it, so httpbin's ``/headers`` does not see the token."""
    jwt_lab.enter("jwtra.yaml", "jwtap.yaml")
    _, body = jwt_lab.expect_all((403, None, DENIED), (200, jwt_lab.token, None))
    assert "Authorization" not in json.loads(body)["headers"]
