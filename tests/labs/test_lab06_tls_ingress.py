"""Lab 6 — TLS ingress gateways (manual: "验证：配置 TLS 安全网关"). Checks L6.1-C01..C03,
L6.2-C01..C02, L6.3-C01..C02, and companions L6-X01, L6-X02.

The manual creates certificates with openssl (the ``certs`` fixture makes the same ones,
field for field: the ``example.com`` root, ``httpbin.example.com`` with serial 0,
``helloworld-v1.example.com`` and ``client.example.com`` with serial 1, no subjectAltName,
and ``new_certificates/`` with a second CA of the same DN), creates the gateway's
credentials as Secrets in ``istio-system`` (``kubectl create secret tls``; ``generic`` with
``ca.crt`` for MUTUAL), applies ``sdsgateway.yaml`` etc. and runs::

    curl -v -HHost:H --resolve "H:$SECURE_INGRESS_PORT:$INGRESS_HOST" --cacert CA \\
        [--cert client.example.com.crt --key client.example.com.key] https://H:$PORT/path

Here the Deployments go to the lab's namespace (the manual's ``default``) and the curl is
the test host's real curl (Python ``ssl``/httpx with the same inputs where there is no
curl). Every test configures what it needs, then polls until the outcome holds (a real
mesh pushes Gateway and Secret changes a moment after the API write), so each passes alone
and in any order. Assertions are semantic (D-15: curl/OpenSSL versions print differently):

* C01, 6.2, 6.3-C02: exit 0, TLS with ALPN ``h2``, ``HTTP/2 418`` (``HTTP/2 200`` for
  helloworld), ``server: istio-envoy``, the server certificate's subject and issuer (so SNI
  chose the right credential), the teapot / ``Hello version: v1, instance: helloworld-v1-…``.
* 6.1-C02/C03: after the Secret is replaced (delete + create, as the manual does), the new
  CA validates and the old CA fails in the handshake: exit 35 with OpenSSL 3 (a signature
  failure, the rotated CA has the same DN, D-16) or 60 on other stacks; no HTTP response;
  the gateway pod is the same pod with the same restart count (SDS, no restart).
* 6.3-C01: without a client certificate the request gets no HTTP response, exit ∈ {56 (TLS
  1.3 ``certificate required`` alert, the manual), 16, 35} (D-15); curl saw ``Request CERT``.
* L6-X01 (beyond the manual): a name no server has gets no certificate at all: the gateway
  closes after the ClientHello (curl exit 35), as Envoy does with no matching filter chain;
  this is what SNI routing means, and what a listener ignoring SNI gets wrong.
* L6-X02 (bad input): a ``credentialName`` whose Secret is missing or lacks the keys gives
  the same handshake failure (exit 35), and the failure message names the Secret.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from pytest_istiolab import waiting
from pytest_istiolab.kube import Applier, manifests
from pytest_istiolab.traffic import HttpsResult, https_get

pytestmark = [pytest.mark.lab(6), pytest.mark.requires("ingress-gateway")]

LAB = "lab06-tls-ingress/"
HTTPBIN = "httpbin.example.com"
HELLOWORLD = "helloworld-v1.example.com"
HTTPBIN_CREDENTIAL = "httpbin-credential"
HELLOWORLD_CREDENTIAL = "helloworld-credential"
ROOT_DN = "O=example Inc., CN=example.com"
HTTPBIN_DN = "CN=httpbin.example.com, O=httpbin organization"
HELLOWORLD_DN = "CN=helloworld-v1.example.com, O=helloworld organization"
TEAPOT = "-=[ teapot ]=-"
REJECTED_OLD_CA = {35, 60}
SIGNATURE_FAILURES = ("padding", "signature", "data too large for modulus")
REJECTED_NO_CLIENT_CERT = {56, 16, 35}
NO_FILTER_CHAIN = 35


# ------------------------------------------------------------------ fixtures and helpers
@pytest.fixture(scope="module")
def apps(cluster, istio, lab_namespace, istio_settings) -> Iterator[Applier]:
    """``sdshttpbin.yaml`` and ``helloworld-v1.yaml`` deployed and ready."""
    applier = Applier(cluster.kube, lab_namespace)
    applier(LAB + "sdshttpbin.yaml")
    applier(LAB + "helloworld-v1.yaml")
    cluster.kube.wait_for_deployments(lab_namespace, ["httpbin", "helloworld-v1"])
    yield applier
    if istio_settings.keep != "always":
        applier.cleanup()


def until(cluster, check: Callable[[], Any], description: str) -> Any:
    t = cluster.timeouts
    return waiting.eventually(check, timeout=t.eventually, interval=t.poll_interval,
                              consecutive=t.consecutive, description=description)


def get(ingress, host: str, path: str, ca, client=None) -> HttpsResult:  # type: ignore[no-untyped-def]
    """The manual's curl: ``--resolve host:$SECURE_INGRESS_PORT:$INGRESS_HOST --cacert ca``."""
    return https_get(host, ingress.secure_port, ingress.host, path, ca.cert_path,
                     cert=client.cert_path if client else None,
                     key=client.key_path if client else None)


