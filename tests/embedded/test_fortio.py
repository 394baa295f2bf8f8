"""``fortio`` in the fortio container: its output formats, flags, errors and the JSON result.

Format facts come from fortio's sources (``stats``, ``periodic``, ``fhttp/httprunner.go``,
``cli/fortio_main.go``) and a real fortio 1.60.3 run against Envoy (the histogram lines of
``test_histogram_prints_like_fortio`` are that run's). Runs go through the mesh model
(``mesh_testkit``) without an API server.
"""

from __future__ import annotations

import json
import re

import pytest
from mesh_testkit import Kit

from pytest_istiolab import traffic
from pytest_istiolab.embedded.tools import run_in_container
from pytest_istiolab.embedded.tools.fortio_report import Histogram, go_duration, go_g

URL = "http://httpbin:8000/get"
REAL_LATENCIES = [0.000391494, 0.0009, 0.0008, 0.0035, 0.0036, 0.0045, 0.0055, 0.0052, 0.0058,
                  0.0061, 0.0062, 0.0063, 0.0064, 0.0075, 0.0085, 0.0095, 0.0096, 0.0115,
                  0.0125, 0.013544634]
REAL_HISTOGRAM = """\
# range, mid point, percentile, count
>= 0.000391494 <= 0.001 , 0.000695747 , 15.00, 3
> 0.003 <= 0.004 , 0.0035 , 25.00, 2
> 0.004 <= 0.005 , 0.0045 , 30.00, 1
> 0.005 <= 0.006 , 0.0055 , 45.00, 3
> 0.006 <= 0.007 , 0.0065 , 65.00, 4
> 0.007 <= 0.008 , 0.0075 , 70.00, 1
> 0.008 <= 0.009 , 0.0085 , 75.00, 1
> 0.009 <= 0.01 , 0.0095 , 85.00, 2
> 0.011 <= 0.012 , 0.0115 , 90.00, 1
> 0.012 <= 0.0135446 , 0.0127723 , 100.00, 2
# target 50% 0.00625
# target 75% 0.009
# target 90% 0.012
# target 99% 0.0133902
# target 99.9% 0.0135292
"""


@pytest.fixture
def kit() -> Kit:
    k = Kit(seed=3)
    k.httpbin()
    k.sleep()
    k.pod("fortio-deploy-6d5c7b8f9-k2x4q", "default", "fortio/fortio:latest_release",
          {"app": "fortio"}, ports=[8080])
    return k


def fortio(kit: Kit, *args: str, container: str = "fortio", pod: str = "fortio-deploy"):  # type: ignore[no-untyped-def]
    return run_in_container(kit.rt, kit.get_pod(pod), container, ["/usr/bin/fortio", *args])


# ------------------------------------------------------------------ Go formatting
@pytest.mark.parametrize(("value", "text"), [(0.000391494, "0.000391494"), (6.4519e-05,
                         "6.4519e-05"), (231.0, "231"), (0.0, "0"), (1e6, "1e+06"),
                         (123456.0, "123456"), (99.9, "99.9"), (0.5, "0.5")])
def test_go_shortest_g(value: float, text: str) -> None:
    assert go_g(value) == text


def test_go_precision_g_and_durations() -> None:
    assert (go_g(0.0063910061, 8), go_g(0.0036461, 4), go_g(0.127820122, 9)) == (
        "0.0063910061", "0.003646", "0.127820122")
    assert [go_duration(s) for s in (0.065360704, 1.5, 120.0, 0.00085, 5.0)] == [
        "65.360704ms", "1.5s", "2m0s", "850µs", "5s"]


def test_histogram_prints_like_fortio() -> None:
    h = Histogram()
    for value in REAL_LATENCIES:
        h.record(value)
    text = h.text("Aggregated Function Time", [50, 75, 90, 99, 99.9])
    head, _, rest = text.partition("\n")
    assert head.startswith("Aggregated Function Time : count 20 avg 0.0063918064 +/- ")
    assert rest == REAL_HISTOGRAM


