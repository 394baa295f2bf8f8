"""Security material the labs need, made locally: certificates (Lab 6) with ``cryptography``,
JWT signing keys and tokens (Lab 8) with ``joserfc``.

Plain Python: no pytest, no Kubernetes. Private keys are written with mode 0600 and never
printed; :func:`~pytest_istiolab.security.certs.secret_summary` describes a Secret without its
data for messages and reports.
"""

from pytest_istiolab.security.certs import (
    Credential,
    LabCertificates,
    generic_secret,
    redact_secret,
    secret_summary,
    tls_secret,
)
from pytest_istiolab.security.jwt import (
    DEMO_ISSUER,
    DEMO_JWKS_URI,
    DEMO_KID,
    DEMO_TOKEN_URL,
    Issuer,
    redact,
    tampered,
)

__all__ = ["DEMO_ISSUER", "DEMO_JWKS_URI", "DEMO_KID", "DEMO_TOKEN_URL", "Credential", "Issuer",
           "LabCertificates", "generic_secret", "redact", "redact_secret", "secret_summary",
           "tampered", "tls_secret"]
