"""``curl`` exec'd in containers: argv as curl 8 parses it, output, exit codes, cookies.

Exit codes of the reference (envoy-istio-signatures.md): 6 unresolvable host, 7 refused,
28 timeout, 56 reset, 22 with -f; ``000`` from ``%{http_code}`` when nothing came back.
"""

from __future__ import annotations

import json
import re

import pytest
from mesh_testkit import HTTPBIN_GATEWAY, Kit

from pytest_istiolab import traffic
from pytest_istiolab.embedded.runtime import ExecResult
from pytest_istiolab.embedded.tools import run_in_container
from pytest_istiolab.embedded.tools.curl import parse_url
from pytest_istiolab.embedded.tools.curl_args import UsageError, parse


@pytest.fixture(scope="module")
def kit() -> Kit:
    k = Kit()
    k.bookinfo()
    k.httpbin()
    k.sleep()
    return k


def curl(kit: Kit, *args: str, pod: str = "sleep", container: str = "sleep") -> ExecResult:
    return run_in_container(kit.rt, kit.get_pod(pod), container, ["curl", *args])


# ---------------------------------------------------------------------- parsing
def test_short_options_cluster_and_take_attached_values() -> None:
    opts = parse(["-sSo", "/dev/null", "-HHost:httpbin.example.com", "-w%{http_code}", "u"])
    assert (opts.silent, opts.show_error, opts.outputs) == (True, True, ["/dev/null"])
    assert opts.headers == ["Host:httpbin.example.com"] and opts.write_out == "%{http_code}"
    assert opts.urls == ["u"]


def test_long_options_have_no_equals_form() -> None:
    with pytest.raises(UsageError, match="option --max-time=3: is unknown"):
        parse(["--max-time=3", "u"])
    with pytest.raises(UsageError, match="no URL specified"):
        parse(["-s"])
    with pytest.raises(UsageError, match="-o: requires parameter"):
        parse(["u", "-o"])
    with pytest.raises(UsageError, match="not modelled"):
        parse(["-F", "a=b", "u"])
    with pytest.raises(UsageError, match="-m: expected a proper numerical parameter"):
        parse(["-m", "soon", "u"])


def test_url_rules() -> None:
    url = parse_url("productpage:9080/a/../productpage?x=1#frag")
    assert url.effective == "http://productpage:9080/productpage?x=1"  # type: ignore[union-attr]
    assert parse_url("http://h:99999/").code == 3  # type: ignore[union-attr]
    assert parse_url("ftp://h/").message == 'Protocol "ftp" not supported'  # type: ignore[union-attr]
    assert parse_url("https://h/").code == 1  # type: ignore[union-attr]
    assert parse_url("http://a b/").message == \
        "URL rejected: Malformed input to a URL function"  # type: ignore[union-attr]


def test_usage_errors_exit_2(kit: Kit) -> None:
    result = curl(kit, "--bogus", "http://x")
    assert result.exit_code == 2 and result.stderr.startswith(b"curl: option --bogus: is unknown")


# ---------------------------------------------------------------------- output
def test_status_time_exit_line_parses_with_the_library(kit: Kit) -> None:
    result = curl(kit, "-s", "-o", "/dev/null", "-w", traffic.STATUS_TIME_FORMAT.replace(
        "\n", "\\n"), "http://productpage:9080/productpage")
    parsed = traffic.parse_status_line(result.stdout.decode().strip())
    assert (parsed.status, parsed.exit_code) == (200, 0) and 0 < parsed.time_total < 1


def test_body_and_title_as_the_manual_greps_it(kit: Kit) -> None:
    """L2-C04: ``curl productpage:9080/productpage | grep -o "<title>.*</title>"``."""
    result = curl(kit, "productpage:9080/productpage", pod="ratings", container="ratings")
    assert result.exit_code == 0
    assert re.findall(r"<title>.*</title>", result.stdout.decode()) == \
        ["<title>Simple Bookstore App</title>"]
    assert b"% Total" in result.stderr  # the progress meter of a non-terminal stderr


def test_head_and_include(kit: Kit) -> None:
    head = curl(kit, "-sI", "http://httpbin:8000/status/418").stdout.decode()
    assert head.startswith("HTTP/1.1 418 ") and "\r\nserver: envoy\r\n" in head
    assert head.endswith("\r\n\r\n")
    include = curl(kit, "-si", "http://httpbin:8000/status/418").stdout
    assert include.endswith(b"\r\n\r\nI'm a teapot!")


