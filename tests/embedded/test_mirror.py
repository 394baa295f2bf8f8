"""Mirroring and the Python httpbin of Lab 5.2, through the mesh model (no API server).

Facts: the manual's gunicorn 19.9.0 logs (start-up lines, default access format), its body
sizes 527 (v1) and 567 (v2: ``httpbin-shadow:8000`` plus ``X-Envoy-Internal``) for the same
request, Envoy's ``-shadow`` host suffix, and the teapot's 135 bytes (Lab 6).
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import pytest
from mesh_testkit import Kit

from pytest_istiolab import traffic
from pytest_istiolab.embedded.mesh import request_from_pod
from pytest_istiolab.embedded.mesh.headers import Headers
from pytest_istiolab.embedded.mesh.mirror import shadow_request, targets
from pytest_istiolab.embedded.mesh.model import Destination, Request
from pytest_istiolab.embedded.workloads import container_started
from pytest_istiolab.embedded.workloads.base import AppRequest
from pytest_istiolab.embedded.workloads.python_httpbin import (
    access_line,
    jsonify,
    listen_port,
)

IMAGE = "docker.io/kennethreitz/httpbin"
COMMAND = ["gunicorn", "--access-logfile", "-", "-b", "0.0.0.0:80", "httpbin:app"]
ROUTES = """
apiVersion: networking.istio.io/v1alpha3
kind: VirtualService
metadata: {name: httpbin}
spec:
  hosts: [httpbin]
  http:
  - route:
    - destination: {host: httpbin, subset: v1}
      weight: 100
    %s
