"""PATCH formats and server-side apply: pure functions, then through the kubernetes client."""

from __future__ import annotations

import httpx
import pytest
from api_testkit import Api, api_fixture, crd  # noqa: F401
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from pytest_istiolab.embedded.api.apply import apply_config
from pytest_istiolab.embedded.api.patch import PatchError, json_patch, merge_patch, strategic_merge
from pytest_istiolab.embedded.resources import BUILTIN_TYPES

DEPLOY = {"spec": {"template": {"spec": {"containers": [
    {"name": "app", "image": "a:1", "env": [{"name": "A", "value": "1"}],
     "ports": [{"containerPort": 80}]},
    {"name": "side", "image": "s:1"}]}}}}


def test_merge_patch_merges_maps_deletes_nulls_replaces_lists() -> None:
    out = merge_patch({"a": {"b": 1, "c": 2}, "l": [1, 2]}, {"a": {"b": None, "d": 3}, "l": [9]})
    assert out == {"a": {"c": 2, "d": 3}, "l": [9]}


def test_json_patch_operations_and_failed_test() -> None:
    doc = {"a": [1, 2], "b": {"c": 1}}
    out = json_patch(doc, [{"op": "add", "path": "/a/-", "value": 3},
                           {"op": "replace", "path": "/b/c", "value": 2},
                           {"op": "move", "from": "/b", "path": "/m"},
                           {"op": "remove", "path": "/a/0"},
                           {"op": "add", "path": "/x~1y", "value": True}])
    assert out == {"a": [2, 3], "m": {"c": 2}, "x/y": True}
    with pytest.raises(PatchError):
        json_patch(doc, [{"op": "test", "path": "/a/0", "value": 7}])
    with pytest.raises(PatchError):
        json_patch(doc, [{"op": "remove", "path": "/zzz"}])


def test_strategic_merge_merges_containers_env_and_ports_by_key() -> None:
    patch = {"spec": {"template": {"spec": {"containers": [
        {"name": "app", "image": "a:2", "env": [{"name": "B", "value": "2"}],
         "ports": [{"containerPort": 80, "name": "http"}]}]}}}}
    out = strategic_merge(DEPLOY, patch)
    app, side = out["spec"]["template"]["spec"]["containers"]
    assert (app["image"], side["image"]) == ("a:2", "s:1")
    assert [e["name"] for e in app["env"]] == ["A", "B"]
    assert app["ports"] == [{"containerPort": 80, "name": "http"}]


def test_strategic_merge_directives() -> None:
    delete = {"spec": {"template": {"spec": {"containers": [{"name": "side", "$patch": "delete"}],
                                             "$setElementOrder/containers": [{"name": "app"}]}}}}
    out = strategic_merge(DEPLOY, delete)
    assert [c["name"] for c in out["spec"]["template"]["spec"]["containers"]] == ["app"]
    replaced = strategic_merge({"m": {"a": 1, "b": 2}}, {"m": {"$patch": "replace", "c": 3}})
    assert replaced == {"m": {"c": 3}}
    retained = strategic_merge({"v": {"a": 1, "b": 2}}, {"v": {"$retainKeys": ["c"], "c": 3}})
    assert retained == {"v": {"c": 3}}
    order = strategic_merge({"f": ["a", "b"]}, {"$deleteFromPrimitiveList/f": ["a"]})
    assert order == {"f": ["b"]}


def test_service_ports_merge_by_port() -> None:
    svc = {"spec": {"ports": [{"port": 80, "name": "http"}, {"port": 443, "name": "https"}]}}
    out = strategic_merge(svc, {"spec": {"ports": [{"port": 443, "nodePort": 30443}]}})
    assert out["spec"]["ports"][1] == {"port": 443, "name": "https", "nodePort": 30443}


def test_apply_removes_what_the_same_manager_dropped_but_keeps_others() -> None:
    rt = next(t for t in BUILTIN_TYPES if t.key == ("", "configmaps"))
    live = {"metadata": {"name": "a", "labels": {"mine": "1", "theirs": "1"}},
            "data": {"x": "1", "y": "2", "z": "other"}}
    previous = {"metadata": {"name": "a", "labels": {"mine": "1"}}, "data": {"x": "1", "y": "2"}}
    config = {"metadata": {"name": "a"}, "data": {"x": "9"}}
    out = apply_config(rt, live, config, previous)
    assert out["data"] == {"x": "9", "z": "other"}
    assert out["metadata"]["labels"] == {"theirs": "1"}


