"""The DynamicClient (discovery cache in tmp_path): CRDs used right after creation, several
served versions, server-side apply."""

from __future__ import annotations

from pathlib import Path

import pytest
from api_testkit import Api, api_fixture, crd  # noqa: F401
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import NotFoundError, ResourceNotFoundError


def _dyn(api: Api, tmp_path: Path) -> DynamicClient:
    return DynamicClient(api.client(), cache_file=str(tmp_path / "discovery.json"))


def test_new_crd_kind_is_usable_at_once(api: Api, tmp_path: Path) -> None:
    dyn = _dyn(api, tmp_path)
    with pytest.raises(ResourceNotFoundError):
        dyn.resources.get(api_version="example.com/v1", kind="Widget")
    crds = dyn.resources.get(api_version="apiextensions.k8s.io/v1",
                             kind="CustomResourceDefinition")
    crds.create(body=crd())
    widgets = dyn.resources.get(api_version="example.com/v1", kind="Widget")
    widgets.create(namespace="default", body={"apiVersion": "example.com/v1", "kind": "Widget",
                                              "metadata": {"name": "w1"}, "spec": {"size": 2}})
    got = widgets.get(namespace="default", name="w1")
    assert got.spec.size == 2 and got.kind == "Widget"
    assert [i.metadata.name for i in widgets.get(namespace="default").items] == ["w1"]


def test_every_served_version_answers_with_its_own_api_version(api: Api, tmp_path: Path) -> None:
    dyn = _dyn(api, tmp_path)
    dyn.resources.get(api_version="apiextensions.k8s.io/v1", kind="CustomResourceDefinition") \
        .create(body=crd(versions=("v1", "v1beta1")))
    beta = dyn.resources.get(api_version="example.com/v1beta1", kind="Widget")
    beta.create(namespace="default", body={"apiVersion": "example.com/v1beta1", "kind": "Widget",
                                           "metadata": {"name": "w"}})
    assert beta.get(namespace="default", name="w").apiVersion == "example.com/v1beta1"
    stable = dyn.resources.get(api_version="example.com/v1", kind="Widget")
    assert stable.get(namespace="default", name="w").apiVersion == "example.com/v1"
    assert beta.get(namespace="default").items[0].apiVersion == "example.com/v1beta1"


def test_server_side_apply_through_the_dynamic_client(api: Api, tmp_path: Path) -> None:
    dyn = _dyn(api, tmp_path)
    services = dyn.resources.get(api_version="v1", kind="Service")
    body = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web",
                                                                "namespace": "default"},
            "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80},
                                                           {"name": "grpc", "port": 90}]}}
    services.server_side_apply(body=body, name="web", namespace="default",
                               field_manager="istiolab", force_conflicts=True)
    body["spec"]["ports"] = [{"name": "http", "port": 80, "targetPort": 8080}]
    out = services.server_side_apply(body=body, name="web", namespace="default",
                                     field_manager="istiolab", force_conflicts=True)
    assert [(p.port, p.targetPort) for p in out.spec.ports] == [(80, 8080)]


def test_delete_of_custom_object_returns_success_status(api: Api, tmp_path: Path) -> None:
    dyn = _dyn(api, tmp_path)
    dyn.resources.get(api_version="apiextensions.k8s.io/v1", kind="CustomResourceDefinition") \
        .create(body=crd())
    widgets = dyn.resources.get(api_version="example.com/v1", kind="Widget")
    widgets.create(namespace="default", body={"apiVersion": "example.com/v1", "kind": "Widget",
                                              "metadata": {"name": "w"}})
    status = widgets.delete(namespace="default", name="w")
    assert (status.kind, status.status) == ("Status", "Success")
    with pytest.raises(NotFoundError):
        widgets.get(namespace="default", name="w")
