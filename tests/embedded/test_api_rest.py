"""REST verbs of the embedded API server through the typed kubernetes client (v37)."""

from __future__ import annotations

import httpx
import pytest
from api_testkit import Api, api_fixture, make_pod  # noqa: F401
from kubernetes import client
from kubernetes.client.exceptions import ApiException


def _core(api: Api) -> client.CoreV1Api:
    return client.CoreV1Api(api.client())


def _cm(name: str, data: dict | None = None, labels: dict | None = None) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "labels": labels or {}}, "data": data or {"k": "v"}}


def test_create_returns_201_with_server_fields(api: Api) -> None:
    core = _core(api)
    _, status, _ = core.create_namespaced_config_map_with_http_info("default", _cm("a"))
    cm = core.read_namespaced_config_map("a", "default")
    assert status == 201
    assert cm.metadata.uid and isinstance(cm.metadata.resource_version, str)
    assert cm.metadata.creation_timestamp is not None and cm.data == {"k": "v"}


def test_create_twice_is_409_already_exists(api: Api) -> None:
    core = _core(api)
    core.create_namespaced_config_map("default", _cm("a"))
    with pytest.raises(ApiException) as err:
        core.create_namespaced_config_map("default", _cm("a"))
    assert err.value.status == 409 and '"reason":"AlreadyExists"' in err.value.body


def test_get_missing_is_404_status(api: Api) -> None:
    with pytest.raises(ApiException) as err:
        _core(api).read_namespaced_pod("ghost", "default")
    assert err.value.status == 404
    assert 'pods \\"ghost\\" not found' in err.value.body


def test_put_with_stale_resource_version_is_409(api: Api) -> None:
    core = _core(api)
    first = core.create_namespaced_config_map("default", _cm("a"))
    first.data = {"k": "2"}
    core.replace_namespaced_config_map("a", "default", first)
    first.data = {"k": "3"}
    with pytest.raises(ApiException) as err:
        core.replace_namespaced_config_map("a", "default", first)
    assert err.value.status == 409 and '"reason":"Conflict"' in err.value.body
    assert core.read_namespaced_config_map("a", "default").data == {"k": "2"}


def test_list_filters_by_label_and_field_selector(api: Api) -> None:
    core = _core(api)
    core.create_namespaced_config_map("default", _cm("a", labels={"tier": "web"}))
    core.create_namespaced_config_map("default", _cm("b", labels={"tier": "db"}))
    core.create_namespaced_config_map("default", _cm("c", labels={"tier": "web"}))
    web = core.list_namespaced_config_map("default", label_selector="tier=web")
    assert [i.metadata.name for i in web.items] == ["a", "c"]
    named = core.list_namespaced_config_map("default", field_selector="metadata.name=b")
    assert [i.metadata.name for i in named.items] == ["b"]
    assert core.list_namespaced_config_map("default", label_selector="tier in (x)").items == []


def test_list_pages_with_limit_and_continue(api: Api) -> None:
    core = _core(api)
    for name in "abcde":
        core.create_namespaced_config_map("default", _cm(name))
    seen, token = [], None
    while True:
        page = core.list_namespaced_config_map("default", limit=2, _continue=token)
        seen += [i.metadata.name for i in page.items]
        token = page.metadata._continue
        if not token:
            break
        assert page.metadata.remaining_item_count == 5 - len(seen)
    assert seen == list("abcde")


def test_list_across_namespaces_and_empty_items(api: Api) -> None:
    core = _core(api)
    core.create_namespace({"metadata": {"name": "other"}})
    api.add_pod("p1")
    api.add_pod("p2", ns="other")
    assert sorted(p.metadata.name for p in core.list_pod_for_all_namespaces().items) == ["p1",
                                                                                        "p2"]
    body = httpx.get(api.url + "/api/v1/namespaces/other/services").json()
    assert body["items"] == [] and body["kind"] == "ServiceList"


def test_delete_pod_returns_the_pod_and_configmap_returns_status(api: Api) -> None:
    core = _core(api)
    api.add_pod("p1")
    core.create_namespaced_config_map("default", _cm("a"))
    pod = core.delete_namespaced_pod("p1", "default")
    assert isinstance(pod, client.V1Pod) and pod.metadata.name == "p1"
    status = httpx.delete(api.url + "/api/v1/namespaces/default/configmaps/a").json()
    assert (status["kind"], status["status"], status["details"]["name"]) == ("Status", "Success",
                                                                             "a")
    assert core.list_namespaced_pod("default").items == []