def served(result: HttpsResult, status: int, subject: str, credential: str) -> HttpsResult:
    """The request got ``status`` over HTTP/2 from the gateway, with the ``subject`` cert."""
    assert result.exit_code == 0 and result.status == status, (
        f"expected HTTP {status} over TLS; got {result.describe()}. A handshake failure "
        f"(exit 35) means the gateway has no usable credential: is the Secret "
        f"{credential} present with tls.crt and tls.key in the gateway's namespace?")
    assert (result.subject, result.issuer) == (subject, ROOT_DN), result.describe()
    assert (result.alpn, result.http_version) == ("h2", "2"), (
        f"the gateway offers h2 (ALPN) and curl uses it: {result.describe()}")
    assert result.headers.get("server") == "istio-envoy", result.headers
    return result


def teapot(result: HttpsResult, credential: str = HTTPBIN_CREDENTIAL) -> HttpsResult:
    served(result, 418, HTTPBIN_DN, credential)
    assert result.headers.get("x-more-info") == "http://tools.ietf.org/html/rfc2324", \
        result.headers
    assert TEAPOT in result.body and result.headers.get("content-length") == "135", (
        f"not httpbin's ASCII teapot ({result.headers.get('content-length')} bytes): "
        f"{result.body[:200]!r}")
    return result


def no_response(result: HttpsResult, codes: set[int], why: str) -> HttpsResult:
    assert result.status is None and result.exit_code in codes, (
        f"{why}: expected no HTTP response and curl exit in {sorted(codes)}; "
        f"got {result.describe()}")
    return result


def gateway_pod(cluster) -> tuple[str, str, int]:  # type: ignore[no-untyped-def]
    pod = cluster.kube.list("v1", "Pod", cluster.ingress.namespace, "istio=ingressgateway")[0]
    restarts = sum(int(s.get("restartCount", 0))
                   for s in (pod.get("status") or {}).get("containerStatuses") or [])
    return pod["metadata"]["name"], pod["metadata"]["uid"], restarts


@pytest.fixture
def single_host(apps, apply, gateway_credentials, certs, ingress, cluster) -> None:
    """6.1: the tls Secret from the original files, ``sdsgateway.yaml``, ``sdsvirtualserver``."""
    gateway_credentials.replace_tls(HTTPBIN_CREDENTIAL, certs.httpbin)
    apply(LAB + "sdsgateway.yaml")
    apply(LAB + "sdsvirtualserver.yaml")


# ------------------------------------------------------------------ Lab 6.1
@pytest.mark.check("L6.1-C01")
def test_https_with_the_original_ca_gets_the_teapot(cluster, ingress, certs, single_host) -> None:
    result = until(cluster, lambda: teapot(get(ingress, HTTPBIN, "/status/418", certs.root)),
                   "https://httpbin.example.com/status/418 answers 418 over TLS")
    if result.client == "curl":
        assert "SSL certificate verify ok" in result.stderr, result.stderr[-2000:]


