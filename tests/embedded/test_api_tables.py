"""meta.k8s.io/v1 Tables (what kubectl get prints) and the printers behind them."""

from __future__ import annotations

import httpx
import pytest
from api_testkit import Api, api_fixture, crd  # noqa: F401

from pytest_istiolab.embedded.api.printers import pod_phase_reason, service_ports
from pytest_istiolab.embedded.api.tables import jsonpath
from pytest_istiolab.embedded.api.timefmt import human_duration

TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"


def _table(api: Api, path: str, **params: str) -> dict:
    r = httpx.get(api.url + path, headers={"Accept": TABLE}, params=params)
    assert r.status_code == 200
    body = r.json()
    assert (body["kind"], body["apiVersion"]) == ("Table", "meta.k8s.io/v1")
    return body


@pytest.mark.parametrize(("seconds", "text"), [
    (0, "0s"), (40, "40s"), (119, "119s"), (302, "5m2s"), (600, "10m"), (780, "13m"),
    (3 * 3600 + 20 * 60, "3h20m"), (10 * 3600, "10h"), (17 * 86400, "17d"),
    (3 * 86400 + 5 * 3600, "3d5h"), (800 * 86400, "2y70d"), (-5, "<invalid>")])
def test_human_duration_matches_kubernetes(seconds: int, text: str) -> None:
    assert human_duration(seconds) == text


def test_pod_status_reasons() -> None:
    def pod(**status: object) -> dict:
        return {"spec": {"containers": [{"name": "a"}], "initContainers": [{"name": "i"}]},
                "status": status}
    assert pod_phase_reason(pod(phase="Running")) == "Running"
    assert pod_phase_reason(pod(phase="Pending", initContainerStatuses=[
        {"name": "i", "state": {"running": {}}}])) == "Init:0/1"
    assert pod_phase_reason(pod(phase="Pending", initContainerStatuses=[
        {"name": "i", "state": {"terminated": {"exitCode": 0}}}], containerStatuses=[
        {"name": "a", "state": {"waiting": {"reason": "PodInitializing"}}}])) == "PodInitializing"
    assert pod_phase_reason(pod(phase="Running", containerStatuses=[
        {"name": "a", "state": {"waiting": {"reason": "CrashLoopBackOff"}}}])) == \
        "CrashLoopBackOff"
    terminating = pod(phase="Running")
    terminating["metadata"] = {"deletionTimestamp": "2025-01-01T00:00:00Z"}
    assert pod_phase_reason(terminating) == "Terminating"


def test_service_ports_show_node_ports() -> None:
    spec = {"ports": [{"port": 15021, "nodePort": 30275, "protocol": "TCP"}, {"port": 80},
                      {"port": 53, "protocol": "UDP"}]}
    assert service_ports(spec) == "15021:30275/TCP,80/TCP,53/UDP"


def test_jsonpath_subset() -> None:
    obj = {"spec": {"hosts": ["a"], "list": [{"k": "x", "v": 1}, {"k": "y", "v": 2}]}}
    assert jsonpath(obj, ".spec.hosts") == [["a"]]
    assert jsonpath(obj, ".spec.list[1].v") == [2]
    assert jsonpath(obj, '.spec.list[?(@.k=="y")].v') == [2]
    assert jsonpath(obj, ".spec.list[*].k") == ["x", "y"]
    assert jsonpath(obj, ".spec.missing") == []


def test_pod_table_rows_carry_partial_metadata_by_default(api: Api) -> None:
    api.add_pod("p", containers=("app", "istio-proxy"))
    body = _table(api, "/api/v1/namespaces/default/pods")
    names = [c["name"] for c in body["columnDefinitions"]]
    assert names[:5] == ["Name", "Ready", "Status", "Restarts", "Age"]
    assert {c["name"]: c["priority"] for c in body["columnDefinitions"]}["IP"] == 1
    (row,) = body["rows"]
    assert row["cells"][:4] == ["p", "2/2", "Running", 0]
    assert row["object"]["kind"] == "PartialObjectMetadata"
    assert row["object"]["metadata"]["name"] == "p"
    full = _table(api, "/api/v1/namespaces/default/pods", includeObject="Object")
    assert full["rows"][0]["object"]["spec"]["containers"][0]["name"] == "app"
    bare = _table(api, "/api/v1/namespaces/default/pods/p", includeObject="None")
    assert "object" not in bare["rows"][0]


def test_crd_table_uses_printer_columns_of_the_requested_version(api: Api) -> None:
    columns = [{"name": "Hosts", "type": "string", "jsonPath": ".spec.hosts"},
               {"name": "Size", "type": "integer", "jsonPath": ".spec.size"}]
    api.store.create(api.rt("apiextensions.k8s.io", "customresourcedefinitions"),
                     crd(columns=columns))
    api.store.create(api.rt("example.com", "widgets"), {
        "apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"},
        "spec": {"hosts": ["*"], "size": 3}}, "default")
    body = _table(api, "/apis/example.com/v1/namespaces/default/widgets")
    assert [c["name"] for c in body["columnDefinitions"]] == ["Name", "Hosts", "Size"]
    assert body["rows"][0]["cells"] == ["w", '["*"]', 3]
    plain = _table(api, "/apis/apiextensions.k8s.io/v1/customresourcedefinitions")
    assert [c["name"] for c in plain["columnDefinitions"]] == ["Name", "Created At"]


def test_crd_without_printer_columns_shows_name_and_age(api: Api) -> None:
    api.store.create(api.rt("apiextensions.k8s.io", "customresourcedefinitions"), crd())
    api.store.create(api.rt("example.com", "widgets"), {"metadata": {"name": "w"}}, "default")
    body = _table(api, "/apis/example.com/v1/namespaces/default/widgets")
    assert [c["name"] for c in body["columnDefinitions"]] == ["Name", "Age"]
    assert body["rows"][0]["cells"][0] == "w"


def test_builtin_tables_for_namespaces_configmaps_and_secrets(api: Api) -> None:
    store = api.store
    store.create(api.rt("", "configmaps"), {"metadata": {"name": "c"},
                                            "data": {"a": "1", "b": "2"}}, "default")
    store.create(api.rt("", "secrets"), {"metadata": {"name": "s"}, "type": "kubernetes.io/tls",
                                         "data": {"tls.crt": "", "tls.key": ""}}, "default")
    ns = _table(api, "/api/v1/namespaces")
    assert ns["rows"][0]["cells"][:2] == ["default", "Active"]
    cm = _table(api, "/api/v1/namespaces/default/configmaps")
    assert cm["rows"][0]["cells"][:2] == ["c", 2]
    secret = _table(api, "/api/v1/namespaces/default/secrets")
    assert secret["rows"][0]["cells"][:3] == ["s", "kubernetes.io/tls", 2]
