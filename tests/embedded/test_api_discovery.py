"""Discovery, version and health endpoints of the embedded API server."""

from __future__ import annotations

import httpx
from api_testkit import Api, api_fixture, crd  # noqa: F401
from kubernetes import client


def test_version_reports_a_1_33_server(api: Api) -> None:
    info = client.VersionApi(api.client()).get_code()
    assert (info.major, info.minor) == ("1", "33")
    assert info.git_version.startswith("v1.33.")


def test_health_endpoints_answer_ok(api: Api) -> None:
    for path in ("/healthz", "/readyz", "/livez"):
        r = httpx.get(api.url + path)
        assert (r.status_code, r.text) == (200, "ok")


def test_group_list_preferred_version_is_one_of_its_versions(api: Api) -> None:
    api.store.create(api.rt("apiextensions.k8s.io", "customresourcedefinitions"),
                     crd(versions=("v1", "v1beta1", "v1alpha1")))
    groups = httpx.get(api.url + "/apis").json()["groups"]
    by_name = {g["name"]: g for g in groups}
    assert by_name["example.com"]["preferredVersion"] == {"groupVersion": "example.com/v1",
                                                          "version": "v1"}
    for g in groups:
        assert g["preferredVersion"] in g["versions"]
    assert [v["version"] for v in by_name["example.com"]["versions"]] == ["v1", "v1beta1",
                                                                           "v1alpha1"]


def test_core_resource_list_names_subresources_and_short_names(api: Api) -> None:
    body = httpx.get(api.url + "/api/v1").json()
    names = {r["name"]: r for r in body["resources"]}
    assert body["groupVersion"] == "v1"
    assert names["pods"]["shortNames"] == ["po"] and names["pods"]["namespaced"] is True
    assert names["pods/exec"]["kind"] == "PodExecOptions"
    assert {"pods/log", "pods/status", "namespaces/status"} <= set(names)
    assert names["namespaces"]["namespaced"] is False


def test_scale_subresource_is_an_autoscaling_scale(api: Api) -> None:
    body = httpx.get(api.url + "/apis/apps/v1").json()
    scale = next(r for r in body["resources"] if r["name"] == "deployments/scale")
    assert (scale["kind"], scale["group"], scale["version"]) == ("Scale", "autoscaling", "v1")


def test_crd_group_is_discoverable_immediately_after_create(api: Api) -> None:
    assert httpx.get(api.url + "/apis/example.com/v1").status_code == 404
    api.store.create(api.rt("apiextensions.k8s.io", "customresourcedefinitions"), crd())
    body = httpx.get(api.url + "/apis/example.com/v1").json()
    widget = next(r for r in body["resources"] if r["name"] == "widgets")
    assert (widget["kind"], widget["shortNames"], widget["singularName"]) == ("Widget", ["wd"],
                                                                              "widget")
    assert "widgets/status" in {r["name"] for r in body["resources"]}


def test_unknown_resource_and_openapi_are_404_status(api: Api) -> None:
    for path in ("/apis/nope.io/v1/things", "/api/v1/namespaces/default/things", "/openapi/v2",
                 "/apis/apps/v9"):
        r = httpx.get(api.url + path)
        assert r.status_code == 404, path
        body = r.json()
        assert (body["kind"], body["status"], body["reason"], body["code"]) == (
            "Status", "Failure", "NotFound", 404)