def test_verbose_trace_goes_to_stderr(kit: Kit) -> None:
    result = curl(kit, "-sv", "http://httpbin:8000/ip")
    err = result.stderr.decode()
    assert "> GET /ip HTTP/1.1\n> Host: httpbin:8000\n> User-Agent: curl/8.14.1\n" in err
    assert "< HTTP/1.1 200 OK\n" in err and "< server: envoy\n" in err
    assert result.stdout.startswith(b"{")


def test_several_urls_one_write_out_each(kit: Kit) -> None:
    result = curl(kit, "-s", "-w", "%{http_code}\\n", "-o", "/dev/null",
                  "http://httpbin:8000/status/201", "-o", "/dev/null",
                  "http://httpbin:8000/status/503")
    assert result.stdout == b"201\n503\n" and result.exit_code == 0


def test_output_file_and_cat(kit: Kit) -> None:
    assert curl(kit, "-s", "-o", "/tmp/ip.json", "http://httpbin:8000/ip").stdout == b""
    cat = run_in_container(kit.rt, kit.get_pod("sleep"), "sleep", ["cat", "/tmp/ip.json"])
    assert cat.stdout.startswith(b'{\n  "origin"')


# ------------------------------------------------------------------- exit codes
@pytest.mark.parametrize(("url", "code", "message"), [
    ("http://no-such-name/", 6, "curl: (6) Could not resolve host: no-such-name"),
    ("http://sleep:8080/", 7, None),
    ("http://h:70000/", 3, "curl: (3) URL rejected: Port number was not a decimal number"),
])
def test_failures_print_000_and_exit_like_curl(kit: Kit, url: str, code: int,
                                               message: str | None) -> None:
    result = curl(kit, "-sS", "-w", "%{http_code}", url)
    assert result.stdout == b"000" and result.exit_code == code
    if message:
        assert result.stderr.decode().startswith(message)


def test_connection_refused_from_a_client_without_sidecar(kit: Kit) -> None:
    """Nothing listens on quiet:80 and no sidecar answers for it: refused (an injected pod's
    sidecar would answer 503 instead)."""
    kit.workload("legacy", "default", "curlimages/curl:8.14.1", 80, None, sidecar=False)
    kit.workload("quiet", "default", "curlimages/curl:8.14.1", 80, [("http", 80, 80)],
                 sidecar=False)
    result = run_in_container(kit.rt, kit.get_pod("legacy"), "legacy",
                              ["curl", "-sS", "http://quiet:80/"])
    assert result.exit_code == 7
    assert re.match(rb"curl: \(7\) Failed to connect to quiet port 80 after \d+ ms: Could not "
                    rb"connect to server\n", result.stderr)
    injected = run_in_container(kit.rt, kit.get_pod("legacy"), "legacy",
                                ["curl", "-s", "-w", "%{http_code}", "http://sleep:80/"])
    assert injected.exit_code == 0 and injected.stdout.endswith(b"503")


def test_max_time_is_virtual_and_exits_28(kit: Kit) -> None:
    result = curl(kit, "-sS", "-m", "1", "-w", "%{http_code} %{time_total}",
                  "http://httpbin:8000/delay/3")
    code, total = result.stdout.decode().split()
    assert (result.exit_code, code) == (28, "000") and 1.0 <= float(total) < 1.1
    assert re.match(rb"curl: \(28\) Operation timed out after 10\d\d milliseconds with 0 bytes "
                    rb"received", result.stderr)


def test_fail_flag_exits_22_without_body(kit: Kit) -> None:
    result = curl(kit, "-sf", "http://httpbin:8000/status/404")
    assert (result.exit_code, result.stdout, result.stderr) == (22, b"", b"")
    shown = curl(kit, "-sSf", "http://httpbin:8000/status/404")
    assert shown.stderr == b"curl: (22) The requested URL returned error: 404\n"


def test_https_is_refused_with_an_explanation(kit: Kit) -> None:
    result = curl(kit, "https://httpbin:8000/")
    assert result.exit_code == 1 and b'Protocol "https" not supported' in result.stderr


