"""Lab 4.2 — Circuit breaking (manual: "弹性能力 / 熔断"). Checks L4.2-C01..L4.2-C04.

The manual deploys httpbin and fortio (the 1.26 samples), applies ``circuitbreaking.yaml`` (a
DestinationRule with one connection, one pending request, one request per connection and
outlier detection), then trips the breaker with fortio from the fortio pod (``-c 2 -n 20``,
``-c 3 -n 30``) and reads the client sidecar's Envoy counters with
``pilot-agent request GET stats``. Here the same commands run with ``kubectl exec`` in the
lab's own namespace; a run is repeated (``eventually``) until the rule is in effect, because a
real mesh applies a DestinationRule a moment after ``kubectl apply``.

What is asserted, and what deliberately is not:

* every call is accounted for (``All done N calls``; the ``Code`` lines add up to N, all
  200 or 503) and at least one call is a 503; the manual's splits (10/10, 8/22) are timing
  on one machine and are not asserted (appendix C). On the embedded cluster fortio's
  connections are a seeded simulation against the sidecar's connection pool, so the split
  varies with ``--istio-seed`` as it varies on a real mesh, and without the rule's limits
  there would be no 503 at all.
* the breaker's evidence is Envoy's, not the ratio: ``upstream_rq_pending_overflow`` of the
  client sidecar's ``outbound|8000||httpbin...`` cluster grows with every tripped run, the
  pending gauges are back at rest, and the fortio sidecar's access log shows every 503 as
  ``503 UO upstream_reset_before_response_started{overflow}`` (when the mesh logs access,
  as the demo profile does, D-01). fortio prints no response bodies, so Envoy's overflow body
  is checked by the embedded cluster's own tests, not here.
* D-28: the counters are cumulative and include every call of the pod's life, so they are
  never reconciled with fortio's counts. Istio 1.26 names the stats
  ``cluster.outbound|8000||httpbin.NS.svc.cluster.local;.NAME`` (the ``;`` delimiter came
  after the manual's capture); both spellings are accepted.
* D-08: httpbin is go-httpbin (header values are JSON arrays), so L4.2-C01 asserts the
  status, Envoy's ``server`` header and the key fields only. D-27: ``v1alpha3`` as printed.

Companion checks (beyond the manual, IDs of their own): the pending-request limit alone
produces the manual's 503s, so L4.2-X01 reads ``upstream_cx_overflow`` (the connection limit
``maxConnections: 1`` was hit); httpbin never answers 5xx in the manual's runs, so L4.2-X02
makes it answer one and sees the host ejected (``503 UH no healthy upstream``, Envoy's
ejection counters). X02 runs from a second fortio (``fortio-outlier``, the sample renamed):
the ejection lasts ``baseEjectionTime: 3m`` in the caller's sidecar and must not touch the
sidecar the other checks use.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
import yaml

from pytest_istiolab import traffic, waiting
from pytest_istiolab.kube import Applier, ExecResult, Kube, manifests
from pytest_istiolab.traffic import ProxyLog

pytestmark = [pytest.mark.lab(4)]

FORTIO_SAMPLE = "samples/httpbin/sample-client/fortio-deploy.yaml"
CIRCUIT_BREAKING = "lab04-resilience/circuitbreaking.yaml"
URL = "http://httpbin:8000/get"
OUTLIER_CLIENT = "fortio-outlier"
PENDING_STATS = ("circuit_breakers.default.remaining_pending",
                 "circuit_breakers.default.rq_pending_open",
                 "circuit_breakers.high.rq_pending_open", "upstream_rq_pending_active",
                 "upstream_rq_pending_failure_eject", "upstream_rq_pending_overflow",
                 "upstream_rq_pending_total")
OVERFLOW_DETAILS = "upstream_reset_before_response_started{overflow}"


@dataclass
class LoadRun:
    """One ``fortio load`` as the terminal shows it (fortio prints its summary on stderr)."""

    argv: list[str]
    result: ExecResult
    calls: int
    codes: Counter[int]

    @property
    def text(self) -> str:
        return self.result.stdout + self.result.stderr

    def describe(self) -> str:
        codes = ", ".join(f"{c}: {n}" for c, n in sorted(self.codes.items())) or "none"
        return f"`{' '.join(self.argv)}` -> {self.calls} calls done, codes {codes}"


@dataclass
class Fortio:
    """The fortio pod of the lab namespace, driven like the manual drives it."""

    kube: Kube
    namespace: str
    app: str = "fortio"

    @property
    def pod(self) -> str:
        return self.kube.first_pod(self.namespace, f"app={self.app}")

    def exec(self, argv: list[str], container: str = "fortio") -> ExecResult:
        return self.kube.exec(self.namespace, self.pod, argv, container=container)

    def load(self, connections: int, requests: int) -> LoadRun:
        argv = traffic.fortio_load_argv(URL, connections=connections, qps=0, requests=requests)
        result = self.exec(argv)
        assert result.exit_code == 0, f"`{' '.join(argv)}` failed:\n{result.stderr[-2000:]}"
        text = result.stdout + result.stderr
        done = re.search(r"^All done (\d+) calls", text, re.M)
        return LoadRun(argv, result, int(done.group(1)) if done else -1,
                       traffic.fortio_codes(text))

    def stats(self) -> dict[str, int]:
        result = self.exec(["pilot-agent", "request", "GET", "stats"], container="istio-proxy")
        assert result.exit_code == 0, f"pilot-agent request GET stats failed: {result.stderr}"
        return traffic.envoy_stats(result.stdout)


def cluster_stats(stats: dict[str, int], namespace: str) -> dict[str, int]:
    """The httpbin cluster's stats by short name (``upstream_rq_pending_overflow`` …)."""
    prefix = f"cluster.outbound|8000||httpbin.{namespace}.svc.cluster.local"
    out = {}
    for name, value in stats.items():
        for sep in (";.", "."):
            if name.startswith(prefix + sep):
                out[name[len(prefix + sep):]] = value
    return out


