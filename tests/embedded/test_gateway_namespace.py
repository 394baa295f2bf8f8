"""The Helm layout: ``components.ingressGateways[0].namespace=istio-ingress``.

istioctl 1.26 renders the ingress gateway into that namespace but creates only istio-system,
so the namespace must exist first; pruning (a reinstall) and ``uninstall --purge`` find the
gateway's objects there by their component labels.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from istioctl_testkit import Env, istioctl_env

from pytest_istiolab.embedded.install import InstallError, render_install

GATEWAY_KINDS = [("", "serviceaccounts"), ("", "services"), ("apps", "deployments"),
                 ("rbac.authorization.k8s.io", "roles"),
                 ("rbac.authorization.k8s.io", "rolebindings"),
                 ("policy", "poddisruptionbudgets"), ("autoscaling", "horizontalpodautoscalers")]
SET_NS = "components.ingressGateways[0].namespace=istio-ingress"


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    with istioctl_env(tmp_path) as started:
        yield started


def _gateway_objects(env: Env, ns: str) -> list[str]:
    store = env.runtime.store
    return sorted(f"{o['kind']}/{o['metadata']['name']}" for group, res in GATEWAY_KINDS
                  for o in store.by_kind(group, res, ns)
                  if "ingressgateway" in o["metadata"]["name"])


def test_render_puts_every_ingress_object_in_its_namespace() -> None:
    objs = render_install("default", {"components.ingressGateways[0].namespace":
                                      "istio-ingress"})
    ingress = [o for o in objs if o["metadata"]["labels"].get("operator.istio.io/component")
               == "IngressGateways"]
    assert sorted(o["kind"] for o in ingress) == [
        "Deployment", "HorizontalPodAutoscaler", "PodDisruptionBudget", "Role", "RoleBinding",
        "Service", "ServiceAccount"]
    assert {o["metadata"]["namespace"] for o in ingress} == {"istio-ingress"}
    env_vars = {e["name"]: e.get("value") for e in ingress[[o["kind"] for o in ingress].index(
        "Deployment")]["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env_vars["ISTIO_META_OWNER"].endswith(
        "/namespaces/istio-ingress/deployments/istio-ingressgateway")
    assert {o["metadata"]["namespace"] for o in objs if o not in ingress
            and "namespace" in o["metadata"]} == {"istio-system"}


def test_the_file_form_sets_the_namespace_too() -> None:
    objs = render_install("default", operator={"spec": {"components": {"ingressGateways": [
        {"name": "istio-ingressgateway", "enabled": True, "namespace": "istio-ingress"}]}}})
    assert any(o["kind"] == "Deployment" and o["metadata"]["namespace"] == "istio-ingress"
               for o in objs)


def test_an_egress_gateway_namespace_is_refused_not_ignored() -> None:
    with pytest.raises(InstallError, match="does not model an egress gateway outside"):
        render_install("demo", {"components.egressGateways[0].namespace": "istio-egress"})


def test_install_prune_and_purge_with_the_gateway_in_istio_ingress(env: Env) -> None:
    missing = env.istioctl("install", "-y", "--set", SET_NS)
    assert missing.returncode != 0
    assert 'namespaces "istio-ingress" not found' in missing.stderr, missing.stderr
    assert "create it first, e.g. kubectl create namespace istio-ingress" in missing.stderr
    store = env.runtime.store
    assert not store.by_kind("apps", "deployments", "istio-system"), "half-installed"

    env.runtime.store.create(store.resource_type("", "namespaces"),
                             {"apiVersion": "v1", "kind": "Namespace",
                              "metadata": {"name": "istio-ingress"}})
    helm = env.istioctl("install", "-y", "--set", SET_NS)
    assert helm.returncode == 0, helm.stderr
    want = ["Deployment/istio-ingressgateway", "HorizontalPodAutoscaler/istio-ingressgateway",
            "PodDisruptionBudget/istio-ingressgateway", "Role/istio-ingressgateway-sds",
            "RoleBinding/istio-ingressgateway-sds", "Service/istio-ingressgateway",
            "ServiceAccount/istio-ingressgateway-service-account"]
    assert _gateway_objects(env, "istio-ingress") == want
    assert _gateway_objects(env, "istio-system") == []
    pods = [p for p in store.by_kind("", "pods", "istio-ingress")
            if (p.get("status") or {}).get("phase") == "Running"]
    assert pods, "the gateway pod runs in istio-ingress"

    back = env.istioctl("install", "-y")
    assert back.returncode == 0, back.stderr
    assert "Removed apps/v1, Kind=Deployment/istio-ingressgateway.istio-ingress." in back.stdout
    assert _gateway_objects(env, "istio-ingress") == []
    assert _gateway_objects(env, "istio-system") == want

    again = env.istioctl("install", "-y", "--set", SET_NS)
    assert again.returncode == 0, again.stderr
    assert _gateway_objects(env, "istio-system") == []
    purge = env.istioctl("uninstall", "--purge", "-y")
    assert purge.returncode == 0, purge.stderr
    assert _gateway_objects(env, "istio-ingress") == []
    assert _gateway_objects(env, "istio-system") == []