---
apiVersion: networking.istio.io/v1alpha3
kind: DestinationRule
metadata: {name: httpbin}
spec:
  host: httpbin
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
"""
MIRROR = "mirror: {host: httpbin, subset: v2}\n    mirrorPercentage: {value: %s}"
ACCESS = re.compile(r'^127\.0\.0\.6 - - \[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d \+0000\] '
                    r'"GET /headers HTTP/1\.1" (\d{3}) (\d+) "-" "curl/8\.14\.1"$')


def python_httpbin(kit: Kit, version: str, command: list[str] | None = COMMAND) -> dict:
    pod = kit.pod(f"httpbin-{version}-5b6f8c7d9-{version}ab1", "default", IMAGE,
                  {"app": "httpbin", "version": version}, ports=[80], container="httpbin")
    if command is not None:
        def fill(obj: dict) -> dict:
            obj["spec"]["containers"][0]["command"] = command
            return obj
        pod = kit.store.mutate(kit.rtype("", "pods"), "default", pod["metadata"]["name"], fill)
    container_started(kit.rt, pod, pod["spec"]["containers"][0], kit.rt.clock.now())
    return pod


@pytest.fixture
def kit() -> Kit:
    k = Kit(seed=5)
    k.sleep()
    python_httpbin(k, "v1")
    python_httpbin(k, "v2")
    k.service("httpbin", "default", {"app": "httpbin"}, [("http", 8000, 80)])
    return k


def curl(kit: Kit, path: str = "/headers"):  # type: ignore[no-untyped-def]
    return request_from_pod(kit.rt, kit.get_pod("sleep"), "GET", f"http://httpbin:8000{path}",
                            Headers({"user-agent": "curl/8.14.1", "accept": "*/*"}))


def access(kit: Kit, version: str) -> list[tuple[int, int]]:
    lines = kit.logs(kit.get_pod(f"httpbin-{version}"), "httpbin")
    return [(int(m.group(1)), int(m.group(2))) for m in map(ACCESS.match, lines) if m]


# ------------------------------------------------------------------ configuration
@pytest.mark.parametrize(("route", "percent"), [
    ({"mirror": {"host": "httpbin", "subset": "v2"}}, 100.0),
    ({"mirror": {"host": "httpbin"}, "mirrorPercentage": {"value": 12.5}}, 12.5),
    ({"mirror": {"host": "httpbin"}, "mirrorPercent": 30}, 30.0),
    ({"mirror": {"host": "httpbin"}, "mirror_percent": 40}, 40.0),
    ({"mirrors": [{"destination": {"host": "httpbin"}, "percentage": {"value": 5}}]}, 5.0),
])
def test_mirror_targets_and_percentages(route: dict, percent: float) -> None:
    ((dest, pct),) = targets(route, "lab05")
    assert dest.host == "httpbin.lab05.svc.cluster.local" and pct == percent
    assert dest == Destination(dest.host, route.get("mirror", {}).get("subset"))


def test_the_copy_has_the_shadow_authority_and_async_client_headers() -> None:
    copy = shadow_request(Request("GET", "/headers", "httpbin:8000",
                                  Headers({"x-request-id": "r1"})), "10.244.0.12")
    assert copy.authority == "httpbin-shadow:8000"
    assert (copy.headers.get("x-envoy-internal"), copy.headers.get("x-forwarded-for"),
            copy.headers.get("x-request-id")) == ("true", "10.244.0.12", "r1")
    assert shadow_request(Request("GET", "/", "httpbin"), "1.2.3.4").authority == \
        "httpbin-shadow"


# ------------------------------------------------------------------ Lab 5.2 end to end
def test_gunicorn_starts_like_the_manual_shows(kit: Kit) -> None:
    lines = kit.logs(kit.get_pod("httpbin-v2"), "httpbin")
    pattern = r"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \+0000\] \[(\d+)\] \[INFO\] (.*)$"
    parsed = [re.match(pattern, ln) for ln in lines]
    assert all(parsed) and len(parsed) == 4
    messages = [m.group(2) for m in parsed if m]
    pid = [m.group(1) for m in parsed if m][3]
    assert messages == ["Starting gunicorn 19.9.0", "Listening at: http://0.0.0.0:80 (1)",
                        "Using worker: sync", f"Booting worker with pid: {pid}"]


def test_routed_to_v1_only_v1_logs_the_request(kit: Kit) -> None:
    kit.apply(ROUTES % "")
    response = curl(kit)
    assert response.status == 200 and json.loads(response.body)["headers"]["Host"] == \
        "httpbin:8000"
    assert access(kit, "v1") == [(200, len(response.body))] and access(kit, "v2") == []


def test_mirrored_every_request_reaches_v2_and_the_client_sees_v1(kit: Kit) -> None:
    kit.apply(ROUTES % (MIRROR % 100))
    sizes = [len(curl(kit).body) for _ in range(5)]
    v1, v2 = access(kit, "v1"), access(kit, "v2")
    assert [s for _, s in v1] == sizes and len(v2) == 5
    assert all(copy > seen for (_, copy), seen in zip(v2, sizes, strict=True))
    inbound = [ln for ln in kit.logs(kit.get_pod("httpbin-v2")) if '"GET /headers' in ln]
    assert len(inbound) == 5 and all('"httpbin-shadow:8000"' in ln for ln in inbound)
    client = [ln for ln in kit.logs(kit.get_pod("sleep")) if "/headers" in ln]
    assert len(client) == 5  # the client's sidecar logs no line for the copies


def test_the_manuals_body_sizes_527_and_567() -> None:
    headers = {"Accept": "*/*", "Host": "httpbin:8000", "User-Agent": "curl/7.81.0-DEV",
               "X-B3-Parentspanid": "9d5d287f47ecd220", "X-B3-Sampled": "1",
               "X-B3-Spanid": "d6be1d30ff475d60",
               "X-B3-Traceid": "7599f42a01151eab9d5d287f47ecd220", "X-Envoy-Attempt-Count": "1",
               "X-Forwarded-Client-Cert": "By=spiffe://cluster.local/ns/default/sa/default;Hash="
               "0eba4506484820359556030d829573051b0f525ef9b6205fa5d88eed040e131b;Subject=\"\";"
               "URI=spiffe://cluster.local/ns/default/sa/sleep"}
    assert len(jsonify({"headers": headers}).body) == 527
    shadow = {**headers, "Host": "httpbin-shadow:8000", "X-Envoy-Internal": "true"}
    assert len(jsonify({"headers": shadow}).body) == 567


def test_the_copys_answer_is_ignored(kit: Kit) -> None:
    kit.apply(ROUTES % (MIRROR % 100))
    response = curl(kit, "/status/418")
    assert response.status == 418 and access(kit, "v2") == []  # /headers lines only
    assert len(kit.logs(kit.get_pod("httpbin-v2"), "httpbin")) == 5  # 4 start-up + 1 access


def test_mirror_percentage_zero_sends_no_copy(kit: Kit) -> None:
    kit.apply(ROUTES % (MIRROR % 0))
    for _ in range(5):
        curl(kit)
    assert len(access(kit, "v1")) == 5 and access(kit, "v2") == []


def test_mirror_percentage_is_a_proportion(kit: Kit) -> None:
    kit.apply(ROUTES % (MIRROR % 30))
    for _ in range(200):
        curl(kit)
    traffic.assert_proportion(len(access(kit, "v2")), 200, 0.30,
                              description="requests mirrored at mirrorPercentage 30")


def test_a_mirror_to_a_subset_without_pods_changes_nothing(kit: Kit) -> None:
    kit.apply((ROUTES % "mirror: {host: httpbin, subset: v3}").replace(
        "  - {name: v2, labels: {version: v2}}", "  - {name: v2, labels: {version: v2}}\n"
        "  - {name: v3, labels: {version: v3}}"))
    assert curl(kit).status == 200 and access(kit, "v2") == []


# ------------------------------------------------------------------ gunicorn details
def test_access_line_in_gunicorns_default_format() -> None:
    request = AppRequest("GET", "/headers", "httpbin:8000", Headers({"user-agent":
                                                                     "curl/8.14.1"}),
                         remote_ip="127.0.0.6")
    when = datetime(2026, 11, 26, 3, 57, 3, tzinfo=UTC).timestamp()
    assert access_line(request, 200, 303, when) == (
        '127.0.0.6 - - [26/Nov/2026:03:57:03 +0000] "GET /headers HTTP/1.1" 200 303 "-" '
        '"curl/8.14.1"')


def test_no_access_log_without_the_flag_and_the_images_own_port() -> None:
    kit = Kit(seed=5)
    kit.sleep()
    pod = python_httpbin(kit, "v1", command=None)
    kit.service("httpbin", "default", {"app": "httpbin"}, [("http", 8000, 80)])
    assert curl(kit).status == 200
    lines = kit.logs(pod, "httpbin")
    assert len(lines) == 4 and "Using worker: gevent" in lines[2]
    assert listen_port({"image": "docker.io/citizenstig/httpbin"}) == 8000
    # the image has no ENTRYPOINT: args alone are the command line
    assert listen_port({"image": IMAGE, "args": ["gunicorn", "--bind=0.0.0.0:9000", "x"]}) == 9000
    assert listen_port({"image": IMAGE, "command": ["gunicorn", "-b", "0.0.0.0:8080"]}) == 8080


def test_the_teapot_of_lab_6(kit: Kit) -> None:
    kit.apply(ROUTES % "")
    response = curl(kit, "/status/418")
    assert response.status == 418 and len(response.body) == 135
    assert b"-=[ teapot ]=-" in response.body
    assert response.headers.get("x-more-info") == "http://tools.ietf.org/html/rfc2324"


def test_an_absolute_redirect_page_grows_by_twice_the_shadow_suffix() -> None:
    """L5.2-X01's observable: httpbin's ``/absolute-redirect/1`` names ``http://<Host>/get`` in
    its Location and twice in Werkzeug's page, and nothing else of the request."""
    import random
    from types import SimpleNamespace

    from pytest_istiolab.embedded.workloads.python_httpbin import route

    def page(host: str):  # type: ignore[no-untyped-def]
        req = SimpleNamespace(path_only="/absolute-redirect/1", method="GET", authority=host)
        return route(req, random.Random(0), lambda _s: None)  # type: ignore[arg-type]

    v1, v2 = page("httpbin:8000"), page("httpbin-shadow:8000")
    assert (v1.status, v1.headers.get("Location")) == (302, "http://httpbin:8000/get")
    assert v1.body.decode().count("http://httpbin:8000/get") == 2
    assert len(v2.body) - len(v1.body) == 2 * len("-shadow")
