"""A lab-shaped module that changes mesh-wide state, for the cleanup proof (not a manual lab).

Like Labs 3.4 (REGISTRY_ONLY), 7 (mesh-wide STRICT) and 9.1 (JSON access logs) it changes the
mesh config through ``mesh_wide``, applies a mesh-wide PeerAuthentication into istio-system, and
deploys sleep and Bookinfo into its own namespace. Named ``lab_*.py`` so that it runs only when
the cleanup proof passes it to pytest explicitly.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = [pytest.mark.lab(7)]

MESH_STRICT = Path(__file__).resolve().parent / "manifests" / "peer-authentication-mesh-strict.yaml"
MESH_CHANGES = {"outboundTrafficPolicy.mode": "REGISTRY_ONLY", "accessLogEncoding": "JSON"}


@pytest.fixture
def mesh_strict(apply, mesh_wide):
    """Mesh-wide STRICT mTLS for one test (removed by ``apply`` at its end)."""
    return apply(MESH_STRICT, namespace="istio-system")


def test_sleep_reaches_the_product_page(sleep, bookinfo):
    result = sleep.curl("http://productpage:9080/productpage", write_out="%{http_code}")
    assert (result.exit_code, result.stdout) == (0, "200")


def test_mesh_config_changes_are_visible(mesh_wide, istio):
    mesh_wide.set_mesh_config(MESH_CHANGES)
    mesh = istio.mesh_config()
    assert (mesh["outboundTrafficPolicy"], mesh["accessLogEncoding"]) == (
        {"mode": "REGISTRY_ONLY"}, "JSON")


def test_mesh_wide_strict_is_in_the_root_namespace(mesh_strict, kube, istio):
    policy = kube.get("security.istio.io/v1", "PeerAuthentication", "default", "istio-system")
    assert policy["spec"]["mtls"]["mode"] == "STRICT"
    assert istio.mesh_config()["outboundTrafficPolicy"] == {"mode": "REGISTRY_ONLY"}