def eventually(cluster, check: Callable[[], object], description: str):  # type: ignore[no-untyped-def]
    t = cluster.timeouts
    return waiting.eventually(check, timeout=t.eventually, interval=t.poll_interval,
                              consecutive=t.consecutive, description=description)


@pytest.fixture(scope="module")
def fortio(cluster, istio, lab_namespace, istio_settings) -> Iterator[Fortio]:
    """fortio from ``samples/httpbin/sample-client/fortio-deploy.yaml``, with its sidecar."""
    applier = Applier(cluster.kube, lab_namespace)
    applier(FORTIO_SAMPLE)
    cluster.kube.wait_for_deployments(lab_namespace, ["fortio-deploy"])
    yield Fortio(cluster.kube, lab_namespace)
    if istio_settings.keep != "always":
        applier.cleanup()


@pytest.fixture(scope="module")
def breaker(cluster, lab_namespace, httpbin, fortio, istio_settings) -> Iterator[dict]:
    """``circuitbreaking.yaml`` applied for the module, as the manual leaves it for C01-C04."""
    applier = Applier(cluster.kube, lab_namespace)
    applier(CIRCUIT_BREAKING)
    yield cluster.kube.get("networking.istio.io/v1alpha3", "DestinationRule", "httpbin",
                           lab_namespace)
    if istio_settings.keep != "always":
        applier.cleanup()


def tripped_run(cluster, fortio: Fortio, connections: int, requests: int) -> LoadRun:
    """A run in which every call is accounted for and the breaker answered at least once."""
    def run() -> LoadRun:
        load = fortio.load(connections, requests)
        assert load.calls == requests, f"expected 'All done {requests} calls': {load.describe()}"
        assert sum(load.codes.values()) == requests, f"codes do not add up: {load.describe()}"
        assert set(load.codes) <= {200, 503}, f"only 200 and 503 expected: {load.describe()}"
        assert load.codes[503] >= 1, f"no call was refused by the breaker: {load.describe()}"
        assert load.codes[200] >= 1, f"no call got through: {load.describe()}"
        return load

    return eventually(cluster, run, f"fortio -c {connections} -n {requests} trips the breaker")  # type: ignore[no-any-return]


# ------------------------------------------------------------------ the rule
@pytest.mark.check("L4.2-C02")
def test_the_rule_is_the_manuals_tiny_pool_with_outlier_detection(breaker) -> None:
    policy = breaker["spec"]["trafficPolicy"]
    assert breaker["spec"]["host"] == "httpbin"
    assert policy["connectionPool"] == {"tcp": {"maxConnections": 1},
                                        "http": {"http1MaxPendingRequests": 1,
                                                 "maxRequestsPerConnection": 1}}
    assert policy["outlierDetection"] == {"consecutive5xxErrors": 1, "interval": "1s",
                                          "baseEjectionTime": "3m", "maxEjectionPercent": 100}


