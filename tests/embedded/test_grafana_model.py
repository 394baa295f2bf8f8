"""The embedded Grafana's answers (Grafana 11.3's paths and shapes), from the addon's own
ConfigMaps and Deployment, without a cluster: a store with those objects and a stub caller."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import yaml

from pytest_istiolab.embedded.mesh.headers import Headers
from pytest_istiolab.embedded.mesh.model import Response
from pytest_istiolab.embedded.workloads.base import AppContext, AppRequest
from pytest_istiolab.embedded.workloads.grafana import Grafana

ADDON = Path(__file__).resolve().parents[2] / "manifests/samples/addons/grafana.yaml"
DOCS = [d for d in yaml.safe_load_all(ADDON.read_text()) if d]
CONFIGMAPS = [d for d in DOCS if d["kind"] == "ConfigMap"]
TEMPLATE = next(d for d in DOCS if d["kind"] == "Deployment")["spec"]["template"]
MESH_UID = "1a9a8ea49444aae205c7737573e894f9"


class _Store:
    def by_kind(self, group, plural, namespace=None):
        return CONFIGMAPS if plural == "configmaps" else []


def _pod(uid="pod-1"):
    return {"metadata": {"name": "grafana-1", "namespace": "istio-system", "uid": uid},
            "spec": TEMPLATE["spec"]}


def _get(path, method="GET", pod=None, answer=None, seen=None):
    pod = pod or _pod()

    def caller(method, url, headers, body, start, timeout):
        if seen is not None:
            seen.append((method, url))
        return answer or Response(200, Headers([("Content-Type", "application/json")]),
                                  b'{"status":"success","data":{"resultType":"vector",'
                                  b'"result":[]}}', start, 0.001)

    container = pod["spec"]["containers"][0]
    ctx = AppContext(SimpleNamespace(store=_Store()), pod, "grafana", 0.0, caller,  # type: ignore[arg-type]
                     lambda low, high: low)
    answer = Grafana(pod, container).handle(ctx, AppRequest(method, path, "grafana:3000",
                                                             Headers()))
    return answer.status, answer


def _json(path, **kw):
    status, answer = _get(path, **kw)
    return status, json.loads(answer.body)


def test_health_is_pretty_printed_with_the_version():
    status, answer = _get("/api/health")
    assert status == 200 and answer.headers.get("content-type") == "application/json"
    assert json.loads(answer.body) == {"commit": "", "database": "ok", "version": "11.3.1"}
    assert answer.body.startswith(b'{\n  "commit"')


def test_search_lists_the_folder_first_then_dashboards_by_title():
    status, hits = _json("/api/search?query=istio")
    assert status == 200
    assert [h["type"] for h in hits][:1] == ["dash-folder"] and hits[0]["title"] == "istio"
    titles = [h["title"] for h in hits[1:]]
    assert titles == sorted(titles, key=str.lower) and len(titles) == 7
    mesh = next(h for h in hits if h["uid"] == MESH_UID)
    assert mesh["url"] == f"/d/{MESH_UID}/istio-mesh-dashboard"
    assert (mesh["folderTitle"], mesh["folderUid"]) == ("istio", hits[0]["uid"])


def test_search_filters():
    assert [h["title"] for h in _json("/api/search?query=MESH")[1]] == ["Istio Mesh Dashboard"]
    assert [h["type"] for h in _json("/api/search?type=dash-folder")[1]] == ["dash-folder"]
    assert _json("/api/search?tag=istio")[1] == []  # the 1.26 dashboards carry no tags
    assert _json("/api/search?starred=true")[1] == []
    one = _json(f"/api/search?dashboardUIDs={MESH_UID}")[1]
    assert [h["uid"] for h in one] == [MESH_UID]
    folder = _json("/api/search?type=dash-folder")[1][0]["uid"]
    assert len(_json(f"/api/search?folderUIDs={folder}")[1]) == 7
    assert _json("/api/search?folderUIDs=general")[1] == []
    page2 = _json("/api/search?type=dash-db&limit=3&page=2")[1]
    assert len(page2) == 3


def test_a_dashboard_by_uid_is_provisioned_in_folder_istio():
    status, body = _json(f"/api/dashboards/uid/{MESH_UID}")
    assert status == 200
    assert body["dashboard"]["title"] == "Istio Mesh Dashboard"
    assert body["meta"]["provisioned"] is True
    assert body["meta"]["provisionedExternalId"] == "istio-mesh-dashboard.json"
    assert body["meta"]["folderTitle"] == "istio"
    assert _json("/api/dashboards/uid/nope") == (404, {"message": "Dashboard not found"})


def test_dashboards_without_a_uid_get_one_per_install():
    def perf_uid(pod):
        hits = _json("/api/search?query=Performance", pod=pod)[1]
        return hits[0]["uid"]

    assert perf_uid(_pod("a")) == perf_uid(_pod("a")) != perf_uid(_pod("b"))


def test_datasources_as_provisioned():
    status, sources = _json("/api/datasources")
    assert status == 200
    assert [(d["name"], d["type"], d["isDefault"]) for d in sources] == [
        ("Prometheus", "prometheus", True), ("Loki", "loki", False)]
    assert sources[0]["jsonData"] == {"timeInterval": "15s"}
    assert sources[0]["url"] == "http://prometheus:9090"
    assert _json("/api/datasources/name/Prometheus")[1]["uid"] == sources[0]["uid"]
    assert _json("/api/datasources/uid/nope")[0] == 404


def test_the_datasource_proxy_forwards_path_and_query():
    uid = _json("/api/datasources")[1][0]["uid"]
    seen: list = []
    status, body = _json(f"/api/datasources/proxy/uid/{uid}/api/v1/query?query=up", seen=seen)
    assert status == 200 and body["status"] == "success"
    assert seen == [("GET", "http://prometheus:9090/api/v1/query?query=up")]
    assert _json("/api/datasources/proxy/1/api/v1/query?query=up")[0] == 200  # by id
    assert _json("/api/datasources/proxy/uid/nope/api/v1/query")[0] == 404


def test_an_unreachable_datasource_is_a_502():
    refused = Response(0, failure=object())  # type: ignore[arg-type]
    status, body = _json("/api/datasources/proxy/2/loki/api/v1/labels", answer=refused)
    assert status == 502 and "Loki" in body["message"]


def test_what_is_not_modelled_is_501_and_pages_are_the_app():
    status, body = _json("/api/ds/query", method="POST")
    assert status == 501 and "/api/ds/query is not modelled" in body["message"]
    status, answer = _get("/d/abc/some-dashboard")
    assert status == 200 and b"<title>Grafana</title>" in answer.body


def test_prometheus_errors_come_back_through_the_proxy_as_they_are():
    """An unsupported query's bad_data (status and envelope) reaches the client unchanged."""
    body = (b'{"status":"error","errorType":"bad_data","error":"invalid parameter \\"query\\": '
            b'function topk() is not modelled by the embedded Prometheus"}')
    refused = Response(400, Headers([("Content-Type", "application/json")]), body)
    status, answer = _get("/api/datasources/proxy/1/api/v1/query?query=topk(1,up)",
                          answer=refused)
    assert (status, answer.body) == (400, body)
    assert answer.headers.get("content-type") == "application/json"
