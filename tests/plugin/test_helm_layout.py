"""The Helm layout: the ingress gateway in ``istio-ingress``, not ``istio-system`` (issue 16).

A mesh is installed before the run with ``components.ingressGateways[0].namespace=
istio-ingress`` (the namespace created first, as Helm's ``istio-ingress`` chart expects); the
lab checks that reach or read the ingress gateway must pass against it: Lab 2's Gateway, URL
and product page checks, L3.5-C02 (the gateway Service's ports), L3.5-C07 (XFCC names the
gateway's service account) and Lab 6's TLS ingress (credentialName Secrets in the gateway's
namespace). Going red (the other tests): with the suite's ``gateway_namespace`` pinned to
istio-system the ingress checks fail; with the model reading credentialName Secrets from
istio-system instead of the gateway pod's namespace, Lab 6's handshakes fail.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_istiolab.embedded import EmbeddedCluster, tls

REPO = Path(__file__).resolve().parents[2]
LAB2 = "tests/labs/test_lab02_bookinfo.py"
LAB3 = "tests/labs/test_lab03_traffic_management.py"
INGRESS_CHECKS = [
    f"{LAB2}::test_bookinfo_gateway_and_virtual_service",
    f"{LAB2}::test_gateway_url_is_node_address_and_http2_node_port",
    f"{LAB2}::test_product_page_through_the_ingress_gateway",
    f"{LAB3}::test_ingress_gateway_service_ports_give_the_ingress_variables",
    f"{LAB3}::test_headers_for_any_host_from_outside",
    "tests/labs/test_lab06_tls_ingress.py",
]
LAB6_HTTPS = "tests/labs/test_lab06_tls_ingress.py::test_https_with_the_original_ca_gets_the_teapot"
# what goes red quickly (a Service read, or one TLS handshake polled to its timeout)
RED_SELECTION = [f"{LAB2}::test_gateway_url_is_node_address_and_http2_node_port",
                 f"{LAB3}::test_ingress_gateway_service_ports_give_the_ingress_variables",
                 LAB6_HTTPS]
PASSED = 15  # tests the selection holds
RUN_LIMIT = 600.0  # seconds for the lab run on a loaded 2-core machine
STEP_LIMIT = 120.0  # seconds for the istioctl install


@pytest.fixture
def helm_layout(tmp_path: Path) -> Iterator[EmbeddedCluster]:
    """A default mesh whose ingress gateway is in istio-ingress."""
    with EmbeddedCluster(tmp_path / "cluster", seed=1616) as started:
        store = started.runtime.store
        store.create(store.resource_type("", "namespaces"), {
            "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "istio-ingress"}})
        res = subprocess.run([str(started.istioctl), "install", "-y", "--set",
                              "components.ingressGateways[0].namespace=istio-ingress"],
                             capture_output=True, text=True, timeout=STEP_LIMIT,
                             stdin=subprocess.DEVNULL)
        assert res.returncode == 0, res.stderr
        services = store.resource_type("", "services")
        assert store.try_get(services, "istio-ingress", "istio-ingressgateway") is not None
        assert store.try_get(services, "istio-system", "istio-ingressgateway") is None
        yield started


def labs(cluster: EmbeddedCluster, selection: list[str], *extra: str,
         env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rfEs",
            *extra, *selection, "--istio-cluster", "existing", "--istio-context", "embedded",
            "--istio-kubeconfig", str(cluster.kubeconfig), "--istio-install", "never",
            "--istio-profile", "default", "--istio-istioctl", str(cluster.istioctl)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=RUN_LIMIT, cwd=REPO,
                          stdin=subprocess.DEVNULL, env=env)


def failed(res: subprocess.CompletedProcess[str]) -> set[str]:
    """The test ids of the run's ``FAILED``/``ERROR`` summary lines."""
    return {line.split()[1] for line in res.stdout.splitlines()
            if line.startswith(("FAILED ", "ERROR "))}


@pytest.mark.usefixtures("_no_istiolab_env")
def test_the_ingress_checks_pass_with_the_gateway_in_istio_ingress(
        helm_layout: EmbeddedCluster, tmp_path: Path) -> None:
    res = labs(helm_layout, INGRESS_CHECKS)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out
    assert f"{PASSED} passed in" in res.stdout, out  # none skipped


@pytest.mark.usefixtures("_no_istiolab_env")
def test_go_red_the_suite_looking_in_istio_system_only(
        helm_layout: EmbeddedCluster, tmp_path: Path) -> None:
    (tmp_path / "istiolab_pin_namespace.py").write_text(
        "from pytest_istiolab.traffic import ingress\n"
        "ingress.gateway_namespace = lambda kube: 'istio-system'\n")
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{REPO}"}
    res = labs(helm_layout, RED_SELECTION, "-p", "istiolab_pin_namespace", env=env)
    out = res.stdout + res.stderr
    assert res.returncode != 0, out
    assert failed(res) == set(RED_SELECTION), out


@pytest.mark.usefixtures("_no_istiolab_env")
def test_go_red_the_model_reading_credentials_from_istio_system(
        helm_layout: EmbeddedCluster, monkeypatch: pytest.MonkeyPatch) -> None:
    # the embedded cluster serves from this process: its TLS model is patched here
    monkeypatch.setattr(tls, "namespace_of", lambda pod: "istio-system")
    res = labs(helm_layout, [LAB6_HTTPS])
    out = res.stdout + res.stderr
    assert res.returncode != 0, out
    assert failed(res) == {LAB6_HTTPS}, out