def test_delete_accepts_propagation_policy_and_checks_preconditions(api: Api) -> None:
    core = _core(api)
    cm = core.create_namespaced_config_map("default", _cm("a"))
    with pytest.raises(ApiException) as err:
        core.delete_namespaced_config_map("a", "default", body=client.V1DeleteOptions(
            preconditions=client.V1Preconditions(uid="not-the-uid")))
    assert err.value.status == 409
    right = client.V1DeleteOptions(preconditions=client.V1Preconditions(uid=cm.metadata.uid))
    core.delete_namespaced_config_map("a", "default", propagation_policy="Foreground", body=right)
    assert core.list_namespaced_config_map("default").items == []


def test_delete_collection_by_label(api: Api) -> None:
    core = _core(api)
    core.create_namespaced_config_map("default", _cm("a", labels={"x": "1"}))
    core.create_namespaced_config_map("default", _cm("b"))
    core.delete_collection_namespaced_config_map("default", label_selector="x=1")
    assert [c.metadata.name for c in core.list_namespaced_config_map("default").items] == ["b"]


def test_dry_run_never_persists(api: Api) -> None:
    core = _core(api)
    made = core.create_namespaced_config_map("default", _cm("a"), dry_run="All")
    assert made.metadata.name == "a"
    assert core.list_namespaced_config_map("default").items == []
    core.create_namespaced_config_map("default", _cm("b"))
    core.patch_namespaced_config_map("b", "default", {"data": {"k": "dry"}}, dry_run="All")
    core.delete_namespaced_config_map("b", "default", dry_run="All")
    assert core.read_namespaced_config_map("b", "default").data == {"k": "v"}


def test_cluster_scoped_namespaces_and_namespaced_url_errors(api: Api) -> None:
    core = _core(api)
    core.create_namespace({"metadata": {"name": "lab"}})
    ns = core.read_namespace("lab")
    assert ns.status.phase == "Active"
    assert httpx.get(api.url + "/api/v1/namespaces/lab/namespaces").status_code == 404
    assert httpx.get(api.url + "/api/v1/pods/x").status_code == 404
    deleted = core.delete_namespace("lab")
    assert deleted["metadata"]["name"] == "lab"


def test_pod_status_subresource_changes_only_status(api: Api) -> None:
    core = _core(api)
    core.create_namespaced_pod("default", make_pod("p"))
    core.patch_namespaced_pod_status("p", "default", {"status": {"phase": "Running"}})
    core.patch_namespaced_pod("p", "default", {"status": {"phase": "Failed"},
                                               "metadata": {"labels": {"v": "2"}}})
    pod = core.read_namespaced_pod("p", "default")
    assert pod.status.phase == "Running" and pod.metadata.labels["v"] == "2"


def test_deployment_scale_subresource(api: Api) -> None:
    apps = client.AppsV1Api(api.client())
    apps.create_namespaced_deployment("default", {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "web", "image": "nginx"}]}}}})
    scale = apps.read_namespaced_deployment_scale("web", "default")
    assert (scale.spec.replicas, scale.status.selector) == (1, "app=web")
    apps.patch_namespaced_deployment_scale("web", "default", {"spec": {"replicas": 3}})
    assert apps.read_namespaced_deployment("web", "default").spec.replicas == 3
    scale = apps.read_namespaced_deployment_scale("web", "default")
    scale.spec.replicas = 2
    apps.replace_namespaced_deployment_scale("web", "default", scale)
    assert apps.read_namespaced_deployment("web", "default").spec.replicas == 2


def test_errors_are_status_objects_with_codes(api: Api) -> None:
    bad = httpx.post(api.url + "/api/v1/namespaces/default/configmaps", content=b"{nope",
                     headers={"Content-Type": "application/json"})
    assert bad.status_code == 400 and bad.json()["reason"] == "BadRequest"
    wrong = httpx.post(api.url + "/api/v1/namespaces/default/configmaps",
                       json={"kind": "Secret", "metadata": {"name": "x"}})
    assert wrong.status_code == 400
    nons = httpx.post(api.url + "/api/v1/namespaces/nope/configmaps",
                      json={"metadata": {"name": "x"}})
    assert nons.status_code == 404 and nons.json()["reason"] == "NotFound"
    invalid = httpx.post(api.url + "/api/v1/namespaces/default/configmaps",
                         json={"metadata": {"name": "Bad_Name"}})
    assert invalid.status_code == 422 and invalid.json()["reason"] == "Invalid"
    stale = httpx.post(api.url + "/api/v1/namespaces/default/configmaps",
                       json={"metadata": {"name": "y", "resourceVersion": "5"}})
    assert stale.status_code == 400 and "resourceVersion" in stale.json()["message"]
    put = httpx.put(api.url + "/api/v1/namespaces/default/configmaps",
                    json={"metadata": {"name": "x"}})
    assert put.status_code == 405 and put.json()["kind"] == "Status"