@pytest.fixture
def rotated(cluster, ingress, certs, gateway_credentials, single_host) -> tuple[str, str, int]:
    """6.1's rotation: served with the original CA first, then the Secret deleted and created
    again from ``new_certificates/``. Yields the gateway pod (name, uid, restarts) before."""
    until(cluster, lambda: teapot(get(ingress, HTTPBIN, "/status/418", certs.root)),
          "the original credential is served")
    before = gateway_pod(cluster)
    gateway_credentials.replace_tls(HTTPBIN_CREDENTIAL, certs.new_httpbin)
    return before


def assert_no_restart(cluster, before: tuple[str, str, int]) -> None:  # type: ignore[no-untyped-def]
    assert gateway_pod(cluster) == before, (
        f"the gateway pod changed (before: {before}, now: {gateway_pod(cluster)}): a Secret "
        "rotation must take effect through SDS, without restarting the gateway")


@pytest.mark.check("L6.1-C02")
def test_after_rotation_the_new_ca_gets_the_teapot(cluster, ingress, certs, rotated) -> None:
    def new_ca_served() -> HttpsResult:
        result = get(ingress, HTTPBIN, "/status/418", certs.new_root)
        assert result.exit_code == 0, (
            f"the rotated certificate is not served yet (the gateway must pick up the new "
            f"Secret {ingress.namespace}/{HTTPBIN_CREDENTIAL}): {result.describe()}")
        return teapot(result)

    until(cluster, new_ca_served, "the rotated credential is served")
    assert_no_restart(cluster, rotated)


@pytest.mark.check("L6.1-C03")
def test_after_rotation_the_old_ca_is_rejected(cluster, ingress, certs, rotated) -> None:
    """Between the Secret's delete and its re-create the gateway has no credential for the
    host and resets the handshake (curl 35 as well): that is not the old CA failing the
    rotated certificate, so only a rejection on the certificate itself ends the poll."""
    def old_ca_rejected() -> HttpsResult:
        result = no_response(get(ingress, HTTPBIN, "/status/418", certs.root), REJECTED_OLD_CA,
                             "the old CA must not validate the rotated certificate")
        if result.client == "curl" and result.exit_code == 35:
            # OpenSSL 3: the same-DN CA fails the signature check in the handshake (D-16);
            # which RSA error it prints depends on the two keys: "invalid padding", or "data
            # too large for modulus" when the new signature exceeds the old key's modulus
            assert any(text in result.stderr for text in SIGNATURE_FAILURES), (
                f"the handshake failed, but not on the rotated certificate's signature "
                f"(no credential served yet?): {result.error}")
        return result

    until(cluster, old_ca_rejected, "the old CA fails the handshake on the rotated certificate")
    assert_no_restart(cluster, rotated)


# ------------------------------------------------------------------ Lab 6.2
@pytest.fixture
def two_hosts(apps, apply, gateway_credentials, certs) -> None:
    """6.2: both tls Secrets, ``mygatewayv1.yaml``, the httpbin and helloworld routes."""
    gateway_credentials.replace_tls(HTTPBIN_CREDENTIAL, certs.httpbin)
    gateway_credentials.replace_tls(HELLOWORLD_CREDENTIAL, certs.helloworld)
    apply(LAB + "mygatewayv1.yaml")
    apply(LAB + "sdsvirtualserver.yaml")
    apply(LAB + "helloworld-v1vs.yaml")


@pytest.mark.check("L6.2-C01")
def test_helloworld_over_https_by_sni(cluster, ingress, certs, two_hosts, lab_namespace) -> None:
    def hello() -> HttpsResult:
        result = served(get(ingress, HELLOWORLD, "/hello", certs.root), 200, HELLOWORLD_DN,
                        HELLOWORLD_CREDENTIAL)
        assert result.headers.get("content-type") == "text/html; charset=utf-8", result.headers
        return result

    result = until(cluster, hello, "https://helloworld-v1.example.com/hello answers 200")
    pod = cluster.kube.first_pod(lab_namespace, "app=helloworld-v1")
    assert result.body == f"Hello version: v1, instance: {pod}\n", result.body
    assert result.headers.get("content-length") == str(len(result.body.encode()))


@pytest.mark.check("L6.2-C02")
def test_httpbin_still_served_on_the_same_port(cluster, ingress, certs, two_hosts) -> None:
    until(cluster, lambda: teapot(get(ingress, HTTPBIN, "/status/418", certs.root)),
          "httpbin.example.com still answers 418 next to helloworld")


