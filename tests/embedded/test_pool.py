"""The sidecar connection pool (Envoy's circuit breakers) and fortio's load simulation.

Fast by construction: the 200-seed checks run fortio's discrete-event simulation
(``fortio_load.simulate``) directly against a :class:`pool.Lane`, with an upstream whose
latencies are drawn like the mesh model's (sidecar hop, new mTLS connection, application),
not the whole embedded cluster. The Lab 4.2 assertions must hold for every seed with the
manual's DestinationRule, and must fail when its limits are ignored. The mesh-level tests
(overflow reply, access log, stats) are in ``test_pool_mesh.py``.
"""

from __future__ import annotations

import math
import random
from collections import Counter

import pytest

from pytest_istiolab.embedded.mesh import pool
from pytest_istiolab.embedded.mesh.model import Endpoint, Response
from pytest_istiolab.embedded.mesh.outlier import Detector, OutlierPolicy, outlier_policy
from pytest_istiolab.embedded.tools.fortio_load import Exchange, LoadPlan, LoadRun, simulate

MANUAL_RULE = {"connectionPool": {"tcp": {"maxConnections": 1},
                                  "http": {"http1MaxPendingRequests": 1,
                                           "maxRequestsPerConnection": 1}},
               "outlierDetection": {"consecutive5xxErrors": 1, "interval": "1s",
                                    "baseEjectionTime": "3m", "maxEjectionPercent": 100}}
SEEDS = range(200)
HOST = Endpoint("10.244.0.9", 8080)


def lane_with(policy: dict) -> pool.Lane:
    lane = pool.Lane("outbound|8000||httpbin.default.svc.cluster.local")
    lane.configure({"spec": {"host": "httpbin", "trafficPolicy": policy}}, 8000, None)
    return lane


def run_load(lane: pool.Lane, seed: int, connections: int, requests: int) -> LoadRun:
    """fortio -c C -qps 0 -n N through ``lane``: sidecar hop, pool, upstream, back."""
    noise = random.Random(seed * 31 + 7)

    def ms(low: float, high: float) -> float:
        return noise.uniform(low, high) / 1000.0

    def send(thread: int, t: float) -> Exchange:
        at = t + ms(0.05, 0.3)
        ticket = lane.admit(at, ms(*pool.CONNECT_MS))
        if ticket is None:
            return Exchange(503, 0, 247, at + ms(0.03, 0.3))
        end = ticket.start + ms(0.6, 2.0)
        lane.finish(ticket, HOST, Response(200, start=ticket.start, duration=end - ticket.start),
                    1)
        return Exchange(200, 231, 850, end + ms(0.02, 0.2))

    plan = LoadPlan(threads=connections, qps=0, exactly=requests)
    return simulate(plan, send, random.Random(seed), 1_800_000_000.0)


def lab_assertions(run: LoadRun, requests: int) -> None:
    """What tests/labs/test_lab04_circuit_breaking.py asserts about one run."""
    assert len(run.samples) == requests and sum(run.codes.values()) == requests
    assert set(run.codes) <= {200, 503}
    assert run.codes[503] >= 1, "no call refused"
    assert run.codes[200] >= 1, "no call got through"


# ------------------------------------------------------------------ 200 seeds
@pytest.mark.parametrize(("connections", "requests"), [(2, 20), (3, 30)])
def test_lab_assertions_hold_for_200_seeds(connections: int, requests: int) -> None:
    refused: Counter[int] = Counter()
    for seed in SEEDS:
        lane = lane_with(MANUAL_RULE)
        run = run_load(lane, seed, connections, requests)
        lab_assertions(run, requests)
        assert lane.counters["upstream_rq_pending_overflow"] == run.codes[503]
        assert lane.gate.pending_at(math.inf) == 0
        refused[run.codes[503]] += 1
    assert len(refused) >= 4, f"the split should vary with the seed like a real mesh: {refused}"


def test_three_connections_are_refused_more_often_than_two_on_average() -> None:
    two = sum(run_load(lane_with(MANUAL_RULE), s, 2, 20).codes[503] / 20 for s in SEEDS)
    three = sum(run_load(lane_with(MANUAL_RULE), s, 3, 30).codes[503] / 30 for s in SEEDS)
    assert three > two


@pytest.mark.parametrize(("connections", "requests"), [(2, 20), (3, 30)])
def test_lab_assertions_fail_when_the_limits_are_ignored(connections: int, requests: int) -> None:
    for seed in range(20):
        run = run_load(lane_with({}), seed, connections, requests)
        with pytest.raises(AssertionError, match="no call refused"):
            lab_assertions(run, requests)


def test_same_seed_same_run() -> None:
    first = run_load(lane_with(MANUAL_RULE), 5, 3, 30)
    again = run_load(lane_with(MANUAL_RULE), 5, 3, 30)
    assert [(s.status, s.latency) for s in first.samples] == \
        [(s.status, s.latency) for s in again.samples]


# ------------------------------------------------------------------ the gate
def test_sequential_requests_never_overflow_and_reuse_a_kept_alive_connection() -> None:
    lane = lane_with({"connectionPool": {"tcp": {"maxConnections": 1},
                                         "http": {"http1MaxPendingRequests": 1}}})
    t = 100.0
    for _ in range(5):
        ticket = lane.admit(t, 0.001)
        assert ticket is not None
        lane.finish(ticket, HOST, Response(200, start=ticket.start, duration=0.002), 1)
        t = ticket.start + 0.01
    assert lane.counters["upstream_cx_total"] == 1 and lane.counters["upstream_rq_total"] == 5
    assert lane.counters["upstream_rq_pending_total"] == 1  # only while the first connected


