"""The embedded Prometheus's PromQL evaluator against hand-computed answers."""

from __future__ import annotations

import math

import pytest

from pytest_istiolab.embedded.mesh.telemetry import Series
from pytest_istiolab.embedded.workloads import promql

T = 1000.0


def _series(points):
    s = Series()
    for t, delta in points:
        s.add(t, delta)
    return s


class Fixed(promql.Source):
    def __init__(self, rows):
        self.rows = rows

    def series(self):
        return iter(self.rows)


REQ = "istio_requests_total"
SOURCE = Fixed([
    # reviews v1: 3 requests in the last 5 minutes, 1 before
    ({"__name__": REQ, "destination_version": "v1", "response_code": "200"},
     _series([(T - 400, 1), (T - 200, 1), (T - 100, 1), (T - 10, 1)])),
    ({"__name__": REQ, "destination_version": "v2", "response_code": "200"},
     _series([(T - 250, 1), (T - 50, 2)])),
    ({"__name__": REQ, "destination_version": "v3", "response_code": "503"},
     _series([(T - 30, 1)])),
    *[({"__name__": "d_bucket", "app": "a", "le": le}, _series([(T - 60, count)]))
      for le, count in (("10", 2), ("100", 6), ("+Inf", 8))],
])


def _vector(query):
    kind, value = promql.evaluate(query, SOURCE, T)
    assert kind == "vector"
    return {tuple(sorted(s.labels.items())): s.value for s in value}


def test_instant_selector_keeps_the_name_and_reads_the_counter():
    got = _vector(f'{REQ}{{destination_version=~"v1|v2"}}')
    assert sorted(got.values()) == [3.0, 4.0]
    assert all(("__name__", REQ) in k for k in got)


def test_increase_and_rate_over_five_minutes():
    inc = _vector(f'sum by (destination_version) (increase({REQ}[5m]))')
    assert inc == {(("destination_version", "v1"),): 3.0, (("destination_version", "v2"),): 3.0,
                   (("destination_version", "v3"),): 1.0}
    rate = _vector(f'sum(rate({REQ}{{response_code="200"}}[5m]))')
    assert rate == {(): pytest.approx(6 / 300)}


def test_irate_is_the_increase_over_the_last_scrape_interval():
    """A real Prometheus's last two samples are one scrape (15 s) apart: v1 has a request at
    T-10 (one in the last 15 s), v2 none since T-50 (0), v3 was born 30 s ago (two samples);
    a window shorter than 15 s holds fewer than two samples: no result. A series younger than
    15 s counts from 0 (a request is visible at once, as for ``rate``)."""
    got = _vector(f'irate({REQ}[5m])')
    assert {dict(k)["destination_version"]: v for k, v in got.items()} == pytest.approx(
        {"v1": 1 / 15, "v2": 0.0, "v3": 0.0})
    assert _vector(f'irate({REQ}[10s])') == {}
    young = Fixed([({"__name__": REQ}, _series([(T - 5, 3)]))])
    kind, value = promql.evaluate(f"irate({REQ}[1m])", young, T)
    assert [s.value for s in value] == [pytest.approx(3 / 15)]


def test_success_ratio_with_regex_not_matcher_and_division():
    q = (f'sum(increase({REQ}{{response_code!~"5.."}}[5m])) / '
         f'sum(increase({REQ}[5m]))')
    assert _vector(q) == {(): pytest.approx(6 / 7)}


def test_histogram_quantile_interpolates_inside_the_bucket():
    # rank 0.5*8 = 4: bucket (10, 100] holds counts 2..6 -> 10 + 90 * (4-2)/4 = 55
    got = _vector("histogram_quantile(0.5, sum by (le) (d_bucket))")
    assert got == {(): pytest.approx(55.0)}
    # rank 7.6 falls in +Inf: the highest finite bound
    assert _vector("histogram_quantile(0.95, sum by (le) (d_bucket))") == {(): 100.0}


def test_or_vector_zero_and_comparison_and_round():
    assert _vector(f'sum(rate({REQ}{{response_code="404"}}[5m])) or vector(0)') == {(): 0.0}
    assert _vector(f'count({REQ} > 2)') == {(): 2.0}
    assert _vector('round(sum(increase(istio_requests_total[5m])) / 3, 0.01)') == {
        (): pytest.approx(2.33)}


def test_label_replace():
    got = _vector(f'label_replace({REQ}{{destination_version="v3"}}, "ver", "x$1", '
                  f'"destination_version", "v(.*)")')
    (labels,) = got
    assert ("ver", "x3") in labels


def test_scalar_arithmetic():
    assert promql.evaluate("1 + 2 * 3", SOURCE, T) == ("scalar", 7.0)
    assert math.isinf(promql.evaluate("1 / 0", SOURCE, T)[1])


def test_parse_error_and_unsupported():
    with pytest.raises(promql.QueryError, match="parse error"):
        promql.evaluate(f"{REQ}{{", SOURCE, T)
    with pytest.raises(promql.Unsupported, match="topk"):
        promql.evaluate(f"topk(2, {REQ})", SOURCE, T)
    with pytest.raises(promql.Unsupported, match="group_left"):
        promql.evaluate(f"{REQ} / on(destination_version) group_left {REQ}", SOURCE, T)
