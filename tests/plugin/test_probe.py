"""istiolab-probe: traffic continuity during an upgrade (issue 15).

The probe runs as its own process, as a platform team runs it, against an embedded cluster this
test module starts in-process and hands over as an existing context (``--istio-cluster existing
--istio-context embedded``), so the tests can break the target while the probe watches. The
continuity record itself is checked without a cluster.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from kubernetes import client as k8s

from pytest_istiolab import constants as c
from pytest_istiolab.cluster import ClusterSession
from pytest_istiolab.deploy import ensure_istio
from pytest_istiolab.kube import take_inventory
from pytest_istiolab.probe import Budget, Outcome, PathRecord, envoy_flag
from pytest_istiolab.probe.cli import main
from pytest_istiolab.settings import Settings
from pytest_istiolab.waiting import eventually

PROBE = [sys.executable, "-m", "pytest_istiolab.probe"]
MANAGED = f"{c.LABEL_MANAGED}=istiolab-probe"
LIMIT = 60.0  # named limit for one probe process to start, react and exit on this machine


pytestmark = pytest.mark.usefixtures("_no_istiolab_env")  # see conftest.py


# ------------------------------------------------------------------ the record, no cluster
def test_gaps_failures_and_the_budget_are_counted_per_path():
    record = PathRecord("in-mesh", "test")
    for at in (0.2, 0.4, 0.6):
        record.add(at, Outcome(200))
    record.add(1.0, Outcome(503, flag="UH"))
    record.add(2.0, Outcome(0, exit_code=7))
    record.add(3.6, Outcome(200))
    data = record.to_json(4.0)
    assert (data["requests"], data["failed"]) == (6, 2)
    assert data["failures"] == {"503 UH": 1, "curl exit 7": 1}
    assert data["by_curl_exit_code"] == {"7": 1} and data["by_envoy_flag"] == {"UH": 1}
    assert data["longest_gap"] == {"seconds": 3.0, "from_s": 0.6, "to_s": 3.6}
    assert data["timeline"][1] == {"second": 1, "ok": 0, "failed": 1}
    assert Budget(max_gap=3.5).exceeded([record], 4.0) == []
    exceeded = Budget(max_gap=2.5, max_error_rate=0.5).exceeded([record], 4.0)
    assert exceeded == ["--max-gap exceeded on in-mesh: 3.0 s without a successful request "
                        "(budget 2.5 s)"]
    # the open gap at the end counts too: traffic that never comes back is the longest gap
    assert record.longest_gap(9.6).seconds == pytest.approx(6.0)


@pytest.mark.parametrize(("status", "body", "flag"), [
    (503, "no healthy upstream", "UH"), (503, "fault filter abort", "FI"),
    (503, "upstream connect error or disconnect/reset before headers. reset reason: "
          "connection failure", "UF"),
    (504, "upstream request timeout", "UT"), (404, "", "NR"), (503, '{"app": "down"}', None),
])
def test_envoy_local_replies_name_their_flag(status, body, flag):
    assert envoy_flag(status, body) == flag


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize(("argv", "message"), [
    (["--max-error-rate", "lots"], "'lots' is not a number"),
    (["--max-gap", "soon"], "'soon' is not a number"),
    (["--rate", "500"], "outside 0 < rate <= 50"),
    (["--istio-cluster", "kind"], "invalid choice: 'kind'"),
])
def test_a_budget_or_limit_that_is_not_a_number_is_one_clear_error(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert message in err and "Traceback" not in err


def test_an_unknown_context_is_one_clear_error(tmp_path, capsys):
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "dev",
        "clusters": [{"name": "dev", "cluster": {"server": "https://127.0.0.1:1"}}],
        "users": [{"name": "dev", "user": {}}],
        "contexts": [{"name": "dev", "context": {"cluster": "dev", "user": "dev"}}]}))
    status = main(["--istio-cluster", "existing", "--istio-context", "prod",
                   "--istio-kubeconfig", str(kubeconfig), "--report", str(tmp_path / "r.json")])
    err = capsys.readouterr().err
    assert status == 2
    assert "prod" in err and "fix:" in err and "Traceback" not in err
    assert not (tmp_path / "r.json").exists()


# ------------------------------------------------------------------ against a cluster
@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """An embedded cluster with Istio, served from this process, used by the probe as an
    existing context."""
    settings = Settings(cluster="embedded", workdir=tmp_path_factory.mktemp("probe-cluster"))
    session = ClusterSession.open(settings)
    ensure_istio(session, settings.profile)
    yield session
    session.close()


class Probe:
    """An ``istiolab-probe`` process; its stderr read line by line on a thread."""

    def __init__(self, session: ClusterSession, report: Path, *args: str) -> None:
        self.report = report
        argv = [*PROBE, "--istio-cluster", "existing", "--istio-context", "embedded",
                "--istio-kubeconfig", str(session.kubeconfig), "--report", str(report),
                "--progress", "0.5", *args]
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self.lines: queue.Queue[str] = queue.Queue()
        self.stderr: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.proc.stderr:  # type: ignore[union-attr]
            self.stderr.append(line)
            self.lines.put(line)

    def wait_for_line(self, text: str) -> None:
        def seen() -> None:
            assert self.proc.poll() is None, f"probe exited: {''.join(self.stderr)}"
            assert any(text in line for line in self.stderr), f"no line with {text!r} yet"

        eventually(seen, timeout=LIMIT, interval=0.1, description=f"probe prints {text!r}")

    def latest(self) -> dict:
        """The report as last written (an AssertionError, which ``eventually`` retries, until
        the probe's first progress line has written it)."""
        assert self.report.exists(), f"the probe has not written {self.report.name} yet"
        return json.loads(self.report.read_text())

    def finish(self, sig: int | None = None) -> tuple[int, str]:
        if sig is not None:
            self.proc.send_signal(sig)
        try:  # not communicate(): it would read stderr too, racing the reader thread
            self.proc.wait(timeout=LIMIT)  # stdout is a short summary: the pipe never fills
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise
        self.reader.join(LIMIT)  # every stderr line read (the pipe is closed at exit)
        return self.proc.returncode, self.proc.stdout.read()  # type: ignore[union-attr]


def probe_namespaces(session: ClusterSession) -> list[str]:
    return [ns["metadata"]["name"] for ns in
            session.kube.list("v1", "Namespace", label_selector=MANAGED)]


def test_a_clean_run_has_no_failure_and_exits_0(cluster, tmp_path):
    before = take_inventory(cluster.kube)
    probe = Probe(cluster, tmp_path / "report.json", "--duration", "3", "--max-gap", "2.5",
                  "--max-error-rate", "0")
    status, out = probe.finish()
    assert status == 0, out + "".join(probe.stderr)
    report = probe.latest()
    for name in ("in-mesh", "ingress"):
        path = report["paths"][name]
        assert path["requests"] >= 10 and path["failed"] == 0, path
        assert path["longest_gap"]["seconds"] <= 2.5
    assert report["budget"]["exceeded"] == [] and "within budget" in out
    assert "*" not in report["host"]
    assert report["cluster"]["ingress_via"] in ("nodeport", "port-forward")
    istiod = report["istiod_image"]
    assert istiod["at_start"] == istiod["at_end"] and "pilot" in istiod["at_start"]
    assert take_inventory(cluster.kube).diff(before).added == ()


def test_ctrl_c_removes_everything_the_probe_deployed(cluster, tmp_path):
    before = take_inventory(cluster.kube)
    probe = Probe(cluster, tmp_path / "report.json")
    probe.wait_for_line("traffic flowing")
    assert len(probe_namespaces(cluster)) == 1
    status, out = probe.finish(signal.SIGINT)
    assert status == 0, out + "".join(probe.stderr)
    assert probe.latest()["stopped_by"] == "stopped by Ctrl-C (SIGINT)"
    assert probe_namespaces(cluster) == []
    diff = take_inventory(cluster.kube).diff(before)
    assert (diff.added, diff.removed, diff.labels) == ((), (), ())
    assert "Traceback" not in "".join(probe.stderr)


def test_ctrl_c_while_deploying_still_removes_the_namespace(cluster, tmp_path):
    probe = Probe(cluster, tmp_path / "report.json")
    probe.wait_for_line("deploying sleep and httpbin")
    status, _ = probe.finish(signal.SIGINT)
    stderr = "".join(probe.stderr)
    assert status == 3, stderr  # nothing measured
    assert "interrupted before traffic started" in stderr and "Traceback" not in stderr
    assert probe_namespaces(cluster) == []


def _scale(session: ClusterSession, namespace: str, replicas: int) -> None:
    k8s.AppsV1Api(session.kube.api_client).patch_namespaced_deployment_scale(
        "httpbin", namespace, {"spec": {"replicas": replicas}})


def test_a_target_that_goes_away_shows_failures_the_gap_and_exits_1(cluster, tmp_path):
    """The test double: httpbin scaled to 0 replicas mid-run for longer than --max-gap, then
    back. Both paths get Envoy's 503 UH (no healthy upstream) and the budget is exceeded."""
    probe = Probe(cluster, tmp_path / "report.json", "--max-gap", "2")
    probe.wait_for_line("traffic flowing")
    [namespace] = probe_namespaces(cluster)
    _scale(cluster, namespace, 0)

    def outage_longer_than_budget() -> None:
        paths = probe.latest()["paths"]
        for path in paths.values():
            assert path["failed"] > 0 and path["longest_gap"]["seconds"] > 2.5, path["failures"]

    eventually(outage_longer_than_budget, timeout=LIMIT, interval=0.2,
               description="both paths fail for longer than the gap budget")
    _scale(cluster, namespace, 1)
    cluster.kube.wait_for_deployments(namespace, ["httpbin"])

    def recovered() -> None:
        for path in probe.latest()["paths"].values():
            last_ok = max(b["second"] for b in path["timeline"] if b["ok"])
            assert last_ok > path["last_failure_s"], "no success after the outage yet"

    eventually(recovered, timeout=LIMIT, interval=0.2, description="both paths recover")
    status, out = probe.finish(signal.SIGTERM)
    report = probe.latest()
    assert status == 1, out + "".join(probe.stderr)
    assert report["stopped_by"] == "stopped by SIGTERM"
    for name in ("in-mesh", "ingress"):
        path = report["paths"][name]
        assert path["failures"].get("503 UH", 0) == path["failed"] > 0, path["failures"]
        assert path["longest_gap"]["seconds"] > 2.5
        assert f"--max-gap exceeded on {name}" in out
    assert probe_namespaces(cluster) == []