def test_max_requests_per_connection_closes_each_connection() -> None:
    lane = lane_with(MANUAL_RULE)
    t = 100.0
    for _ in range(3):
        ticket = lane.admit(t, 0.001)
        assert ticket is not None and ticket.new_connection
        lane.finish(ticket, HOST, Response(200, start=ticket.start, duration=0.002), 1)
        t = ticket.start + 0.01
    assert lane.counters["upstream_cx_total"] == 3
    assert lane.counters["upstream_cx_max_requests"] == 3


def test_a_second_request_waits_and_a_third_overflows() -> None:
    lane = lane_with(MANUAL_RULE)
    first = lane.admit(100.0, 0.001)
    assert first is not None
    lane.finish(first, HOST, Response(200, start=first.start, duration=0.010), 1)
    second = lane.admit(100.002, 0.001)  # the only connection is busy: wait (cx overflow)
    assert second is not None and second.pending and second.start > first.start + 0.010
    lane.finish(second, HOST, Response(200, start=second.start, duration=0.002), 1)
    assert lane.admit(100.003, 0.001) is None  # the one pending slot is taken
    assert (lane.counters["upstream_rq_pending_overflow"], lane.counters["upstream_cx_overflow"]
            ) == (1, 1)


def test_http2_max_requests_bounds_active_requests() -> None:
    lane = lane_with({"connectionPool": {"http": {"http2MaxRequests": 1}}})
    first = lane.admit(100.0, 0.001)
    assert first is not None
    lane.finish(first, HOST, Response(200, start=first.start, duration=0.010), 1)
    assert lane.admit(100.005, 0.001) is None
    assert lane.admit(100.02, 0.001) is not None


def test_subset_and_port_level_policies_override_the_top_level() -> None:
    rule = {"spec": {"host": "httpbin", "trafficPolicy": {
        "connectionPool": {"tcp": {"maxConnections": 5}},
        "portLevelSettings": [{"port": {"number": 8000},
                               "connectionPool": {"tcp": {"maxConnections": 3}}}]},
        "subsets": [{"name": "v2", "labels": {"version": "v2"}, "trafficPolicy": {
            "connectionPool": {"http": {"http1MaxPendingRequests": 7}}}}]}}
    assert pool.limits_of(pool.traffic_policy(rule, 9000, None)).max_connections == 5
    assert pool.limits_of(pool.traffic_policy(rule, 8000, None)).max_connections == 3
    subset = pool.limits_of(pool.traffic_policy(rule, 8000, "v2"))
    assert (subset.max_connections, subset.max_pending) == (pool.UNLIMITED, 7)


# ------------------------------------------------------------------ outlier detection
def test_policy_translation_as_istio_does_it() -> None:
    assert outlier_policy({}) is None
    assert outlier_policy({"outlierDetection": {}}) == OutlierPolicy()
    manual = outlier_policy(MANUAL_RULE)
    assert manual == OutlierPolicy(1, 0, 1.0, 180.0, 100)
    legacy = outlier_policy({"outlierDetection": {"consecutiveErrors": 2}})
    assert legacy is not None and (legacy.consecutive_5xx, legacy.consecutive_gateway) == (0, 2)


def test_a_5xx_ejects_the_host_until_the_ejection_time_has_passed() -> None:
    policy, detector, counters = OutlierPolicy(1, 0, 1.0, 180.0, 100), Detector(), pool.Counters()
    assert detector.healthy(policy, [HOST], 10.0, counters) == [HOST]
    detector.record(policy, "10.244.0.9:8080", 500, 10.0, 1, counters)
    assert detector.healthy(policy, [HOST], 11.0, counters) == []
    assert counters["outlier_detection.ejections_enforced_consecutive_5xx"] == 1
    assert detector.healthy(policy, [HOST], 10.0 + 179.0, counters) == []
    assert detector.healthy(policy, [HOST], 10.0 + 181.0, counters) == [HOST]
    assert counters["outlier_detection.ejections_active"] == 0


def test_max_ejection_percent_keeps_the_last_hosts() -> None:
    policy, detector, counters = OutlierPolicy(1, 0, 1.0, 30.0, 10), Detector(), pool.Counters()
    detector.record(policy, "10.244.0.9:8080", 503, 10.0, 1, counters)
    assert detector.healthy(policy, [HOST], 11.0, counters) == [HOST]
    assert counters["outlier_detection.ejections_overflow"] == 1


def test_successes_reset_the_consecutive_count() -> None:
    policy, detector, counters = OutlierPolicy(2, 0, 1.0, 30.0, 100), Detector(), pool.Counters()
    for status in (500, 200, 500, 200):
        detector.record(policy, "10.244.0.9:8080", status, 10.0, 1, counters)
    assert detector.healthy(policy, [HOST], 11.0, counters) == [HOST]
    detector.record(policy, "10.244.0.9:8080", 502, 12.0, 1, counters)
    detector.record(policy, "10.244.0.9:8080", 504, 12.1, 1, counters)
    assert detector.healthy(policy, [HOST], 12.2, counters) == []