# ------------------------------------------------------------------ Lab 6.3
@pytest.fixture
def mutual(apps, apply, gateway_credentials, certs, cluster, ingress) -> None:
    """6.3: the generic Secret with ``ca.crt``, ``mygatewayv2.yaml`` (MUTUAL), in effect: a
    request with the client certificate is answered (so a rejection is MUTUAL's)."""
    gateway_credentials.replace_generic(HTTPBIN_CREDENTIAL, {
        "tls.key": certs.httpbin.key_pem, "tls.crt": certs.httpbin.cert_pem,
        "ca.crt": certs.root.cert_pem})
    apply(LAB + "mygatewayv2.yaml")
    apply(LAB + "sdsvirtualserver.yaml")


@pytest.mark.check("L6.3-C01")
def test_mutual_tls_without_a_client_certificate_is_rejected(cluster, ingress, certs,
                                                              mutual) -> None:
    until(cluster, lambda: teapot(get(ingress, HTTPBIN, "/status/418", certs.root, certs.client)),
          "the MUTUAL gateway answers a client with its certificate")
    result = until(cluster, lambda: no_response(
        get(ingress, HTTPBIN, "/status/418", certs.root), REJECTED_NO_CLIENT_CERT,
        "MUTUAL requires a client certificate"), "a client without a certificate is rejected")
    if result.client == "curl":
        assert "Request CERT" in result.stderr, "the gateway did not ask for a certificate"
        if result.exit_code == 56:
            assert "certificate required" in result.stderr, result.error


@pytest.mark.check("L6.3-C02")
def test_mutual_tls_with_the_client_certificate_gets_the_teapot(cluster, ingress, certs,
                                                                 mutual) -> None:
    until(cluster, lambda: teapot(get(ingress, HTTPBIN, "/status/418", certs.root, certs.client)),
          "the client certificate is accepted")


# ------------------------------------------------------------------ companions
@pytest.mark.check("L6-X01")
def test_a_name_no_server_has_gets_no_certificate(cluster, ingress, certs, single_host) -> None:
    """SNI routing: ``unknown.example.com`` matches no HTTPS server, so Envoy has no filter
    chain and closes the connection after the ClientHello (curl exit 35)."""
    until(cluster, lambda: teapot(get(ingress, HTTPBIN, "/status/418", certs.root)),
          "httpbin.example.com is served")
    result = get(ingress, "unknown.example.com", "/status/418", certs.root)
    no_response(result, {NO_FILTER_CHAIN}, "no Gateway server has unknown.example.com")
    assert not result.subject, f"a certificate was served for an unknown name: {result.subject}"


@pytest.mark.check("L6-X02")
@pytest.mark.parametrize("problem", ["missing", "without-keys"])
def test_an_unusable_credential_fails_the_handshake(cluster, ingress, certs, apps, apply,
                                                    gateway_credentials, lab_namespace,
                                                    problem: str) -> None:
    """Bad input: ``credentialName`` names a Secret that does not exist, or one without
    ``tls.crt``/``tls.key``: istiod sends no certificate, the handshake fails (exit 35)."""
    name = f"lab6-{problem}-credential"
    if problem == "without-keys":
        gateway_credentials.replace_generic(name, {"certificate": certs.httpbin.cert_pem})
    else:
        gateway_credentials.delete(name)
    doc = copy.deepcopy(manifests.load(LAB + "sdsgateway.yaml")[0])
    doc["spec"]["servers"][0]["tls"]["credentialName"] = name
    applier = apply
    cluster.kube.apply([doc], namespace=lab_namespace)
    applier.applied.append(cluster.kube.ref_for(doc, lab_namespace))
    apply(LAB + "sdsvirtualserver.yaml")
    until(cluster, lambda: no_response(
        get(ingress, HTTPBIN, "/status/418", certs.root), {NO_FILTER_CHAIN},
        f"the Gateway's credential {ingress.namespace}/{name} is {problem}"),
        f"the handshake fails for the {problem} Secret {ingress.namespace}/{name}")
