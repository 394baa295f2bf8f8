"""traffic: curl command lines and output, Bookinfo markers, exact binomial statistics."""

from __future__ import annotations

import math

import pytest

from pytest_istiolab import traffic
from pytest_istiolab.traffic import (
    STATUS_TIME_FORMAT,
    CurlResult,
    Sampler,
    assert_proportion,
    batch_argv,
    binomial_two_sided_p,
    curl_argv,
    parse_batch,
    parse_status_line,
    required_samples,
    reviews_version,
)

# ------------------------------------------------------------------ curl argv


def test_curl_argv_like_the_manual() -> None:
    argv = curl_argv("http://httpbin:8000/status/200", write_out="%{http_code}")
    assert argv == ["curl", "-s", "-w", "%{http_code}", "-o", "/dev/null",
                    "http://httpbin:8000/status/200"]


def test_curl_argv_every_option() -> None:
    argv = curl_argv(
        "https://h/x", method="POST", headers={"Host": "httpbin.example.com", "end-user": "jason"},
        data="a=1", write_out=STATUS_TIME_FORMAT, output=None, include_headers=True,
        max_time=2.5, resolve="h:443:127.0.0.1", cookie_jar="/tmp/j", cookie_file="/tmp/j",
        insecure=True, extra=("--http1.1",))
    assert argv == ["curl", "-s", "-X", "POST", "-H", "Host: httpbin.example.com",
                    "-H", "end-user: jason", "-d", "a=1", "-i", "-w", STATUS_TIME_FORMAT,
                    "--max-time", "2.5", "--resolve", "h:443:127.0.0.1", "-c", "/tmp/j",
                    "-b", "/tmp/j", "-k", "--http1.1", "https://h/x"]


def test_curl_data_starting_with_at_is_sent_raw() -> None:
    assert curl_argv("u", data="@literal")[2:4] == ["--data-raw", "@literal"]


def test_batch_argv_pairs_an_output_with_every_url() -> None:
    argv = batch_argv(["http://a/1", "http://a/2"])
    assert argv == ["curl", "-s", "-w", STATUS_TIME_FORMAT,
                    "-o", "/dev/null", "http://a/1", "-o", "/dev/null", "http://a/2"]


def test_batch_argv_with_bodies_marks_each_transfer() -> None:
    argv = batch_argv(["http://a/1", "http://a/2"], output=None)
    assert argv[2:4] == ["-w", traffic.BODY_STATUS_FORMAT]
    assert argv[4:] == ["http://a/1", "http://a/2"]


def test_batch_argv_needs_urls() -> None:
    with pytest.raises(ValueError):
        batch_argv([])


# ------------------------------------------------------------------ curl output


def test_parse_status_line() -> None:
    assert parse_status_line("200 0.012345 0") == CurlResult(200, 0.012345, 0, None, {})
    assert parse_status_line("000 0.001 56").status == 0


@pytest.mark.parametrize("line", ["200", "abc 0.1 0", "200 0.1 0 extra"])
def test_parse_status_line_rejects_other_text(line: str) -> None:
    with pytest.raises(ValueError, match="not a curl status line"):
        parse_status_line(line)


def test_parse_batch_status_lines() -> None:
    results = parse_batch("200 0.010 0\n503 0.020 0\n000 0.001 7\n")
    assert [r.status for r in results] == [200, 503, 0]
    assert [r.exit_code for r in results] == [0, 0, 7]
    assert results[1].time_total == pytest.approx(0.02)


def test_parse_batch_bodies_with_and_without_final_newline() -> None:
    mark = traffic.TRANSFER_MARK
    stdout = (f"hello\n\n{mark} 200 0.1 0\n"
              f"no newline\n{mark} 503 0.2 0\n"
              f"\n{mark} 000 0.0 56\n")
    results = parse_batch(stdout)
    assert [(r.status, r.body) for r in results] == [
        (200, "hello\n"), (503, "no newline"), (0, "")]


