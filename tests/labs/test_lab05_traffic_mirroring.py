"""Lab 5.2 — Traffic mirroring (manual: "调试 / 流量镜像"). Checks L5.2-C01..L5.2-C04.

The manual runs two Python httpbin Deployments (``httpbin-v1.yaml``, ``httpbin-v2.yaml``:
gunicorn with ``--access-logfile -``) behind one Service (``httpbinsvc.yaml``), routes all
traffic to v1 (``httpbinvs.yaml``), curls ``/headers`` from the sleep pod and reads both
pods' logs; then it applies ``mirror.yaml`` (still 100 % to v1, a copy of every request to
v2, ``mirrorPercentage: 100``) and reads the logs again. Here the lab's own namespace stands in
for ``default``; each test applies the route it needs (the manual's order is C01-C04) and,
because a real mesh applies a VirtualService a moment after ``kubectl apply``, waits for the
route to be in effect. Logs are read, never followed (D-18).

What is asserted:

* C01/C03: the client gets one 200 JSON answer echoing ``Host: httpbin:8000``,
  ``X-Envoy-Attempt-Count: 1`` and the XFCC of sleep calling httpbin (service account
  ``default``, D-08 does not apply: this is the Python httpbin). B3 headers are not asserted:
  Istio 1.26 traces nothing by default (D-22). With the mirror on, the body the client gets
  is v1's: its size is the size v1 logged for that request, not v2's.
* C02: the request adds exactly one gunicorn access line to v1's log
  (``127.0.0.6 - - [...] "GET /headers HTTP/1.1" 200 N "-" "curl/..."``; 127.0.0.6 is the
  sidecar's inbound source) and none to v2's; both logs start with gunicorn 19.9.0's four
  start-up lines.
* C04: every request now adds one line to v1's log and one to v2's, logged in the same
  second as v1's (the manual's identical timestamps; one second of slack for a request that
  straddles a second boundary), and v2's is the larger body, as in the manual (sizes 527 and
  567; the copy's ``-shadow`` authority and its added headers both lengthen it, so the size
  alone does not prove the authority: L5.2-X01 does). When the mesh writes access logs (demo
  profile, D-01), v2's sidecar logged the copy with authority ``httpbin-shadow:8000``.
  ``N`` requests make ``N`` mirrored lines (``mirrorPercentage: 100``).
* L5.2-X01 (beyond the manual): the ``-shadow`` authority without access logs, from the sizes
  gunicorn logs for ``/absolute-redirect/1`` (see the test).
* D-13: the manual's ``nano stiolabmanual/httpbinvs.yaml`` is a typo; D-27: ``v1alpha3``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime

import pytest

from pytest_istiolab import waiting
from pytest_istiolab.kube import Applier, Kube
from pytest_istiolab.traffic import ProxyLog

pytestmark = [pytest.mark.lab(5)]

LAB = "lab05-debugging/"
DEPLOYMENTS = (LAB + "httpbin-v1.yaml", LAB + "httpbin-v2.yaml", LAB + "httpbinsvc.yaml")
ROUTE_V1 = LAB + "httpbinvs.yaml"
MIRROR = LAB + "mirror.yaml"
URL = "http://httpbin:8000/headers"
STARTUP = ("[INFO] Starting gunicorn 19.9.0", "[INFO] Listening at: http://0.0.0.0:80 (1)",
           "[INFO] Using worker: sync", "[INFO] Booting worker with pid: ")
ACCESS = re.compile(r'^(?P<ip>\S+) - - \[(?P<time>\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4})\] '
                    r'"(?P<method>\S+) (?P<path>\S+) (?P<protocol>[^"]+)" (?P<status>\d{3}) '
                    r'(?P<size>\d+|-) "(?P<referer>[^"]*)" "(?P<agent>[^"]*)"$')
REQUESTS = 3  # L5.2-C04: N requests => N mirrored lines
ONLY_V1_REQUESTS = 8  # L5.2-C02: requests per poll that must all reach v1 alone
REDIRECT = "http://httpbin:8000/absolute-redirect/1"  # L5.2-X01: a page naming its Host twice
SHADOW = "-shadow"


@dataclass
class Httpbins:
    """httpbin v1 and v2 of the lab namespace and their gunicorn logs."""

    kube: Kube
    namespace: str
    applier: Applier

    def pod(self, version: str) -> str:
        return self.kube.first_pod(self.namespace, f"app=httpbin,version={version}")

    def log(self, version: str) -> list[str]:
        return self.kube.logs(self.namespace, self.pod(version), container="httpbin").splitlines()

    def access(self, version: str) -> list[re.Match[str]]:
        return [m for m in map(ACCESS.match, self.log(version)) if m]


@pytest.fixture(scope="module")
def httpbins(cluster, istio, lab_namespace, istio_settings) -> Iterator[Httpbins]:
    applier = Applier(cluster.kube, lab_namespace)
    for manifest in DEPLOYMENTS:
        applier(manifest)
    cluster.kube.wait_for_deployments(lab_namespace, ["httpbin-v1", "httpbin-v2"])
    yield Httpbins(cluster.kube, lab_namespace, applier)
    if istio_settings.keep != "always":
        applier.cleanup()


def eventually(cluster, check: Callable[[], object], description: str):  # type: ignore[no-untyped-def]
    t = cluster.timeouts
    return waiting.eventually(check, timeout=t.eventually, interval=t.poll_interval,
                              consecutive=t.consecutive, description=description)


def headers_of(sleep) -> tuple[dict[str, str], int]:  # type: ignore[no-untyped-def]
    """``curl http://httpbin:8000/headers`` from sleep: the echoed headers and the body size."""
    result = sleep.curl(URL, output=None)
    assert result.exit_code == 0, f"curl {URL} failed (exit {result.exit_code}): {result.stderr}"
    try:
        body = json.loads(result.stdout)
    except ValueError:  # an empty or non-JSON body: "not yet" for eventually, clear otherwise
        raise AssertionError(f"curl {URL} answered with a body that is not httpbin's "
                             f"JSON: {result.stdout[:200]!r}") from None
    assert isinstance(body, dict) and "headers" in body, f"no headers in {result.stdout[:200]!r}"
    return body["headers"], len(result.stdout.encode())