# ------------------------------------------------------------------ L4.2-C01
@pytest.mark.check("L4.2-C01")
def test_a_single_request_gets_through(cluster, fortio: Fortio, breaker, lab_namespace) -> None:
    """Polled: right after the deploy fortio's sidecar may not have httpbin's endpoints yet."""
    argv = traffic.fortio_load_argv(URL, curl=True)

    def once():  # type: ignore[no-untyped-def]
        result = fortio.exec(argv)
        text = result.stdout + result.stderr
        assert result.exit_code == 0, f"`{' '.join(argv)}` failed:\n{text[-2000:]}"
        assert re.search(r"^HTTP/1\.1 200 OK\r?$", text, re.M), \
            f"no 200 status line:\n{text[:800]}"
        return result, text

    result, text = eventually(cluster, once, "one fortio curl to httpbin answers 200")
    server = re.search(r"^server: (.+?)\r?$", text, re.M | re.I)
    # Istio 1.26 answers fortio (in the mesh) with "envoy": the client's sidecar outbound HCM
    # leaves Envoy's default server name; inbound and gateway HCMs write "istio-envoy". Either
    # proves an Envoy answered, and meshConfig.defaultConfig.proxyHeaders.server can rename it.
    assert server and "envoy" in server.group(1), (
        f"no Envoy server header (expected 'envoy' from the client sidecar, or 'istio-envoy'):"
        f"\n{text[:800]}")
    shown = result.stdout if "{" in result.stdout else text  # fortio >= 1.6x: body on stdout
    body, _ = json.JSONDecoder().raw_decode(shown[shown.index("{"):])
    headers = {k: v[0] if isinstance(v, list) else v for k, v in body["headers"].items()}
    assert body["url"] == URL and headers["Host"] == "httpbin:8000"
    xfcc = headers["X-Forwarded-Client-Cert"]
    assert f"By=spiffe://cluster.local/ns/{lab_namespace}/sa/httpbin" in xfcc, xfcc
    assert f"URI=spiffe://cluster.local/ns/{lab_namespace}/sa/default" in xfcc, xfcc


# ------------------------------------------------------------------ L4.2-C02/C03
@pytest.mark.check("L4.2-C02")
def test_two_connections_trip_the_breaker(cluster, fortio: Fortio, breaker) -> None:
    tripped_run(cluster, fortio, connections=2, requests=20)


@pytest.mark.check("L4.2-C03")
def test_three_connections_trip_the_breaker(cluster, fortio: Fortio, breaker) -> None:
    tripped_run(cluster, fortio, connections=3, requests=30)


@pytest.mark.check("L4.2-C02")
def test_every_refused_call_is_an_envoy_overflow_in_the_client_sidecar_log(
        cluster, istio, fortio: Fortio, breaker, lab_namespace) -> None:
    if not istio.mesh_config().get("accessLogFile"):
        pytest.skip("the mesh writes no access logs (meshConfig.accessLogFile is empty)")
    log = ProxyLog(cluster.kube, lab_namespace, fortio.pod, cluster.timeouts)
    mark = log.mark()
    load = tripped_run(cluster, fortio, connections=2, requests=20)
    refused = log.wait_for_new(mark, lambda e: e.status == 503, count=load.codes[503],
                               description="the 503s in fortio's sidecar log")
    cluster_name = f"outbound|8000||httpbin.{lab_namespace}.svc.cluster.local"
    for entry in refused:
        assert (entry.flags, entry.details, entry.upstream_cluster) == (
            "UO", OVERFLOW_DETAILS, cluster_name), f"not a circuit-breaker overflow: {entry.line}"


# ------------------------------------------------------------------ L4.2-C04
@pytest.mark.check("L4.2-C04")
def test_the_client_sidecar_counts_the_overflows(cluster, fortio: Fortio, breaker,
                                                  lab_namespace) -> None:
    before = cluster_stats(fortio.stats(), lab_namespace)
    missing = [name for name in PENDING_STATS if name not in before]
    assert not missing, (f"stats of outbound|8000||httpbin.{lab_namespace}.svc.cluster.local "
                         f"missing: {missing} (the fortio sample's stats matcher includes "
                         "cluster.outbound)")
    tripped_run(cluster, fortio, connections=3, requests=30)
    after = cluster_stats(fortio.stats(), lab_namespace)
    assert after["upstream_rq_pending_overflow"] > before["upstream_rq_pending_overflow"], (
        "the overflow counter did not grow with a run that got 503s")
    assert after["upstream_rq_pending_total"] > 0
    at_rest = {name: after[name] for name in PENDING_STATS[:5]}
    assert at_rest == {"circuit_breakers.default.remaining_pending": 1,
                       "circuit_breakers.default.rq_pending_open": 0,
                       "circuit_breakers.high.rq_pending_open": 0,
                       "upstream_rq_pending_active": 0,
                       "upstream_rq_pending_failure_eject": 0}


