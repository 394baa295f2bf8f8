"""accesslog: Istio 1.26 TEXT and JSON access-log lines parsed into AccessLogEntry."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from pytest_istiolab.embedded.mesh import accesslog as model
from pytest_istiolab.errors import IstioLabError
from pytest_istiolab.traffic import parse_line, parse_log

# The two lines of the manual's L3.6-C09 `kubectl logs $SOURCE_POD -c istio-proxy | tail`.
DIRECT = ('[2024-03-21T07:55:06.694Z] "GET /ip HTTP/1.1" 200 - via_upstream - "-" 0 31 608 607 '
          '"-" "curl/7.81.0-DEV" "e839b6e0-060c-9c78-9f97-26dda40d94d0" "httpbin.org" '
          '"54.166.148.227:80" outbound|80||httpbin.org 10.244.104.16:55424 3.215.37.86:80 '
          "10.244.104.16:43594 - default")
VIA_GATEWAY = ('[2024-03-21T08:01:34.332Z] "GET /ip HTTP/1.1" 200 - via_upstream - "-" 0 46 614 '
               '614 "-" "curl/7.81.0-DEV" "81f48ace-057e-978a-85b4-1bcecdb48e27" "httpbin.org" '
               '"10.244.135.13:8080" outbound|80|httpbin|istio-egressgateway.istio-system.svc.'
               "cluster.local 10.244.104.16:47570 54.166.148.227:80 10.244.104.16:57680 - -")
AGENT_LINES = [
    "2024-03-21T07:52:40.051666Z     info    Envoy proxy is ready",
    '2024-03-21T07:52:44.407739Z     warn    HTTP request failed: Get "http://169.254.169.254/'
    'metadata/instance?api-version=2019-08-15": context deadline exceeded',
    '{"level":"info","time":"2025-05-09T00:44:20.123Z","msg":"Readiness succeeded"}',
]
JSON_LINE = json.dumps({
    "start_time": "2025-05-09T00:44:20.123Z", "route_name": "default", "method": "GET",
    "path": "/productpage", "protocol": "HTTP/1.1", "response_code": 200,
    "response_flags": "-", "response_code_details": "via_upstream",
    "connection_termination_details": None, "bytes_received": 0, "bytes_sent": 1683,
    "duration": 13, "upstream_service_time": "12", "x_forwarded_for": None,
    "user_agent": "curl/8.14.1", "request_id": "5b2e6f0a-1c1d-9d3e-a1b2-0c7d9e8f7a6b",
    "authority": "productpage:9080", "upstream_host": "10.244.0.12:9080",
    "upstream_cluster": "outbound|9080||productpage.default.svc.cluster.local",
    "upstream_local_address": "10.244.0.15:40520",
    "downstream_local_address": "10.96.12.3:9080",
    "downstream_remote_address": "10.244.0.15:53146", "requested_server_name": None,
    "upstream_transport_failure_reason": None})


def test_the_manuals_direct_egress_line() -> None:
    e = parse_line(DIRECT)
    assert e is not None
    assert (e.method, e.path, e.protocol, e.status, e.flags, e.details) == (
        "GET", "/ip", "HTTP/1.1", 200, "-", "via_upstream")
    assert (e.bytes_received, e.bytes_sent, e.duration, e.upstream_service_time) == (0, 31, 608,
                                                                                     607)
    assert (e.forwarded_for, e.user_agent, e.authority) == (None, "curl/7.81.0-DEV", "httpbin.org")
    assert e.request_id == "e839b6e0-060c-9c78-9f97-26dda40d94d0"
    assert (e.upstream_host, e.upstream_host_ip) == ("54.166.148.227:80", "54.166.148.227")
    assert e.upstream_cluster == "outbound|80||httpbin.org"
    assert (e.upstream_local, e.downstream_local, e.downstream_remote) == (
        "10.244.104.16:55424", "3.215.37.86:80", "10.244.104.16:43594")
    assert (e.downstream_remote_ip, e.server_name, e.route_name) == ("10.244.104.16", None,
                                                                     "default")
    assert e.start_time == datetime(2024, 3, 21, 7, 55, 6, 694000, tzinfo=UTC)
    assert e.line == DIRECT


def test_the_manuals_egress_gateway_line() -> None:
    e = parse_line(VIA_GATEWAY)
    assert e is not None
    assert e.upstream_cluster == \
        "outbound|80|httpbin|istio-egressgateway.istio-system.svc.cluster.local"
    assert (e.upstream_host, e.route_name) == ("10.244.135.13:8080", None)


def test_agent_lines_are_skipped_and_order_is_kept() -> None:
    text = "\n".join([AGENT_LINES[0], DIRECT, AGENT_LINES[1], "", VIA_GATEWAY, AGENT_LINES[2]])
    assert [e.upstream_cluster for e in parse_log(text)] == [
        "outbound|80||httpbin.org",
        "outbound|80|httpbin|istio-egressgateway.istio-system.svc.cluster.local"]
    assert all(parse_line(line) is None for line in AGENT_LINES)


def test_json_line_with_numbers_and_nulls() -> None:
    e = parse_line(JSON_LINE)
    assert e is not None
    assert (e.method, e.path, e.status, e.flags, e.duration, e.bytes_sent) == (
        "GET", "/productpage", 200, "-", 13, 1683)
    assert (e.upstream_service_time, e.forwarded_for, e.termination, e.server_name) == (
        12, None, None, None)
    assert e.upstream_cluster == "outbound|9080||productpage.default.svc.cluster.local"
    assert e.downstream_remote_ip == "10.244.0.15"


def test_tcp_blackhole_line() -> None:
    line = ('[2025-05-09T00:44:20.123Z] "- - -" 0 UH - - "-" 0 0 0 - "-" "-" "-" "-" "-" '
            "BlackHoleCluster - 93.184.216.34:8081 10.244.0.15:40000 - -")
    e = parse_line(line)
    assert e is not None
    assert (e.method, e.path, e.status, e.flags, e.upstream_cluster) == (
        None, None, 0, "UH", "BlackHoleCluster")
    assert (e.upstream_service_time, e.user_agent, e.upstream_host) == (None, None, None)


def test_forwarded_chain() -> None:
    line = VIA_GATEWAY.replace('614 "-"', '614 "10.244.104.16, 20.205.45.50"')
    e = parse_line(line)
    assert e is not None and e.forwarded_chain == ["10.244.104.16", "20.205.45.50"]


def test_a_custom_format_line_is_an_error_naming_it() -> None:
    bad = '[2024-03-21T07:55:06.694Z] "GET /ip HTTP/1.1" 200 custom'
    with pytest.raises(ValueError, match="not Istio's default TEXT access-log format") as caught:
        parse_line(bad)
    assert isinstance(caught.value, IstioLabError), "reported with cause and fix, no traceback"
    assert "fix: the access-log checks read Istio's default TEXT format or JSON" in str(
        caught.value)


@pytest.mark.parametrize("encoding", ["TEXT", "JSON"])
def test_the_embedded_mesh_lines_parse_back(encoding: str) -> None:
    record = model.AccessRecord(
        1715215460.123, method="GET", path="/ip", status=200, details="via_upstream",
        bytes_sent=31, duration_ms=608, upstream_service_time="607",
        user_agent="curl/8.14.1", request_id="rid-1", authority="httpbin.org",
        upstream_host="10.0.0.9:8080", forwarded_for="10.0.0.5",
        upstream_cluster="outbound|80|httpbin|istio-egressgateway.istio-system.svc.cluster.local",
        upstream_local="10.0.0.5:1", downstream_local="54.166.148.227:80",
        downstream_remote="10.0.0.5:2", route_name="default")
    line = model.json_line(record) if encoding == "JSON" else model.text_line(record)
    e = parse_line(line)
    assert e is not None
    assert (e.method, e.path, e.status, e.duration, e.upstream_service_time) == (
        "GET", "/ip", 200, 608, 607)
    assert (e.forwarded_chain, e.upstream_host_ip, e.request_id) == (
        ["10.0.0.5"], "10.0.0.9", "rid-1")
    assert e.upstream_cluster == record.upstream_cluster
    assert e.start_time == datetime(2024, 5, 9, 0, 44, 20, 123000, tzinfo=UTC)
