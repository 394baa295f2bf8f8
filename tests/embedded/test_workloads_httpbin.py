"""go-httpbin v2.15 (the 1.26 sample, catalogue D-08) and the public httpbin.org."""

from __future__ import annotations

import json

import pytest
from mesh_testkit import Kit

from pytest_istiolab.embedded.mesh import request_from_pod
from pytest_istiolab.embedded.mesh.headers import Headers
from pytest_istiolab.embedded.workloads import app_for
from pytest_istiolab.embedded.workloads.httpbin import canonical


@pytest.fixture
def kit() -> Kit:
    k = Kit()
    k.httpbin()
    k.sleep()
    return k


def get(kit: Kit, path: str, method: str = "GET", body: bytes = b"",
        headers: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    return request_from_pod(kit.rt, kit.get_pod("sleep"), method, f"http://httpbin:8000{path}",
                            Headers({"user-agent": "curl/8.14.1", **(headers or {})}), body)


def test_headers_are_json_arrays_under_canonical_names(kit: Kit) -> None:
    response = get(kit, "/headers", headers={"x-b3-traceid": "abc", "end-user": "jason"})
    assert response.headers.get("content-type") == "application/json; charset=utf-8"
    assert response.text.startswith('{\n  "headers": {\n    "End-User": [\n      "jason"\n')
    echoed = json.loads(response.body)["headers"]
    assert echoed["Host"] == ["httpbin:8000"] and echoed["User-Agent"] == ["curl/8.14.1"]
    assert echoed["X-B3-Traceid"] == ["abc"] and echoed["X-Envoy-Attempt-Count"] == ["1"]
    assert list(echoed) == sorted(echoed)


def test_get_shape_and_origin_behind_the_sidecar(kit: Kit) -> None:
    body = json.loads(get(kit, "/get?a=1&a=2").body)
    assert set(body) == {"args", "headers", "method", "origin", "url"}
    assert body["args"] == {"a": ["1", "2"]} and body["method"] == "GET"
    assert body["url"] == "http://httpbin:8000/get?a=1&a=2"
    assert body["origin"] == "127.0.0.6"  # the inbound sidecar's source address


def test_ip_uses_the_first_forwarded_address(kit: Kit) -> None:
    body = json.loads(get(kit, "/ip", headers={"x-forwarded-for": "1.2.3.4, 5.6.7.8"}).body)
    assert body == {"origin": "1.2.3.4"}


@pytest.mark.parametrize(("code", "body"), [(200, b""), (503, b""), (418, b"I'm a teapot!")])
def test_status_codes(kit: Kit, code: int, body: bytes) -> None:
    response = get(kit, f"/status/{code}")
    assert (response.status, response.body) == (code, body)
    assert response.headers.get("access-control-allow-origin") == "*"


def test_delay_is_virtual_and_bounded(kit: Kit) -> None:
    response = get(kit, "/delay/2")
    assert response.status == 200 and 2.0 <= response.duration < 2.1
    assert set(json.loads(response.body)) >= {"args", "data", "files", "form", "json"}
    assert "initial_delay" in (response.headers.get("server-timing") or "")
    assert get(kit, "/delay/500ms").duration < 0.6
    too_long = get(kit, "/delay/11")
    assert too_long.status == 400 and json.loads(too_long.body)["status_code"] == 400


def test_post_echoes_form_and_method_rules(kit: Kit) -> None:
    body = json.loads(get(kit, "/post", "POST", b"a=1",
                          {"content-type": "application/x-www-form-urlencoded"}).body)
    assert body["form"] == {"a": ["1"]} and body["data"] == "a=1"
    assert get(kit, "/post").status == 405
    assert json.loads(get(kit, "/nope").body) == {"status_code": 404, "error": "Not Found"}


def test_go_canonical_header_names() -> None:
    assert canonical("x-b3-traceid") == "X-B3-Traceid"
    assert canonical("x-forwarded-client-cert") == "X-Forwarded-Client-Cert"


def test_httpbin_listens_on_8080_only(kit: Kit) -> None:
    pod = kit.get_pod("httpbin")
    assert app_for(pod, 8080) is not None
    assert app_for(pod, 80) is None


def test_httpbin_org_hides_environment_headers_and_adds_a_trace_id(kit: Kit) -> None:
    """L3.4-C02 (D-06): Title-Case headers, X-Amzn-Trace-Id, sidecar peer metadata."""
    response = request_from_pod(kit.rt, kit.get_pod("sleep"), "GET", "http://httpbin.org/headers",
                                Headers({"user-agent": "curl/8.14.1", "accept": "*/*"}))
    headers = json.loads(response.body)["headers"]
    assert headers["Host"] == "httpbin.org" and headers["Accept"] == "*/*"
    assert headers["X-Amzn-Trace-Id"].startswith("Root=1-")
    assert headers["X-Envoy-Attempt-Count"] == "1"
    assert headers["X-Envoy-Peer-Metadata-Id"].startswith("sidecar~")
    assert "X-Request-Id" not in headers and "X-Forwarded-Proto" not in headers
    assert 0.15 < response.duration < 0.7