def request_and_new_lines(cluster, httpbins: Httpbins, sleep, *,  # type: ignore[no-untyped-def]
                          copy: bool = False
                          ) -> tuple[int, list[re.Match[str]], list[re.Match[str]]]:
    """One request; then the body size and the access lines it added to v1's and v2's logs.

    The logs are polled briefly (a mirrored copy is sent beside the request, not before the
    answer); with ``copy`` the poll also waits for v2's line.
    """
    before = {v: len(httpbins.access(v)) for v in ("v1", "v2")}
    _, size = headers_of(sleep)

    def logged() -> tuple[list[re.Match[str]], list[re.Match[str]]]:
        new = {v: httpbins.access(v)[before[v]:] for v in ("v1", "v2")}
        assert new["v1"], "no new access line in httpbin-v1's log yet"
        assert new["v2"] or not copy, "no mirrored copy in httpbin-v2's log yet"
        return new["v1"], new["v2"]

    t = cluster.timeouts
    new_v1, new_v2 = waiting.eventually(logged, timeout=6 * t.poll_interval,
                                        interval=t.poll_interval,
                                        description="the httpbin logs show the request")
    return size, new_v1, new_v2


def logged_at(line: re.Match[str]) -> float:
    """gunicorn's ``%(t)s`` (whole seconds) as epoch seconds."""
    return datetime.strptime(line["time"], "%d/%b/%Y:%H:%M:%S %z").timestamp()


def assert_manual_line(line: re.Match[str]) -> None:
    assert (line["ip"], line["method"], line["path"], line["protocol"], line["status"],
            line["referer"]) == ("127.0.0.6", "GET", "/headers", "HTTP/1.1", "200", "-"), line[0]
    assert line["agent"].startswith("curl/"), line[0]


