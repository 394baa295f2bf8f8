"""The gateway's HTTPS servers as a real TLS listener (Lab 6), driven by openssl and ssl.

A Store populated by hand (mesh_testkit) with the Lab 6 manifests and Secrets; clients are
``openssl s_client`` (certificate chain, SNI, verify codes, alerts) and Python's ``ssl``
(SNI selection, ALPN, istiod's key order, SDS replacement, MUTUAL).
"""

from __future__ import annotations

import base64
import shutil
import socket
import ssl
import subprocess
from collections.abc import Iterator

import pytest
from mesh_testkit import MANIFESTS, Kit

from pytest_istiolab.embedded import tls
from pytest_istiolab.embedded.listeners import ListenerManager
from pytest_istiolab.security import LabCertificates
from pytest_istiolab.traffic.tls import HttpsResult, https_get

LAB = MANIFESTS / "lab06-tls-ingress"
HTTPBIN = "httpbin.example.com"
HELLOWORLD = "helloworld-v1.example.com"


@pytest.fixture(scope="module")
def certs() -> Iterator[LabCertificates]:
    made = LabCertificates()
    yield made
    made.remove()


def put_secret(kit: Kit, name: str, data: dict[str, bytes], kind: str = "Opaque") -> None:
    rt = kit.rtype("", "secrets")
    if kit.store.try_get(rt, "istio-system", name) is not None:
        kit.store.delete(rt, "istio-system", name)
    kit.store.create(rt, {"metadata": {"name": name, "namespace": "istio-system"}, "type": kind,
                          "data": {k: base64.b64encode(v).decode() for k, v in data.items()}},
                     "istio-system")


def tls_pair(cred) -> dict[str, bytes]:  # type: ignore[no-untyped-def]
    return {"tls.crt": cred.cert_pem, "tls.key": cred.key_pem}


@pytest.fixture
def kit(certs: LabCertificates) -> Kit:
    k = Kit(free_node_ports=True)
    k.deploy("lab06-tls-ingress/sdshttpbin.yaml")
    k.deploy("lab06-tls-ingress/helloworld-v1.yaml")
    put_secret(k, "httpbin-credential", tls_pair(certs.httpbin), "kubernetes.io/tls")
    put_secret(k, "helloworld-credential", tls_pair(certs.helloworld), "kubernetes.io/tls")
    k.apply((LAB / "mygatewayv1.yaml").read_text())
    k.apply((LAB / "sdsvirtualserver.yaml").read_text())
    k.apply((LAB / "helloworld-v1vs.yaml").read_text())
    return k


@pytest.fixture
def listeners(kit: Kit) -> Iterator[ListenerManager]:
    manager = ListenerManager(kit.rt).start()
    yield manager
    manager.stop()


@pytest.fixture
def port(kit: Kit, listeners: ListenerManager) -> int:
    number = kit.node_port("istio-ingressgateway", "https")
    assert listeners.ports[number].tls
    return number


def handshake(port: int, sni: str | None, ca, *, alpn=("h2", "http/1.1"),  # type: ignore[no-untyped-def]
              client=None, tls12: bool = False) -> ssl.SSLSocket:
    ctx = ssl.create_default_context(cafile=str(ca.cert_path))
    ctx.check_hostname = False  # CN-only certificates (D-14)
    ctx.set_alpn_protocols(list(alpn))
    if tls12:
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    if client is not None:
        ctx.load_cert_chain(str(client.cert_path), str(client.key_path))
    raw = socket.create_connection(("127.0.0.1", port), timeout=5)
    return ctx.wrap_socket(raw, server_hostname=sni)


def subject_cn(sock: ssl.SSLSocket) -> str:
    peer = sock.getpeercert() or {}
    return next(v for rdn in peer["subject"] for k, v in rdn if k == "commonName")


def http11(sock: ssl.SSLSocket, host: str, path: str) -> bytes:
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


# ------------------------------------------------------------------ python ssl
def test_sni_picks_each_hosts_certificate(port: int, certs: LabCertificates) -> None:
    with handshake(port, HTTPBIN, certs.root) as s:
        assert subject_cn(s) == HTTPBIN and s.selected_alpn_protocol() == "h2"
    with handshake(port, HELLOWORLD, certs.root) as s:
        assert subject_cn(s) == HELLOWORLD


@pytest.mark.parametrize("sni", [None, "unknown.example.com"])
def test_no_matching_server_resets_after_the_client_hello(port: int, certs: LabCertificates,
                                                          sni: str | None) -> None:
    with pytest.raises(ConnectionResetError):
        handshake(port, sni, certs.root)