# ---------------------------------------------------------------- requests sent
def test_headers_host_override_and_removal(kit: Kit) -> None:
    result = curl(kit, "-s", "-H", "Host: example.com", "-H", "User-Agent:", "-H", "X-A;",
                  "-A", "ignored-by-removal", "http://httpbin:8000/headers")
    echoed = json.loads(result.stdout)["headers"]
    assert echoed["Host"] == ["example.com"] and "User-Agent" not in echoed
    assert echoed["X-A"] == [""]


def test_data_posts_a_form_and_get_moves_it_to_the_query(kit: Kit) -> None:
    posted = json.loads(curl(kit, "-s", "-d", "a=1", "--data-urlencode", "b=x y",
                             "http://httpbin:8000/anything").stdout)
    assert posted["method"] == "POST" and posted["data"] == "a=1&b=x%20y"
    assert posted["headers"]["Content-Type"] == ["application/x-www-form-urlencoded"]
    got = json.loads(curl(kit, "-s", "-G", "-d", "q=1", "http://httpbin:8000/get").stdout)
    assert got["args"] == {"q": ["1"]} and got["method"] == "GET"


def test_resolve_sends_to_the_given_address(kit: Kit) -> None:
    kit.apply(HTTPBIN_GATEWAY)
    ingress = kit.store.get(kit.rtype("", "services"), "istio-system", "istio-ingressgateway")
    ip = ingress["spec"]["clusterIP"]
    result = curl(kit, "-s", "-o", "/dev/null", "-w", "%{http_code} %{remote_ip}",
                  "--resolve", f"httpbin.example.com:80:{ip}",
                  "http://httpbin.example.com/status/200")
    assert result.stdout.decode() == f"200 {ip}"


def test_location_is_followed(kit: Kit) -> None:
    result = curl(kit, "-s", "-L", "-o", "/dev/null", "-w", "%{http_code} %{num_redirects}",
                  "-d", "username=jason", "-e", "http://productpage:9080/health",
                  "http://productpage:9080/login")
    assert result.stdout == b"200 1"


def test_cookie_jar_keeps_the_bookinfo_session(kit: Kit) -> None:
    """The manual's browser login, with curl: POST /login, then the page as jason."""
    jar = ["-c", "/tmp/jar", "-b", "/tmp/jar"]
    login = curl(kit, "-s", *jar, "-d", "username=jason",
                 "-e", "http://productpage:9080/productpage", "http://productpage:9080/login")
    assert login.exit_code == 0
    cat = run_in_container(kit.rt, kit.get_pod("sleep"), "sleep", ["cat", "/tmp/jar"])
    assert b"#HttpOnly_productpage\tFALSE\t/\tFALSE\t0\tsession\t" in cat.stdout
    page = curl(kit, "-s", *jar, "http://productpage:9080/productpage").stdout.decode()
    assert "jason" in page and "Sign out" in page


# ----------------------------------------------------------------- other commands
def test_image_without_curl_fails_like_the_runtime(kit: Kit) -> None:
    result = curl(kit, "http://x", pod="httpbin", container="httpbin")
    assert result.exit_code == 126 and b'exec: "curl": executable file not found' in result.stderr


def test_unmodelled_command_names_what_is_modelled(kit: Kit) -> None:
    result = run_in_container(kit.rt, kit.get_pod("sleep"), "sleep", ["nslookup", "x"])
    assert result.exit_code == 127 and b"the embedded cluster models: curl" in result.stderr


def test_sh_c_runs_one_simple_command_only(kit: Kit) -> None:
    ok = run_in_container(kit.rt, kit.get_pod("sleep"), "sleep",
                          ["sh", "-c", "curl -s -o /dev/null -w '%{http_code}' httpbin:8000/ip"])
    assert ok.stdout == b"200"
    piped = run_in_container(kit.rt, kit.get_pod("sleep"), "sleep",
                             ["sh", "-c", "curl -s httpbin:8000/ip | grep origin"])
    assert piped.exit_code == 2 and b"not pipes" in piped.stderr


def test_curl_from_the_proxy_container_bypasses_the_sidecar(kit: Kit) -> None:
    result = curl(kit, "-s", "http://httpbin:8000/headers", pod="sleep", container="istio-proxy")
    headers = json.loads(result.stdout)["headers"]
    assert headers["User-Agent"] == ["curl/8.5.0"]
    assert "X-Forwarded-Client-Cert" not in headers  # plaintext, no sidecar on the way out
