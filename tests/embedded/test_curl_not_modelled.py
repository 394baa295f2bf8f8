"""curl options real curl has but the embedded cluster's curl does not model.

They fail as curl fails on a bad command line (exit 2, ``curl: option X: ...`` and curl's
hint line), the first line saying the embedded cluster does not model the option, so a lab
command that needs one can never quietly get a different result. Unknown options keep
curl's own "is unknown".
"""

from __future__ import annotations

import pytest
from mesh_testkit import Kit

from pytest_istiolab.embedded.tools import run_in_container
from pytest_istiolab.embedded.tools.curl_args import CURL_USAGE_HINT

NOT_MODELLED = "curl: option {}: is not modelled by the embedded cluster's curl\n"


@pytest.fixture(scope="module")
def kit() -> Kit:
    k = Kit()
    k.httpbin()
    k.sleep()
    return k


def curl(kit: Kit, *args: str):  # type: ignore[no-untyped-def]
    return run_in_container(kit.rt, kit.get_pod("sleep"), "sleep", ["curl", *args])


@pytest.mark.parametrize(("args", "flag"), [
    (["--limit-rate", "1k", "http://httpbin:8000/get"], "--limit-rate"),
    (["--retry-delay", "1", "http://httpbin:8000/get"], "--retry-delay"),
    (["-sN", "http://httpbin:8000/get"], "-N"),
    (["-Z", "http://httpbin:8000/get", "http://httpbin:8000/ip"], "-Z"),
    (["--http2-prior-knowledge", "http://httpbin:8000/get"], "--http2-prior-knowledge"),
    (["--no-silent", "http://httpbin:8000/get"], "--no-silent"),
])
def test_real_curl_option_not_modelled_is_a_usage_error(kit: Kit, args: list[str],
                                                        flag: str) -> None:
    result = curl(kit, *args)
    assert (result.exit_code, result.stdout) == (2, b"")
    assert result.stderr.decode() == NOT_MODELLED.format(flag) + CURL_USAGE_HINT


@pytest.mark.parametrize("flag", ["--bogus", "--max-time=3"])
def test_unknown_options_stay_unknown(kit: Kit, flag: str) -> None:
    result = curl(kit, flag, "http://httpbin:8000/get")
    assert result.exit_code == 2
    assert result.stderr.decode() == f"curl: option {flag}: is unknown\n" + CURL_USAGE_HINT


def test_modelled_options_still_work(kit: Kit) -> None:
    result = curl(kit, "-sS", "--max-time", "5", "-w", "%{http_code}", "-o", "/dev/null",
                  "http://httpbin:8000/get")
    assert (result.exit_code, result.stdout) == (0, b"200")


# ------------------------------------------ modelling gaps are not passed off as real DNS
@pytest.mark.parametrize("host", ["www.google.com", "edition.cnn.com", "api.github.io"])
def test_an_unmodelled_public_host_says_it_is_not_modelled(kit: Kit, host: str) -> None:
    """A real cluster's DNS would answer these names; exit 6 stays, the message says why."""
    result = curl(kit, "-sS", f"http://{host}/")
    text = result.stderr.decode()
    assert result.exit_code == 6
    assert text.startswith(f"curl: (6) Could not resolve host: {host} (not modelled by the "
                           "embedded cluster: ")
    assert "httpbin.org" in text


@pytest.mark.parametrize("host", ["no-such-name", "reviewz.default", "x.default.svc",
                                  "x.default.svc.cluster.local", "nothing.invalid"])
def test_a_name_no_real_cluster_resolves_fails_plainly(kit: Kit, host: str) -> None:
    result = curl(kit, "-sS", f"http://{host}/")
    assert (result.exit_code, result.stderr.decode()) == (
        6, f"curl: (6) Could not resolve host: {host}\n")


def test_https_from_a_pod_says_it_is_not_modelled(kit: Kit) -> None:
    result = curl(kit, "-sS", "https://httpbin.org/get")
    text = result.stderr.decode()
    assert result.exit_code == 1 and 'Protocol "https" not supported' in text
    assert "not modelled by the embedded cluster" in text and "NodePort" not in text