def test_http11_inside_tls_for_clients_without_h2(port: int, certs: LabCertificates) -> None:
    with handshake(port, HTTPBIN, certs.root, alpn=("http/1.1",)) as s:
        assert s.selected_alpn_protocol() == "http/1.1"
        answer = http11(s, HTTPBIN, "/status/418")
    assert answer.startswith(b"HTTP/1.1 418 ")
    assert b"server: istio-envoy" in answer.lower() and b"-=[ teapot ]=-" in answer


def test_the_route_table_is_the_sni_servers_own(port: int, certs: LabCertificates) -> None:
    """Connected with httpbin's SNI, a Host of helloworld is routed by httpbin's server: its
    VirtualService has no /hello, so 404 NR (Envoy gives each HTTPS server its own routes)."""
    with handshake(port, HTTPBIN, certs.root, alpn=("http/1.1",)) as s:
        answer = http11(s, HELLOWORLD, "/hello")
    assert answer.startswith(b"HTTP/1.1 404 ")


def test_generic_cert_and_key_come_before_tls_crt(kit: Kit, port: int,
                                                  certs: LabCertificates) -> None:
    put_secret(kit, "httpbin-credential", {**tls_pair(certs.httpbin),
                                            "cert": certs.helloworld.cert_pem,
                                            "key": certs.helloworld.key_pem})
    with handshake(port, HTTPBIN, certs.root) as s:
        assert subject_cn(s) == HELLOWORLD  # istiod's ExtractCertInfo: cert/key first


def test_a_replaced_secret_is_served_on_the_next_handshake(kit: Kit, port: int,
                                                           listeners: ListenerManager,
                                                           certs: LabCertificates) -> None:
    server = listeners._servers[port]
    with handshake(port, HTTPBIN, certs.root) as s:
        assert subject_cn(s) == HTTPBIN
    put_secret(kit, "httpbin-credential", tls_pair(certs.new_httpbin), "kubernetes.io/tls")
    with handshake(port, HTTPBIN, certs.new_root) as s:
        assert subject_cn(s) == HTTPBIN
    with pytest.raises(ssl.SSLCertVerificationError, match="signature failure"):
        handshake(port, HTTPBIN, certs.root)
    assert listeners._servers[port] is server  # nothing restarted


@pytest.mark.parametrize("problem", ["missing", "no-keys", "garbage"])
def test_an_unusable_credential_resets_and_says_why(kit: Kit, port: int, listeners,  # type: ignore[no-untyped-def]
                                                    certs: LabCertificates, problem: str) -> None:
    rt = kit.rtype("", "secrets")
    if problem == "missing":
        kit.store.delete(rt, "istio-system", "httpbin-credential")
    elif problem == "no-keys":
        put_secret(kit, "httpbin-credential", {"certificate": certs.httpbin.cert_pem})
    else:
        put_secret(kit, "httpbin-credential", {"tls.crt": b"not a certificate",
                                                "tls.key": certs.httpbin.key_pem})
    with pytest.raises(ConnectionResetError):
        handshake(port, HTTPBIN, certs.root)
    why = listeners.credentials.problems["istio-system/httpbin-credential"]
    assert "httpbin-credential" in why and "PRIVATE KEY" not in why
    with handshake(port, HELLOWORLD, certs.root) as s:  # the other server is unaffected
        assert subject_cn(s) == HELLOWORLD


@pytest.fixture
def mutual(kit: Kit, certs: LabCertificates) -> None:
    put_secret(kit, "httpbin-credential", {**tls_pair(certs.httpbin),
                                            "ca.crt": certs.root.cert_pem})
    kit.apply((LAB / "mygatewayv2.yaml").read_text())


def test_mutual_accepts_the_client_certificate(mutual, port: int,  # type: ignore[no-untyped-def]
                                               certs: LabCertificates) -> None:
    with handshake(port, HTTPBIN, certs.root, alpn=("http/1.1",), client=certs.client) as s:
        assert http11(s, HTTPBIN, "/status/418").startswith(b"HTTP/1.1 418 ")


def test_mutual_tls13_without_certificate_gets_certificate_required(
        mutual, port: int, certs: LabCertificates) -> None:  # type: ignore[no-untyped-def]
    with handshake(port, HTTPBIN, certs.root, alpn=("http/1.1",)) as s:  # completes client-side
        with pytest.raises(ssl.SSLError, match="CERTIFICATE_REQUIRED"):
            http11(s, HTTPBIN, "/status/418")


def test_mutual_tls12_without_certificate_fails_the_handshake(
        mutual, port: int, certs: LabCertificates) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ssl.SSLError, match="HANDSHAKE_FAILURE"):
        handshake(port, HTTPBIN, certs.root, tls12=True)