# ------------------------------------------------------------------ L5.2-C01
@pytest.mark.check("L5.2-C01")
def test_the_request_is_served_through_both_sidecars(cluster, httpbins: Httpbins, sleep,
                                                      lab_namespace) -> None:
    """Polled: right after the apply the sleep sidecar may not have the route or v1's
    endpoints yet (an empty answer)."""
    httpbins.applier(ROUTE_V1)
    headers, _ = eventually(cluster, lambda: headers_of(sleep), "httpbin answers /headers")
    assert headers["Host"] == "httpbin:8000"
    assert headers["X-Envoy-Attempt-Count"] == "1"
    xfcc = headers["X-Forwarded-Client-Cert"]
    assert f"By=spiffe://cluster.local/ns/{lab_namespace}/sa/default" in xfcc, xfcc
    assert f"URI=spiffe://cluster.local/ns/{lab_namespace}/sa/sleep" in xfcc, xfcc


# ------------------------------------------------------------------ L5.2-C02
@pytest.mark.check("L5.2-C02")
@pytest.mark.parametrize("version", ["v1", "v2"])
def test_gunicorn_logs_its_start(httpbins: Httpbins, version: str) -> None:
    start = httpbins.log(version)[:4]
    assert len(start) == 4 and all(want in got for want, got in zip(STARTUP, start, strict=True)), (
        f"httpbin-{version} does not start like gunicorn 19.9.0 (sync worker on 0.0.0.0:80):\n"
        + "\n".join(start))


@pytest.mark.check("L5.2-C02")
def test_without_the_mirror_only_v1_logs_the_request(cluster, httpbins: Httpbins,
                                                     sleep) -> None:
    """Before the v1 route reaches the sleep sidecar, the Service balances over v1 and v2, and
    one request in two reaches v1 anyway: each poll sends ``ONLY_V1_REQUESTS`` requests, so a
    pass by chance before the route is in effect is ``2 ** -ONLY_V1_REQUESTS`` per poll."""
    httpbins.applier(ROUTE_V1)

    def only_v1() -> None:
        for _ in range(ONLY_V1_REQUESTS):
            _, new_v1, new_v2 = request_and_new_lines(cluster, httpbins, sleep)
            assert len(new_v1) == 1, f"v1 logged {len(new_v1)} lines for one request"
            assert_manual_line(new_v1[0])
            assert not new_v2, "v2 got a request while the route sends everything to v1: " + \
                new_v2[0][0]

    eventually(cluster, only_v1, f"{ONLY_V1_REQUESTS} requests in a row reach v1 only")


# ------------------------------------------------------------------ L5.2-C03/C04
@pytest.fixture
def mirroring(cluster, httpbins: Httpbins, sleep) -> Iterator[None]:
    """``mirror.yaml`` applied and in effect (a request reaches v2); the v1 route after.

    ``mirror.yaml`` names the subsets v1 and v2 but does not define them: the DestinationRule
    of ``httpbinvs.yaml`` does, so it is applied first (this test may run alone)."""
    httpbins.applier(ROUTE_V1)
    httpbins.applier(MIRROR)

    def mirrored() -> None:
        request_and_new_lines(cluster, httpbins, sleep, copy=True)

    eventually(cluster, mirrored, "the mirror rule is in effect")
    yield
    httpbins.applier(ROUTE_V1)


@pytest.mark.check("L5.2-C03")
def test_with_the_mirror_the_client_still_gets_v1s_answer(cluster, httpbins: Httpbins, sleep,
                                                          mirroring, lab_namespace) -> None:
    headers, _ = headers_of(sleep)
    assert (headers["Host"], headers["X-Envoy-Attempt-Count"]) == ("httpbin:8000", "1")
    assert f"URI=spiffe://cluster.local/ns/{lab_namespace}/sa/sleep" in \
        headers["X-Forwarded-Client-Cert"]
    size, new_v1, _ = request_and_new_lines(cluster, httpbins, sleep)
    assert [line["size"] for line in new_v1] == [str(size)], (
        f"the client got {size} bytes but v1 logged {[line[0] for line in new_v1]}")


