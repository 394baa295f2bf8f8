"""Lab 6's certificates, made as the manual's openssl commands make them, and its Secrets.

The manual (catalogue Lab 6) runs, in ``~/istio-1.26.0``::

    openssl req -x509 -sha256 -nodes -days 365 -newkey rsa:2048 \\
        -subj '/O=example Inc./CN=example.com' -keyout example.com.key -out example.com.crt
    openssl req -out httpbin.example.com.csr -newkey rsa:2048 -nodes \\
        -keyout httpbin.example.com.key -subj "/CN=httpbin.example.com/O=httpbin organization"
    openssl x509 -req -sha256 -days 365 -CA example.com.crt -CAkey example.com.key \\
        -set_serial 0 -in httpbin.example.com.csr -out httpbin.example.com.crt

and the same for ``helloworld-v1.example.com`` (serial 1) and ``client.example.com`` (serial 1,
D-16), then a second CA with the identical subject and a new httpbin certificate in
``new_certificates/`` for the rotation. :class:`LabCertificates` writes those files, field
for field: RSA 2048, SHA-256, 365 days from now, subjects in the manual's order, the serials
the manual sets (0 and 1), **no subjectAltName** (D-14: curl matches the CN), the root
self-signed with a random serial and ``basicConstraints CA:TRUE`` as ``req -x509`` makes it,
the leaves with no extension at all (``x509 -req`` without ``-extfile``: no authority key
identifier, so a client holding the rotated CA of the same DN fails on the signature, D-16).
Keys are unencrypted PKCS#8 PEM (``-nodes``), mode 0600; the directory is private (0700)
and :meth:`LabCertificates.remove` deletes it.

``cryptography`` refuses to build serial 0 (RFC 5280 wants positive serials; openssl lets
``-set_serial 0`` through), so a serial-0 certificate is built with serial 1 and its
to-be-signed part re-encoded with 0 and signed again (both serials encode in one byte).

Secrets: :func:`tls_secret` is ``kubectl create secret tls`` (type ``kubernetes.io/tls``,
keys ``tls.crt``/``tls.key``), :func:`generic_secret` is ``kubectl create secret generic
--from-file=key=path`` (type ``Opaque``). Neither is ever printed: :func:`secret_summary`
names a Secret's keys and sizes for messages, :func:`redact_secret` blanks the data of a
Secret document for reports.
"""

from __future__ import annotations

import base64
import datetime
import os
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

Obj = dict[str, Any]
DAYS = 365
KEY_BITS = 2048
ROOT_SUBJECT = (("O", "example Inc."), ("CN", "example.com"))
HTTPBIN_SUBJECT = (("CN", "httpbin.example.com"), ("O", "httpbin organization"))
HELLOWORLD_SUBJECT = (("CN", "helloworld-v1.example.com"), ("O", "helloworld organization"))
CLIENT_SUBJECT = (("CN", "client.example.com"), ("O", "client organization"))
NEW_DIR = "new_certificates"
_OIDS = {"O": NameOID.ORGANIZATION_NAME, "CN": NameOID.COMMON_NAME}


def _name(parts: tuple[tuple[str, str], ...]) -> x509.Name:
    return x509.Name([x509.NameAttribute(_OIDS[k], v) for k, v in parts])


@dataclass(frozen=True)
class Credential:
    """One certificate with its key (and CSR for leaves), and the files they are written to."""

    stem: str                 # "example.com", "new_certificates/httpbin.example.com"
    certificate: x509.Certificate
    key: rsa.RSAPrivateKey
    directory: Path
    csr: x509.CertificateSigningRequest | None = None
    serial: int = -1          # as set (reading serial 0 back warns in cryptography)

    @property
    def cert_path(self) -> Path:
        return self.directory / f"{self.stem}.crt"

    @property
    def key_path(self) -> Path:
        return self.directory / f"{self.stem}.key"

    @property
    def csr_path(self) -> Path:
        return self.directory / f"{self.stem}.csr"

    @property
    def cert_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self) -> bytes:
        return self.key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption())

    @property
    def subject(self) -> str:
        """``CN=httpbin.example.com, O=httpbin organization`` (openssl's order and spacing)."""
        return _dn(self.certificate.subject)

    @property
    def issuer(self) -> str:
        return _dn(self.certificate.issuer)

    def __repr__(self) -> str:  # never the key
        return f"Credential({self.stem!r}, subject={self.subject!r}, serial={self.serial})"

    def write(self) -> None:
        self.cert_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.cert_path.write_bytes(self.cert_pem)
        fd = os.open(self.key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(self.key_pem)
        os.chmod(self.key_path, 0o600)
        if self.csr is not None:
            self.csr_path.write_bytes(self.csr.public_bytes(serialization.Encoding.PEM))


def _dn(name: x509.Name) -> str:
    short = {NameOID.ORGANIZATION_NAME: "O", NameOID.COMMON_NAME: "CN"}
    return ", ".join(f"{short.get(a.oid, a.oid.dotted_string)}={a.value!s}" for a in name)


def _new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)