def _deploy_body() -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}}, "spec": {
                         "containers": [{"name": "web", "image": "nginx:1",
                                         "env": [{"name": "A", "value": "1"}]},
                                        {"name": "log", "image": "busybox"}]}}}}


def test_typed_patch_is_strategic_for_deployments(api: Api) -> None:
    apps = client.AppsV1Api(api.client())
    apps.create_namespaced_deployment("default", _deploy_body())
    apps.patch_namespaced_deployment("web", "default", {"spec": {"template": {"spec": {
        "containers": [{"name": "web", "image": "nginx:2"}]}}}})
    containers = apps.read_namespaced_deployment("web", "default").spec.template.spec.containers
    assert [(c.name, c.image) for c in containers] == [("web", "nginx:2"), ("log", "busybox")]
    assert containers[0].env[0].name == "A"
    apps.patch_namespaced_deployment("web", "default", [
        {"op": "replace", "path": "/spec/replicas", "value": 4}])
    assert apps.read_namespaced_deployment("web", "default").spec.replicas == 4


def test_strategic_merge_on_custom_resource_is_415(api: Api) -> None:
    api.store.create(api.rt("apiextensions.k8s.io", "customresourcedefinitions"), crd())
    co = client.CustomObjectsApi(api.client())
    co.create_namespaced_custom_object("example.com", "v1", "default", "widgets", {
        "apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"},
        "spec": {"size": 1, "tags": ["a"]}})
    co.patch_namespaced_custom_object("example.com", "v1", "default", "widgets", "w",
                                      {"spec": {"tags": None, "color": "red"}})
    got = co.get_namespaced_custom_object("example.com", "v1", "default", "widgets", "w")
    assert got["spec"] == {"size": 1, "color": "red"}
    r = httpx.patch(api.url + "/apis/example.com/v1/namespaces/default/widgets/w",
                    json={"spec": {}},
                    headers={"Content-Type": "application/strategic-merge-patch+json"})
    assert r.status_code == 415 and r.json()["reason"] == "UnsupportedMediaType"


def _apply(api: Api, body: str, manager: str | None = "mgr", name: str = "cfg") -> httpx.Response:
    q = f"?fieldManager={manager}&force=true" if manager else ""
    return httpx.patch(f"{api.url}/api/v1/namespaces/default/configmaps/{name}{q}", content=body,
                       headers={"Content-Type": "application/apply-patch+yaml"})


def test_server_side_apply_needs_field_manager(api: Api) -> None:
    r = _apply(api, '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cfg"}}', None)
    assert r.status_code == 422 and "fieldManager" in r.json()["message"]


def test_server_side_apply_creates_then_updates_then_prunes(api: Api) -> None:
    first = _apply(api, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\n"
                        "data:\n  a: '1'\n  b: '2'\n")
    assert first.status_code == 201
    client.CoreV1Api(api.client()).patch_namespaced_config_map(
        "cfg", "default", {"data": {"other": "x"}})
    second = _apply(api, '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cfg"},'
                         '"data":{"a":"9"}}')
    assert second.status_code == 200
    assert second.json()["data"] == {"a": "9", "other": "x"}


def test_apply_with_typed_client_content_type(api: Api) -> None:
    core = client.CoreV1Api(api.client())
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "t"}, "data": {"k": "v"}}
    core.patch_namespaced_config_map("t", "default", body, field_manager="me", force=True,
                                     _content_type="application/apply-patch+yaml")
    assert core.read_namespaced_config_map("t", "default").data == {"k": "v"}


def test_patch_missing_object_is_404(api: Api) -> None:
    with pytest.raises(ApiException) as err:
        client.CoreV1Api(api.client()).patch_namespaced_config_map("nope", "default",
                                                                   {"data": {}})
    assert err.value.status == 404