@pytest.mark.check("L5.2-C04")
def test_every_request_is_mirrored_to_v2_with_the_shadow_authority(
        cluster, httpbins: Httpbins, sleep, mirroring) -> None:
    for _ in range(REQUESTS):
        def both_logged() -> tuple[list[re.Match[str]], list[re.Match[str]]]:
            _, new_v1, new_v2 = request_and_new_lines(cluster, httpbins, sleep, copy=True)
            assert len(new_v1) == 1 and len(new_v2) == 1, (
                f"one request gave {len(new_v1)} v1 line(s) and {len(new_v2)} v2 line(s)")
            return new_v1, new_v2

        (v1,), (v2,) = eventually(cluster, both_logged, "each request reaches v1 and v2")
        assert_manual_line(v1)
        assert_manual_line(v2)
        apart = abs(logged_at(v2) - logged_at(v1))
        assert apart <= 1.0, f"the copy is not sent with the request:\n{v1[0]}\n{v2[0]}"
        assert int(v2["size"]) > int(v1["size"]), (
            f"v2's copy should echo the longer httpbin-shadow:8000 authority:\n{v1[0]}\n{v2[0]}")


@pytest.mark.check("L5.2-C04")
def test_v2s_sidecar_receives_the_copy_for_httpbin_shadow(cluster, istio, httpbins: Httpbins,
                                                          sleep, mirroring) -> None:
    if not istio.mesh_config().get("accessLogFile"):
        pytest.skip("the mesh writes no access logs (meshConfig.accessLogFile is empty)")
    log = ProxyLog(cluster.kube, httpbins.namespace, httpbins.pod("v2"), cluster.timeouts)
    mark = log.mark()
    headers_of(sleep)
    copies = log.wait_for_new(mark, lambda e: e.path == "/headers",
                              description="httpbin-v2's sidecar logs the mirrored copy")
    assert [(e.authority, e.status) for e in copies] == [("httpbin-shadow:8000", 200)], \
        [e.line for e in copies]


# ------------------------------------------------------------------ L5.2-X01
@pytest.mark.check("L5.2-X01")
def test_the_copy_reaches_v2_for_the_shadow_host_without_access_logs(
        cluster, httpbins: Httpbins, sleep, mirroring) -> None:
    """Beyond the manual: C04 sees the ``-shadow`` authority in v2's sidecar access log, which
    a mesh without access logs (the default profile, D-01) does not write, and in v2's larger
    ``/headers`` body, which the copy's own headers (``x-envoy-internal``, a longer
    ``x-forwarded-for``) make larger anyway. httpbin's ``/absolute-redirect/1`` answers a 302
    whose page names ``http://<Host>/get`` twice and nothing else of the request, so the copy's
    page is longer than v1's by exactly twice ``-shadow``: read from gunicorn's own log lines,
    on any mesh and any profile."""
    before = {v: len(httpbins.access(v)) for v in ("v1", "v2")}

    def redirected() -> None:
        result = sleep.curl(REDIRECT, output=None)
        assert result.exit_code == 0, f"curl {REDIRECT} failed: {result.stderr}"

    redirected()

    def logged() -> tuple[re.Match[str], re.Match[str]]:
        new = {v: [m for m in httpbins.access(v)[before[v]:]
                   if m["path"] == "/absolute-redirect/1"] for v in ("v1", "v2")}
        assert len(new["v1"]) == 1 and len(new["v2"]) == 1, (
            f"one request gave {len(new['v1'])} v1 and {len(new['v2'])} v2 redirect line(s)")
        return new["v1"][0], new["v2"][0]

    t = cluster.timeouts
    v1, v2 = waiting.eventually(logged, timeout=6 * t.poll_interval, interval=t.poll_interval,
                                description="v1 and v2 log the redirect request")
    assert (v1["status"], v2["status"]) == ("302", "302"), f"{v1[0]}\n{v2[0]}"
    assert int(v2["size"]) - int(v1["size"]) == 2 * len(SHADOW), (
        "the copy's Host should be v1's with -shadow (httpbin-shadow:8000): its redirect page "
        f"should be {2 * len(SHADOW)} bytes longer than v1's:\n{v1[0]}\n{v2[0]}")