# ------------------------------------------------------------------ a load run
def test_text_summary_lines_and_their_order(kit: Kit) -> None:
    result = fortio(kit, "load", "-c", "2", "-qps", "0", "-n", "20", "-loglevel", "Warning", URL)
    assert result.exit_code == 0 and result.stdout == b""  # fortio load writes to stderr
    lines = result.stderr.decode().splitlines()
    assert json.loads(lines[0])["msg"] == "Log level is now 3 Warning (was 2 Info)"
    assert lines[1] == ("Fortio 1.69.5 running at 0 queries per second, 8->8 procs, "
                        f"for 20 calls: {URL}")
    assert lines[2] == "Starting at max qps with 2 thread(s) [gomax 8] for exactly 20 calls " \
        "(10 per thread + 0)"
    order = ["Ended after ", "Aggregated Function Time : count 20 ", "Error cases : ",
             "# Socket and IP used for each connection:", "Connection time (s) : count ",
             "Sockets used: ", "Uniform: false, Jitter: false, Catchup allowed: true",
             "IP addresses distribution:", "Code 200 : ", "Response Header Sizes : count 20 ",
             "Response Body/Total Sizes : count 20 ", "All done 20 calls (plus 0 warmup) "]
    positions = [next(i for i, ln in enumerate(lines) if ln.startswith(p)) for p in order]
    assert positions == sorted(positions)
    assert re.fullmatch(r"All done 20 calls \(plus 0 warmup\) \d+\.\d{3} ms avg, \d+\.\d qps",
                        lines[-1])
    codes = {int(c): (int(n), float(p)) for c, n, p in
             re.findall(r"^Code (\d+) : (\d+) \((\d+\.\d) %\)$", "\n".join(lines), re.M)}
    assert sum(n for n, _ in codes.values()) == 20
    assert all(abs(p - 100 * n / 20) < 0.06 for n, p in codes.values())


def test_sockets_used_counts_the_reconnects_after_each_non_ok_answer(kit: Kit) -> None:
    kit.apply("""
apiVersion: networking.istio.io/v1alpha3
kind: DestinationRule
metadata: {name: httpbin}
spec:
  host: httpbin
  trafficPolicy:
    connectionPool:
      tcp: {maxConnections: 1}
      http: {http1MaxPendingRequests: 1, maxRequestsPerConnection: 1}
""")
    text = fortio(kit, "load", "-c", "2", "-qps", "0", "-n", "20", URL).stderr.decode()
    sockets = int(re.search(r"^Sockets used: (\d+) \(for perfect keepalive, would be 2\)$", text,
                            re.M).group(1))  # type: ignore[union-attr]
    refused = traffic.fortio_codes(text)[503]
    assert 2 + refused - 2 <= sockets <= 2 + refused  # a thread ending on a 503 opens no socket
    warnings = [json.loads(ln) for ln in text.splitlines() if '"Non ok http code"' in ln]
    assert len(warnings) == refused and {w["code"] for w in warnings} == {503}


def test_json_result_on_stdout(kit: Kit) -> None:
    result = fortio(kit, "load", "-c", "2", "-qps", "0", "-n", "20", "-json", "-", URL)
    doc = json.loads(result.stdout)
    assert (doc["RunType"], doc["NumThreads"], doc["RequestedQPS"], doc["Exactly"]) == (
        "HTTP", 2, "max", 20)
    assert doc["RequestedDuration"] == "exactly 20 calls" and doc["ActualQPS"] > 0
    assert doc["RetCodes"] == {"200": 20} and doc["DurationHistogram"]["Count"] == 20
    assert {"Count", "Min", "Max", "Sum", "Avg", "StdDev", "Data", "Percentiles"} <= set(
        doc["DurationHistogram"])
    assert doc["URL"] == URL and doc["SocketCount"] == sum(doc["Sockets"]) == 2
    assert traffic.fortio_codes(result.stdout.decode()) == {200: 20}
    assert result.stderr.decode().endswith(
        f"Successfully wrote {len(result.stdout)} bytes of Json data to stdout\n")


def test_a_duration_run_at_a_fixed_rate_takes_virtual_time_only(kit: Kit) -> None:
    before = kit.rt.clock.now()
    text = fortio(kit, "load", "-c", "2", "-qps", "10", "-t", "3s", URL).stderr.decode()
    assert "Starting at 10 qps with 2 thread(s) [gomax 8] for 3s : 15 calls each (total 30)" \
        in text
    assert "All done 30 calls (plus 2 warmup)" in text
    assert 3.0 <= kit.rt.clock.now() - before < 4.0


