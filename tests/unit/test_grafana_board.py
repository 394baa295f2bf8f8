"""observability.Board: a dashboard's panel queries with the variables Grafana substitutes."""

from __future__ import annotations

from pytest_istiolab.observability import Board
from pytest_istiolab.observability.grafana import (
    options_from,
    query_result_rows,
    regex_escape,
    round_interval,
)

MODEL = {
    "title": "T", "time": {"from": "now-30m", "to": "now"},
    "templating": {"list": [
        {"name": "datasource", "type": "datasource", "query": "prometheus"},
        {"name": "service", "type": "query", "multi": False, "includeAll": False,
         "current": {"value": "details.default.svc.cluster.local"}},
        {"name": "qrep", "type": "custom", "query": "source,destination", "multi": True,
         "current": {"value": "destination"}},
        {"name": "srcwl", "type": "query", "multi": True, "includeAll": True,
         "current": {"value": "$__all"}},
        {"name": "dstwl", "type": "query", "multi": True, "includeAll": True,
         "allValue": ".*", "current": {"value": "$__all"}},
    ]},
    "panels": [
        {"type": "row", "title": "P", "panels": []},
        {"type": "stat", "title": "P", "interval": "5s", "targets": [
            {"refId": "A", "expr": 'rate(x{s=~"$service",r=~"$qrep"}[$__rate_interval])'}]},
        {"type": "stat", "title": "Q", "targets": [
            {"refId": "A", "expr": 'x{w=~"$srcwl",d=~"${dstwl}",i="[[__interval]]"}'
                                   '[$__rate_interval] $datasource'}]},
    ],
}


def test_rate_interval_from_the_panel_interval_or_the_scrape_interval():
    board = Board(MODEL, scrape_interval=15.0)
    # the panel's 5s: $__interval max(2s, 5s) = 5s, $__rate_interval max(5+5, 4*5) = 20s
    assert board.targets("P")[0][1] == \
        'rate(x{s=~"details.default.svc.cluster.local",r=~"destination"}[20s])'
    # no panel interval: the datasource's 15s -> $__interval 15s, $__rate_interval 1m
    assert '[1m]' in board.targets("Q")[0][1] and 'i="15s"' in board.targets("Q")[0][1]


def test_a_row_of_the_same_title_is_not_the_panel():
    assert Board(MODEL).panel("P")["type"] == "stat"


def test_multi_values_are_regex_escaped_and_all_is_every_option_or_the_all_value():
    board = Board(MODEL)
    board.options["srcwl"] = ["productpage-v1", "istio-ingressgateway"]
    board.select("service", "a.b")
    expr = board.targets("Q")[0][1]
    assert 'w=~"(productpage-v1|istio-ingressgateway)"' in expr
    assert 'd=~".*"' in expr
    assert expr.endswith("$datasource")  # the datasource is chosen, not substituted
    board.select("qrep", "source", "destination")
    assert 'r=~"(source|destination)"' in board.targets("P")[0][1]
    assert 's=~"a.b"' in board.targets("P")[0][1]  # a plain variable is not escaped
    board.select("srcwl", "a.b")
    assert 'w=~"a\\\\.b"' in board.targets("Q")[0][1]


def test_grafana_escapes_and_rounding():
    assert regex_escape("reviews.default(v1)") == "reviews\\\\.default\\\\(v1\\\\)"
    assert [round_interval(s) for s in (1.8, 4, 14, 40, 100)] == [2, 5, 15, 30, 300]


def test_query_result_rows_and_the_variable_regex():
    rows = query_result_rows([
        {"metric": {"destination_service": "details.bk.svc.cluster.local"},
         "value": [1000.5, "3"]},
        {"metric": {"__name__": "up", "destination_service": "details.bk.svc.cluster.local"},
         "value": [1000.5, "1"]}])
    assert rows == ['{destination_service="details.bk.svc.cluster.local"} 3 1000500',
                    'up{destination_service="details.bk.svc.cluster.local"} 1 1000500']
    assert options_from(rows, '/.*destination_service="([^"]*).*/') == [
        "details.bk.svc.cluster.local"]
    assert options_from(["a", "b", "a"], "") == ["a", "b"]