def test_parse_batch_with_headers() -> None:
    mark = traffic.TRANSFER_MARK
    body = ("HTTP/1.1 100 Continue\r\n\r\n"
            "HTTP/1.1 200 OK\r\nserver: istio-envoy\r\nX-Envoy-Upstream-Service-Time: 3\r\n\r\n"
            "{}")
    [result] = parse_batch(f"{body}\n{mark} 200 0.1 0\n")
    assert result.headers == {"server": "istio-envoy", "x-envoy-upstream-service-time": "3"}
    assert result.body == "{}"


def test_sampler_counts_and_describes() -> None:
    sampler: Sampler[CurlResult, int] = Sampler(lambda r: r.status)
    sampler.extend(parse_batch("200 0 0\n200 0 0\n503 0 0\n200 0 0\n"))
    assert sampler.total == 4 and sampler.counts[200] == 3
    assert sampler.fraction(503) == 0.25
    assert sampler.describe() == "200: 3 (75.0 %), 503: 1 (25.0 %) of 4"
    assert traffic.tally(["v1", "v3", "v1"]) == {"v1": 2, "v3": 1}


# ------------------------------------------------------------------ Bookinfo pages

REVIEW_V1 = """<title>Simple Bookstore App</title>
<h1 class="text-5xl">The Comedy of Errors</h1>
<h4 class="text-3xl font-semibold">Book Reviews</h4>
<section><div class="mx-auto max-w-2xl">
<blockquote><p>"An extremely entertaining play by Shakespeare."</p></blockquote>
<div class="mt-0.5 text-gray-600 font-mono">Reviews served by:
                  reviews-v1-569db879f5-44qtz
</div></div></section>"""


def _with_stars(color: str) -> str:
    stars = (f'<div class="flex gap-x-1 text-{color}-500">\n'
             '<svg class="h-5 w-5 flex-none" viewBox="0 0 20 20"></svg></div>')
    return REVIEW_V1.replace('<div class="mx-auto max-w-2xl">',
                             f'<div class="mx-auto max-w-2xl">{stars}')


LEGACY_V3 = """<h4 class="text-center text-primary">Book Reviews</h4>
<font color="red">
  <!-- full stars: -->
  <span class="glyphicon glyphicon-star"></span>
</font>"""

DETAILS_ERROR = '<p class="text-2xl text-red-500">Error fetching product details</p>\n'


def test_reviews_version_from_1_26_markers() -> None:
    assert reviews_version(REVIEW_V1) == "v1"
    assert reviews_version(_with_stars("black")) == "v2"
    assert reviews_version(_with_stars("red")) == "v3"


def test_red_error_text_is_not_red_stars() -> None:
    assert reviews_version(DETAILS_ERROR + REVIEW_V1) == "v1"


def test_reviews_version_from_legacy_markers() -> None:
    assert reviews_version(LEGACY_V3) == "v3"
    assert reviews_version(LEGACY_V3.replace("red", "black")) == "v2"


def test_reviews_version_unknown_without_reviews_or_with_ratings_error() -> None:
    assert reviews_version("<p class='text-2xl text-red-500'>Error fetching product reviews</p>") \
        is None
    unavailable = REVIEW_V1.replace(
        "<blockquote>", '<p class="text-red-500">Ratings service is currently unavailable</p>'
        "<blockquote>")
    assert reviews_version(unavailable) is None
    assert traffic.reviews_pod(unavailable) == "reviews-v1-569db879f5-44qtz"


def test_titles() -> None:
    assert traffic.page_title(REVIEW_V1) == "Simple Bookstore App"
    assert traffic.book_title(REVIEW_V1) == "The Comedy of Errors"
    assert traffic.page_title("<p>none</p>") is None
    assert traffic.book_title("<h1>A &amp; <b>B</b></h1>") == "A & B"
    assert traffic.star_color(REVIEW_V1) is None


# ------------------------------------------------------------------ statistics


def test_binomial_two_sided_p_matches_r_binom_test() -> None:
    # reference values: R binom.test(k, n, p)$p.value
    assert binomial_two_sided_p(60, 100, 0.5) == pytest.approx(0.05688793, rel=1e-6)
    assert binomial_two_sided_p(0, 10, 0.5) == pytest.approx(0.001953125)
    assert binomial_two_sided_p(5, 10, 0.5) == pytest.approx(1.0)
    assert binomial_two_sided_p(3, 10, 0.2) == pytest.approx(0.4295747, rel=1e-6)


