"""The Lab 6 certificates match the manual's openssl commands field for field."""

from __future__ import annotations

import base64
import stat
import subprocess
import warnings

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from pytest_istiolab.report.diagnostics import redact_secrets
from pytest_istiolab.security import (
    LabCertificates,
    generic_secret,
    redact_secret,
    secret_summary,
    tls_secret,
)


@pytest.fixture(scope="module")
def made():
    certs = LabCertificates()
    yield certs
    certs.remove()


def test_subjects_issuers_and_serials_are_the_manuals(made) -> None:
    assert made.root.subject == made.root.issuer == "O=example Inc., CN=example.com"
    assert made.httpbin.subject == "CN=httpbin.example.com, O=httpbin organization"
    assert made.helloworld.subject == "CN=helloworld-v1.example.com, O=helloworld organization"
    assert made.client.subject == "CN=client.example.com, O=client organization"
    for leaf in (made.httpbin, made.helloworld, made.client):
        assert leaf.issuer == "O=example Inc., CN=example.com"
    assert (made.httpbin.serial, made.helloworld.serial, made.client.serial) == (0, 1, 1)
    assert made.new_root.subject == made.root.subject  # D-16: same DN, new key
    assert made.new_root.key.public_key().public_numbers() != \
        made.root.key.public_key().public_numbers()


def test_leaves_are_rsa_2048_sha256_365_days_without_san(made) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # serial 0
        for cred in made.all():
            cert = cred.certificate
            assert isinstance(cred.key, rsa.RSAPrivateKey) and cred.key.key_size == 2048
            assert cert.signature_hash_algorithm is not None
            assert cert.signature_hash_algorithm.name == "sha256"
            assert (cert.not_valid_after_utc - cert.not_valid_before_utc).days == 365
            with pytest.raises(x509.ExtensionNotFound):
                cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)


def test_openssl_reads_serial_zero_and_verifies_the_chain(made) -> None:
    out = subprocess.run(["openssl", "x509", "-in", str(made.httpbin.cert_path), "-noout",
                          "-serial", "-subject"], capture_output=True, text=True, check=True)
    assert "serial=00" in out.stdout
    assert "subject=CN = httpbin.example.com, O = httpbin organization" in out.stdout
    ok = subprocess.run(["openssl", "verify", "-CAfile", str(made.root.cert_path),
                         str(made.httpbin.cert_path)], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    wrong = subprocess.run(["openssl", "verify", "-CAfile", str(made.root.cert_path),
                            str(made.new_httpbin.cert_path)], capture_output=True, text=True)
    assert wrong.returncode != 0
    assert "certificate signature failure" in wrong.stdout + wrong.stderr


def test_files_are_laid_out_as_the_manuals_working_directory(made) -> None:
    names = sorted(p.relative_to(made.directory).as_posix()
                   for p in made.directory.rglob("*") if p.is_file())
    assert "example.com.crt" in names and "new_certificates/httpbin.example.com.key" in names
    assert "client.example.com.csr" in names
    for cred in made.all():
        assert stat.S_IMODE(cred.key_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(made.directory.stat().st_mode) == 0o700


def test_remove_deletes_the_directory() -> None:
    certs = LabCertificates()
    certs.remove()
    assert not certs.directory.exists()


def test_secrets_as_kubectl_creates_them_and_never_shown(made) -> None:
    tls = tls_secret("httpbin-credential", "istio-system", made.httpbin)
    assert tls["type"] == "kubernetes.io/tls" and set(tls["data"]) == {"tls.crt", "tls.key"}
    assert base64.b64decode(tls["data"]["tls.key"]) == made.httpbin.key_pem
    generic = generic_secret("httpbin-credential", "istio-system",
                             {"tls.key": made.httpbin.key_pem, "tls.crt": made.httpbin.cert_pem,
                              "ca.crt": made.root.cert_pem})
    assert generic["type"] == "Opaque" and set(generic["data"]) == {"tls.key", "tls.crt", "ca.crt"}
    key_text = made.httpbin.key_pem.decode()
    for shown in (secret_summary(generic), str(redact_secret(generic)), repr(made.httpbin),
                  repr(made)):
        assert "PRIVATE KEY" not in shown and tls["data"]["tls.key"] not in shown
    import yaml
    rendered = redact_secrets(yaml.safe_dump(tls))
    assert tls["data"]["tls.key"] not in rendered and "redacted" in rendered
    assert key_text not in rendered