# ------------------------------------------------------------------ companions
@pytest.mark.check("L4.2-X01")
def test_the_connection_limit_overflows(cluster, fortio: Fortio, breaker,
                                        lab_namespace) -> None:
    """Beyond the manual: a mesh that ignored ``maxConnections: 1`` would still refuse calls
    through ``http1MaxPendingRequests: 1`` and pass C02-C04. With two connections'
    worth of load, Envoy's connection circuit breaker must overflow
    (``upstream_cx_overflow`` grows) and the pool holds no more than one connection."""
    before = cluster_stats(fortio.stats(), lab_namespace)
    tripped_run(cluster, fortio, connections=2, requests=20)
    after = cluster_stats(fortio.stats(), lab_namespace)
    assert after.get("upstream_cx_overflow", 0) > before.get("upstream_cx_overflow", 0), (
        "upstream_cx_overflow did not grow: the connection limit was never reached "
        f"(before {before.get('upstream_cx_overflow')}, after {after.get('upstream_cx_overflow')})")
    assert after.get("circuit_breakers.default.cx_open", 0) == 0, after
    assert after.get("upstream_cx_active", 0) <= 1, after


@pytest.fixture(scope="module")
def outlier_client(cluster, istio, lab_namespace, istio_settings,
                   tmp_path_factory) -> Iterator[Fortio]:
    """The fortio sample's Deployment renamed ``fortio-outlier`` (no Service): a caller of its
    own, whose sidecar may eject httpbin for 3 minutes."""
    [doc] = [d for d in manifests.load(FORTIO_SAMPLE) if d["kind"] == "Deployment"]
    doc["metadata"]["name"] = OUTLIER_CLIENT
    doc["spec"]["selector"]["matchLabels"]["app"] = OUTLIER_CLIENT
    doc["spec"]["template"]["metadata"]["labels"]["app"] = OUTLIER_CLIENT
    manifest = tmp_path_factory.mktemp("outlier") / f"{OUTLIER_CLIENT}.yaml"
    manifest.write_text(yaml.safe_dump(doc))
    applier = Applier(cluster.kube, lab_namespace)
    applier(manifest)
    cluster.kube.wait_for_deployments(lab_namespace, [OUTLIER_CLIENT])
    yield Fortio(cluster.kube, lab_namespace, OUTLIER_CLIENT)
    if istio_settings.keep != "always":
        applier.cleanup()


def fortio_curl(client: Fortio, url: str) -> tuple[int, str]:
    """``fortio curl URL``: the status and the text fortio printed."""
    result = client.exec(traffic.fortio_load_argv(url, curl=True))
    text = result.stdout + result.stderr
    status = re.search(r"^HTTP/1\.1 (\d{3})", text, re.M)
    return (int(status.group(1)) if status else 0), text


@pytest.mark.check("L4.2-X02")
def test_a_5xx_ejects_httpbin_then_no_healthy_upstream(cluster, httpbin, breaker,
                                                       outlier_client: Fortio,
                                                       lab_namespace) -> None:
    """Beyond the manual: httpbin never answers 5xx there, so a mesh that never ejected would
    pass. With ``consecutive5xxErrors: 1`` one 500 from httpbin ejects its only host
    (``maxEjectionPercent: 100``) for 3 minutes: the next call gets Envoy's ``503 no healthy
    upstream`` and the caller's sidecar counts the ejection."""
    def ejected() -> None:
        status, text = fortio_curl(outlier_client, "http://httpbin:8000/status/500")
        assert status in (500, 503), f"expected 500 (or 503 once ejected):\n{text[:800]}"
        status, text = fortio_curl(outlier_client, URL)
        assert status == 503 and "no healthy upstream" in text, (
            f"after a 500, expected 503 no healthy upstream:\n{text[:800]}")

    eventually(cluster, ejected, "a 500 ejects httpbin (503 no healthy upstream)")
    counters = cluster_stats(outlier_client.stats(), lab_namespace)
    assert counters.get("outlier_detection.ejections_enforced_consecutive_5xx", 0) >= 1, counters
    assert counters.get("outlier_detection.ejections_active", 0) == 1, counters
