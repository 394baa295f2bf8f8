"""A local JWT issuer: an RSA key, its JWKS, and RS256 tokens with the claims a lab needs.

Lab 8 uses Istio's demo issuer (``security/tools/jwt/samples``: iss = sub =
``testing@secure.istio.io``, header kid ``DHFbpoIUqrY8t2zpA2qXfCmr5VO5ZEr4RzHU_-envvQ``). Its
JWKS and token live on the internet (catalogue D-29); an :class:`Issuer` makes a key of its own
under the same kid and claims, so a cluster without internet (and the embedded one) can run the
lab. The private key never leaves the object: :meth:`Issuer.jwks` is public keys only, and
:func:`redact` is what reports may print of a token.
"""

from __future__ import annotations

import json
import time
from typing import Any

from joserfc import jwt
from joserfc.jwk import RSAKey

DEMO_ISSUER = "testing@secure.istio.io"
DEMO_KID = "DHFbpoIUqrY8t2zpA2qXfCmr5VO5ZEr4RzHU_-envvQ"
DEMO_EXP = 4685989700  # demo.jwt's exp (far future)
DEMO_IAT = 1532389700
# The manual's remote files (used with --istio-jwt-source=remote, needs internet)
DEMO_JWKS_URI = ("https://raw.githubusercontent.com/istio/istio/release-1.5/security/tools/"
                 "jwt/samples/jwks.json")
DEMO_TOKEN_URL = ("https://raw.githubusercontent.com/istio/istio/release-1.5/security/tools/"
                  "jwt/samples/demo.jwt")


class Issuer:
    """One signing key (RSA 2048, RS256) and the tokens it signs."""

    def __init__(self, issuer: str = DEMO_ISSUER, kid: str = DEMO_KID) -> None:
        self.issuer, self.kid = issuer, kid
        self._key = RSAKey.generate_key(2048, parameters={"kid": kid, "alg": "RS256",
                                                          "use": "sig"})

    def jwks(self) -> dict[str, Any]:
        """The public JWKS (``{"keys": [...]}``) for RequestAuthentication ``jwks``/``jwksUri``."""
        public = self._key.as_dict(private=False)
        return {"keys": [{k: public[k] for k in ("e", "kid", "kty", "n") if k in public}]}

    def jwks_json(self) -> str:
        return json.dumps(self.jwks(), separators=(",", ":"))

    def token(self, claims: dict[str, Any] | None = None, *, subject: str | None = None,
              expires: float | None = DEMO_EXP, issued: float | None = DEMO_IAT) -> str:
        """A signed token: iss, sub (default: the issuer, as gen-jwt.py does), exp, iat, + claims.

        ``expires`` None leaves exp out; pass ``time.time() - 120`` for an expired token.
        """
        payload: dict[str, Any] = {"iss": self.issuer, "sub": subject or self.issuer}
        if expires is not None:
            payload["exp"] = int(expires)
        if issued is not None:
            payload["iat"] = int(issued)
        payload.update(claims or {})
        header = {"alg": "RS256", "kid": self.kid, "typ": "JWT"}
        return jwt.encode(header, payload, self._key)

    def demo_token(self) -> str:
        """demo.jwt's claims (``foo: bar``), signed by this issuer."""
        return self.token({"foo": "bar"})

    def groups_token(self) -> str:
        """groups-scope.jwt's claims (groups group1/group2, scope scope1/scope2)."""
        return self.token({"groups": ["group1", "group2"], "scope": ["scope1", "scope2"]},
                          expires=3537391104, issued=1537391104)

    def expired_token(self, seconds_ago: float = 3600) -> str:
        now = time.time()
        return self.token({"foo": "bar"}, expires=now - seconds_ago, issued=now - 2 * seconds_ago)

    def __repr__(self) -> str:
        return f"Issuer(issuer={self.issuer!r}, kid={self.kid!r})"  # never the key


def tampered(token: str) -> str:
    """The same token with its signature changed (a bad-signature case)."""
    head, payload, signature = token.split(".")
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    return ".".join((head, payload, flipped))


def redact(token: str) -> str:
    """What logs and reports may show of a token: its header and payload, no signature."""
    parts = token.split(".")
    return ".".join(parts[:2]) + ".<signature>" if len(parts) == 3 else "<not a JWT>"
