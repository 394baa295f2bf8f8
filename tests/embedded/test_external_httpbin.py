"""httpbin.org as the labs meet it from a pod: real kubectl exec, the sleep pod's curl.

Shapes checked against httpbin.org's Python httpbin 0.9.2 on gunicorn 19.9.0 behind an AWS
load balancer: Flask's pretty JSON (lines end in ", "), Title-Case header names with
``X-Amzn-Trace-Id``, ``origin`` the forwarded chain, the load balancer's header order.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from api_testkit import KUBECTL, Kubectl
from mesh_testkit import Kit

from pytest_istiolab.embedded.api import ApiServer
from pytest_istiolab.embedded.tools import reads_stdin, run_in_container


@pytest.fixture(scope="module")
def sleep(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Kubectl, str]]:
    if not KUBECTL.exists():
        pytest.fail(f"the pinned kubectl is not installed at {KUBECTL}", pytrace=False)
    kit = Kit(seed=5)
    pod = kit.sleep()
    server = ApiServer(kit.rt, exec_handler=run_in_container, reads_stdin=reads_stdin)
    url = server.start()
    try:
        yield Kubectl(url, tmp_path_factory.mktemp("kubectl")), pod["metadata"]["name"]
    finally:
        server.stop()


def curl(sleep: tuple[Kubectl, str], *args: str) -> str:
    kubectl, pod = sleep
    return kubectl.run("exec", pod, "-c", "sleep", "--", "curl", "-sS", *args).stdout


def test_get_is_flask_pretty_json_with_the_balancer_headers(sleep: tuple[Kubectl, str]) -> None:
    text = curl(sleep, "http://httpbin.org/get?a=1&a=2&b=x")
    assert text.startswith('{\n  "args": {\n    "a": [\n      "1", \n      "2"\n    ], \n')
    body = json.loads(text)
    assert body["url"] == "http://httpbin.org/get?a=1&a=2&b=x"
    assert body["headers"]["Host"] == "httpbin.org"
    assert body["headers"]["X-Amzn-Trace-Id"].startswith("Root=1-")
    assert "X-Forwarded-For" not in body["headers"] and body["origin"].count(".") == 3
    assert set(body) == {"args", "headers", "origin", "url"}


def test_get_refuses_post_and_anything_echoes_everything(sleep: tuple[Kubectl, str]) -> None:
    refused = curl(sleep, "-o", "/dev/null", "-w", "%{http_code}", "-d", "x=1",
                   "http://httpbin.org/get")
    assert refused == "405"
    body = json.loads(curl(sleep, "-X", "PUT", "-H", "Content-Type: application/json", "-d",
                           '{"k": 1}', "http://httpbin.org/anything/deep?q=1"))
    assert body["method"] == "PUT" and body["json"] == {"k": 1} and body["args"] == {"q": "1"}
    assert set(body) == {"args", "data", "files", "form", "headers", "json", "method", "origin",
                         "url"}


def test_status_codes_as_httpbin_answers_them(sleep: tuple[Kubectl, str]) -> None:
    head = curl(sleep, "-i", "http://httpbin.org/status/418")
    assert head.startswith("HTTP/1.1 418 ") and "-=[ teapot ]=-" in head
    assert "x-more-info: http://tools.ietf.org/html/rfc2324" in head.lower()
    redirect = curl(sleep, "-sI", "http://httpbin.org/status/302")
    assert "location: /redirect/1" in redirect.lower()
    assert curl(sleep, "-o", "/dev/null", "-w", "%{http_code}",
                "http://httpbin.org/status/503") == "503"
    assert curl(sleep, "http://httpbin.org/status/abc") == "Invalid status code"


def test_headers_and_ip(sleep: tuple[Kubectl, str]) -> None:
    headers = json.loads(curl(sleep, "-H", "x-custom: yes", "http://httpbin.org/headers"))
    assert headers["headers"]["X-Custom"] == "yes"
    assert headers["headers"]["User-Agent"].startswith("curl/")
    ip = json.loads(curl(sleep, "http://httpbin.org/ip"))
    assert list(ip) == ["origin"]


def test_response_headers_in_the_balancers_order(sleep: tuple[Kubectl, str]) -> None:
    head = curl(sleep, "-sI", "http://httpbin.org/get")
    names = [line.split(":", 1)[0].lower() for line in head.splitlines()[1:] if ":" in line]
    app = [n for n in names if not n.startswith("x-envoy")]
    # the sidecar drops the hop-by-hop Connection; the rest keep the balancer's order
    assert app[:4] == ["date", "content-type", "content-length", "server"], names
    assert app[-2:] == ["access-control-allow-origin", "access-control-allow-credentials"]