def make_root(stem: str, directory: Path,
              subject: tuple[tuple[str, str], ...] = ROOT_SUBJECT) -> Credential:
    """``openssl req -x509 -sha256 -nodes -days 365 -newkey rsa:2048 -subj ...``."""
    key = _new_key()
    name = _name(subject)
    now = datetime.datetime.now(datetime.UTC)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=DAYS))
            .add_extension(ski, critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    return Credential(stem, cert, key, directory, None, cert.serial_number)


def make_leaf(stem: str, directory: Path, ca: Credential,
              subject: tuple[tuple[str, str], ...], serial: int) -> Credential:
    """``openssl req -newkey rsa:2048 -nodes -subj ...`` then ``openssl x509 -req -sha256
    -days 365 -CA ... -set_serial N``: no subjectAltName."""
    key = _new_key()
    csr = x509.CertificateSigningRequestBuilder().subject_name(_name(subject)) \
        .sign(key, hashes.SHA256())
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(csr.subject)
            .issuer_name(ca.certificate.subject).public_key(key.public_key())
            .serial_number(max(serial, 1))
            .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=DAYS))
            .sign(ca.key, hashes.SHA256()))
    if serial == 0:
        cert = _with_serial_zero(cert, ca.key)
    return Credential(stem, cert, key, directory, csr, serial)


def _with_serial_zero(cert: x509.Certificate, ca_key: rsa.RSAPrivateKey) -> x509.Certificate:
    """The same certificate with serial 0, signed again (see the module doc)."""
    der = cert.public_bytes(serialization.Encoding.DER)
    tbs = cert.tbs_certificate_bytes
    marker = b"\xa0\x03\x02\x01\x02\x02\x01\x01"  # [0] version v3, INTEGER serial 1
    at = tbs.find(marker)
    if at < 0 or at > 8:
        raise ValueError("unexpected certificate encoding: cannot set serial 0")
    new_tbs = tbs[:at] + marker[:-1] + b"\x00" + tbs[at + len(marker):]
    signature = ca_key.sign(new_tbs, padding.PKCS1v15(), hashes.SHA256())
    old_signature = cert.signature
    if len(signature) != len(old_signature) or not der.endswith(old_signature):
        raise ValueError("unexpected signature length: cannot set serial 0")
    new_der = der.replace(tbs, new_tbs, 1)[:-len(old_signature)] + signature
    with warnings.catch_warnings():  # "serial number which wasn't positive": on purpose
        warnings.simplefilter("ignore")
        return x509.load_der_x509_certificate(new_der)


class LabCertificates:
    """The manual's working directory of certificates, in a private temporary directory.

    Attributes follow the manual's files: ``root`` (example.com.crt/.key), ``httpbin``
    (serial 0), ``helloworld`` (serial 1), ``client`` (serial 1), and the rotation's
    ``new_root`` and ``new_httpbin`` in ``new_certificates/``.
    """

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = Path(directory or tempfile.mkdtemp(prefix="istiolab-certs-"))
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.directory, 0o700)
        d = self.directory
        self.root = make_root("example.com", d)
        self.httpbin = make_leaf("httpbin.example.com", d, self.root, HTTPBIN_SUBJECT, 0)
        self.helloworld = make_leaf("helloworld-v1.example.com", d, self.root,
                                    HELLOWORLD_SUBJECT, 1)
        self.client = make_leaf("client.example.com", d, self.root, CLIENT_SUBJECT, 1)
        self.new_root = make_root(f"{NEW_DIR}/example.com", d)
        self.new_httpbin = make_leaf(f"{NEW_DIR}/httpbin.example.com", d, self.new_root,
                                     HTTPBIN_SUBJECT, 0)
        for cred in self.all():
            cred.write()

    def all(self) -> tuple[Credential, ...]:
        return (self.root, self.httpbin, self.helloworld, self.client, self.new_root,
                self.new_httpbin)

    def remove(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)

    def __repr__(self) -> str:
        return f"LabCertificates({str(self.directory)!r})"


# ---------------------------------------------------------------------- Secrets
def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def tls_secret(name: str, namespace: str, cred: Credential) -> Obj:
    """``kubectl create -n NS secret tls NAME --key=... --cert=...``."""
    return {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
            "metadata": {"name": name, "namespace": namespace},
            "data": {"tls.crt": _b64(cred.cert_pem), "tls.key": _b64(cred.key_pem)}}


def generic_secret(name: str, namespace: str, files: dict[str, bytes]) -> Obj:
    """``kubectl create -n NS secret generic NAME --from-file=KEY=PATH ...`` (type Opaque)."""
    return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": name, "namespace": namespace},
            "data": {key: _b64(value) for key, value in files.items()}}


def secret_summary(secret: Obj) -> str:
    """``istio-system/httpbin-credential (kubernetes.io/tls: tls.crt 1.1 kB, tls.key ...)``."""
    meta = secret.get("metadata") or {}
    sizes = ", ".join(f"{k} {len(base64.b64decode(v or ''))} bytes"
                      for k, v in sorted((secret.get("data") or {}).items()))
    return f"{meta.get('namespace')}/{meta.get('name')} ({secret.get('type', 'Opaque')}: {sizes})"


def redact_secret(doc: Obj) -> Obj:
    """A copy of a Secret document with every data value replaced by its size."""
    if doc.get("kind") != "Secret":
        return doc
    out = dict(doc)
    for field in ("data", "stringData"):
        if isinstance(doc.get(field), dict):
            out[field] = {k: f"<redacted: {len(str(v))} characters>"
                          for k, v in doc[field].items()}
    return out