def test_binomial_degenerate_proportions() -> None:
    assert binomial_two_sided_p(10, 10, 1.0) == 1.0
    assert binomial_two_sided_p(9, 10, 1.0) == 0.0
    assert binomial_two_sided_p(0, 10, 0.0) == 1.0


def test_binomial_large_n_does_not_underflow_to_nonsense() -> None:
    p = binomial_two_sided_p(2000, 5000, 0.5)
    assert 0.0 <= p < 1e-40
    assert math.isclose(binomial_two_sided_p(2500, 5000, 0.5), 1.0, rel_tol=1e-9)


def test_binomial_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError):
        binomial_two_sided_p(11, 10, 0.5)
    with pytest.raises(ValueError):
        binomial_two_sided_p(1, 10, 1.5)


def test_assert_proportion_passes_within_chance() -> None:
    assert assert_proportion(46, 100, 0.5, description="v3 share") > 1e-4


def test_assert_proportion_explains_a_failure() -> None:
    with pytest.raises(AssertionError) as info:
        assert_proportion(100, 100, 0.5, description="reviews v3 share of 50/50 split")
    message = str(info.value)
    assert message.startswith("reviews v3 share of 50/50 split: 100 of 100 (100.0 %) "
                              "where 50.0 % was expected")
    assert "p = 1.58e-30 < alpha = 0.0001" in message
    assert "sample size 100" in message


def test_assert_proportion_without_samples() -> None:
    with pytest.raises(AssertionError, match="no samples"):
        assert_proportion(0, 0, 0.5, description="x")


def test_required_samples() -> None:
    assert required_samples(0.5, 1.0) == 15
    assert required_samples(0.5, 0.0) == 15
    n = required_samples(0.5, 0.4)
    assert 900 < n < 1100
    with pytest.raises(ValueError):
        required_samples(0.5, 0.5)


# ------------------------------------------------------------------ fortio and Envoy stats

FORTIO_TEXT = """\
Fortio 1.17.1 running at 0 queries per second, 2->2 procs, for 20 calls: http://httpbin:8000/get
Sockets used: 12 (for perfect keepalive, would be 2)
Code 200 : 10 (50.0 %)
Code 503 : 10 (50.0 %)
Code -1 : 1 (5.0 %)
All done 20 calls (plus 0 warmup) 5.120 ms avg, 386.0 qps
"""


def test_fortio_load_argv_like_the_manual() -> None:
    assert traffic.fortio_load_argv("http://httpbin:8000/get", connections=2, requests=20) == [
        "/usr/bin/fortio", "load", "-c", "2", "-qps", "0", "-n", "20", "-loglevel", "Warning",
        "http://httpbin:8000/get"]
    assert traffic.fortio_load_argv("http://httpbin:8000/get", curl=True) == [
        "/usr/bin/fortio", "load", "-curl", "http://httpbin:8000/get"]
    assert traffic.fortio_load_argv("u", json_output=True, loglevel=None)[-3:] == [
        "-json", "-", "u"]


def test_fortio_codes_from_text_and_json() -> None:
    assert traffic.fortio_codes(FORTIO_TEXT) == {200: 10, 503: 10, -1: 1}
    assert traffic.fortio_codes('{"RetCodes": {"200": 8, "503": 22}, "RunType": "HTTP"}') == \
        {200: 8, 503: 22}
    assert traffic.fortio_codes("nothing here") == {}


def test_envoy_stats() -> None:
    prefix = "cluster.outbound|8000||httpbin.default.svc.cluster.local"
    stats = traffic.envoy_stats(f"{prefix}.upstream_rq_pending_overflow: 42\n"
                                f"{prefix}.upstream_rq_pending_total: 29\n"
                                "server.version: text value\n"
                                f"{prefix}.circuit_breakers.default.remaining_pending: 1\n")
    assert stats[f"{prefix}.upstream_rq_pending_overflow"] == 42
    assert stats[f"{prefix}.circuit_breakers.default.remaining_pending"] == 1
    assert "server.version" not in stats