def test_mutual_reads_the_ca_from_a_cacert_secret_first(kit: Kit, port: int,
                                                        certs: LabCertificates) -> None:
    """``<name>-cacert`` with key ``cacert`` wins over the main Secret's ``ca.crt``."""
    put_secret(kit, "httpbin-credential", {**tls_pair(certs.httpbin),
                                            "ca.crt": certs.new_root.cert_pem})
    put_secret(kit, "httpbin-credential-cacert", {"cacert": certs.root.cert_pem})
    kit.apply((LAB / "mygatewayv2.yaml").read_text())
    with handshake(port, HTTPBIN, certs.root, alpn=("http/1.1",), client=certs.client) as s:
        assert http11(s, HTTPBIN, "/status/418").startswith(b"HTTP/1.1 418 ")


def test_mutual_without_any_ca_has_no_filter_chain(kit: Kit, port: int,
                                                   certs: LabCertificates) -> None:
    kit.apply((LAB / "mygatewayv2.yaml").read_text())  # the tls Secret has no ca.crt
    with pytest.raises(ConnectionResetError):
        handshake(port, HTTPBIN, certs.root, client=certs.client)


@pytest.mark.parametrize("use_curl", [True, False], ids=["curl", "python"])
def test_both_clients_report_the_manuals_outcomes(kit: Kit, port: int, certs: LabCertificates,
                                                  use_curl: bool) -> None:
    """traffic.tls.https_get: curl and the Python fallback agree on exit codes (D-15)."""
    if use_curl and shutil.which("curl") is None:
        pytest.skip("no curl")

    def get(host: str, ca, client=None) -> HttpsResult:  # type: ignore[no-untyped-def]
        return https_get(host, port, "127.0.0.1", "/hello" if host == HELLOWORLD else
                         "/status/418", ca.cert_path, cert=client and client.cert_path,
                         key=client and client.key_path, use_curl=use_curl)

    hello = get(HELLOWORLD, certs.root)
    assert (hello.exit_code, hello.status, hello.http_version, hello.alpn) == (0, 200, "2", "h2")
    assert hello.subject == "CN=helloworld-v1.example.com, O=helloworld organization"
    assert hello.issuer == "O=example Inc., CN=example.com"
    assert hello.body.startswith("Hello version: v1, instance: helloworld-v1-")
    assert (get("unknown.example.com", certs.root).exit_code,
            get(HTTPBIN, certs.new_root).exit_code) == (35, 35)
    put_secret(kit, "httpbin-credential", {**tls_pair(certs.httpbin),
                                            "ca.crt": certs.root.cert_pem})
    kit.apply((LAB / "mygatewayv2.yaml").read_text())
    rejected = get(HTTPBIN, certs.root)
    assert (rejected.exit_code, rejected.status) == (56, None), rejected.describe()
    accepted = get(HTTPBIN, certs.root, certs.client)
    assert (accepted.exit_code, accepted.status) == (0, 418), accepted.describe()
    assert "-=[ teapot ]=-" in accepted.body


# ------------------------------------------------------------------ openssl s_client
needs_openssl = pytest.mark.skipif(shutil.which("openssl") is None, reason="no openssl")


def s_client(port: int, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", *args],
                          input="", capture_output=True, text=True, timeout=20)


@needs_openssl
def test_s_client_sees_the_manuals_chain(port: int, certs: LabCertificates) -> None:
    done = s_client(port, "-servername", HTTPBIN, "-CAfile", str(certs.root.cert_path),
                    "-alpn", "h2,http/1.1")
    out = done.stdout + done.stderr
    assert "depth=1 O = example Inc., CN = example.com" in out
    assert "depth=0 CN = httpbin.example.com, O = httpbin organization" in out
    assert "issuer=O = example Inc., CN = example.com" in out
    assert "Verify return code: 0 (ok)" in out and "ALPN protocol: h2" in out


@needs_openssl
def test_s_client_without_the_ca_cannot_verify(port: int) -> None:
    out = s_client(port, "-servername", HTTPBIN).stdout
    assert "Verify return code: 21 (unable to verify the first certificate)" in out


@needs_openssl
def test_s_client_with_the_rotated_ca_sees_a_signature_failure(port: int,
                                                                certs: LabCertificates) -> None:
    out = s_client(port, "-servername", HTTPBIN, "-CAfile", str(certs.new_root.cert_path)).stdout
    assert "Verify return code: 7 (certificate signature failure)" in out


@needs_openssl
def test_s_client_with_an_unknown_name_is_reset(port: int, certs: LabCertificates) -> None:
    done = s_client(port, "-servername", "unknown.example.com")
    assert done.returncode == 1
    assert "errno=104" in done.stderr and "no peer certificate available" in done.stdout


def test_tls_faults_are_named() -> None:
    from pytest_istiolab.embedded import EmbeddedCluster

    with pytest.raises(ValueError, match="known: ignore-sni"):
        EmbeddedCluster.break_tls("no-such-fault")
    assert not tls.FAULTS