def test_the_request_fortio_sends(kit: Kit) -> None:
    fortio(kit, "load", "-c", "1", "-qps", "0", "-n", "2", URL)
    line = kit.logs(kit.get_pod("fortio-deploy"))[-1]
    assert '"fortio.org/fortio-1.69.5"' in line and '"httpbin:8000"' in line
    echoed = json.loads(fortio(kit, "curl", "-H", "X-Lab: 4.2", URL).stdout)["headers"]
    assert echoed["X-Lab"] == ["4.2"] and echoed["Host"] == ["httpbin:8000"]


def test_same_seed_same_output() -> None:
    outputs = []
    for _ in range(2):
        k = Kit(seed=11)
        k.httpbin()
        k.pod("fortio-deploy-6d5c7b8f9-k2x4q", "default", "fortio/fortio:latest_release",
              {"app": "fortio"}, ports=[8080])
        text = fortio(k, "load", "-c", "3", "-qps", "0", "-n", "30", URL).stderr.decode()
        outputs.append(re.sub(r'"ts":[\d.]+', "", text))
    assert outputs[0] == outputs[1]


# ------------------------------------------------------------------ curl
def test_curl_prints_headers_on_stderr_and_the_body_on_stdout(kit: Kit) -> None:
    result = fortio(kit, "load", "-curl", URL)
    assert result.exit_code == 0
    assert re.search(rb"^HTTP/1.1 200 OK\r\n", result.stderr, re.M)
    body = json.loads(result.stdout)
    assert body["url"] == URL and body["headers"]["User-Agent"] == ["fortio.org/fortio-1.69.5"]


def test_curl_exits_1_unless_200(kit: Kit) -> None:
    result = fortio(kit, "curl", "http://httpbin:8000/status/418")
    assert result.exit_code == 1 and b'"Error status 418"' in result.stderr


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize(("args", "code", "first"), [
    (["load", "-foo", URL], 2, "flag provided but not defined: -foo"),
    (["load", "-c", "x", URL], 2, 'invalid value "x" for flag -c: parse error'),
    (["load", "-c"], 2, "flag needs an argument: -c"),
])
def test_go_flag_errors(kit: Kit, args: list[str], code: int, first: str) -> None:
    result = fortio(kit, *args)
    text = result.stderr.decode()
    assert result.exit_code == code and text.splitlines()[0] == first
    assert "Φορτίο 1.69.5 usage:" in text


@pytest.mark.parametrize("args", [["load", "-grpc", URL], ["load", "-payload", "x", URL],
                                  ["server"], ["load", "https://httpbin:8000/get"],
                                  ["load", "-t", "0", URL], ["load", "-json", "out.json", URL]])
def test_what_the_embedded_cluster_does_not_model_is_said(kit: Kit, args: list[str]) -> None:
    result = fortio(kit, *args)
    assert result.exit_code == 1
    assert b"the embedded cluster does not model" in result.stderr


def test_an_unmodelled_public_host_is_named_as_not_modelled(kit: Kit) -> None:
    result = fortio(kit, "curl", "http://www.google.com/")
    assert result.exit_code == 1
    assert b"lookup www.google.com: no such host (not modelled by the embedded" in result.stderr
    plain = fortio(kit, "curl", "http://no-such-svc:8000/")
    assert b"lookup no-such-svc: no such host\n" in plain.stderr


def test_load_needs_one_url(kit: Kit) -> None:
    result = fortio(kit, "load", "-c", "2")
    assert result.exit_code == 1
    assert result.stderr.decode().rstrip().endswith("Error: fortio load/curl needs a URL or "
                                                    "destination")


def test_fortio_is_only_in_the_fortio_image(kit: Kit) -> None:
    result = fortio(kit, "version", container="sleep", pod="sleep")
    assert result.exit_code == 126


def test_codes_parser_reads_text_that_starts_with_a_log_line() -> None:
    text = ('{"ts":1,"level":"info","r":1,"file":"logger.go","line":254,"msg":"x"}\n'
            "Code 200 : 17 (85.0 %)\nCode 503 : 3 (15.0 %)\n")
    assert traffic.fortio_codes(text) == {200: 17, 503: 3}
