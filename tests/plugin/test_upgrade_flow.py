"""The whole upgrade validation flow of issue 15, on the embedded cluster, for both upgrade styles.

As a platform team runs it (README "Validating an upgrade"): Istio 1.25.5 installed with its own
istioctl; the labs with a conformance report; ``istiolab-probe`` started; the upgrade to 1.26.8
(in place with ``istioctl upgrade``, or by revision: a second istiod, the namespace relabelled,
the ``default`` tag moved, the old revision uninstalled); workloads restarted; the probe
stopped; the labs again with ``--istio-compare``. Then a deliberately regressed "after" (a test
double: the upgraded cluster with one Istio CRD deleted) shows the regression and exit 1.
Last, the probe against a gateway rollout with slow readiness: nothing with the chart's surge,
failures when a test double's strategy removes the old pod first.

The cluster is served from this process and handed to the runs as an existing context. To keep
the wall time modest on 2 cores the lab selection is small (:data:`LABS`: Lab 1's version, CRD
and namespace checks, the checks naming istiod's objects (L1-C03, L1-C10, L2-C03's CA_ADDR:
after the revision-based upgrade they follow ``istiod-<rev>``), and Lab 5's traffic-mirroring
module); the probe covers the traffic.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pytest_istiolab.embedded import EmbeddedCluster
from pytest_istiolab.embedded.realism import Realism
from pytest_istiolab.waiting import eventually

REPO = Path(__file__).resolve().parents[2]
OLD, NEW, REVISION = "1.25.5", "1.26.8", "1-26-8"
LABS = [
    "tests/labs/test_lab01_install.py::test_client_control_plane_and_data_plane_versions_agree",
    "tests/labs/test_lab01_install.py::test_the_fourteen_istio_crds_are_installed",
    "tests/labs/test_lab01_install.py::test_istio_system_namespace_is_active",
    # the checks the manual writes for the default revision, which the canary removes
    "tests/labs/test_lab01_install.py::test_install_without_yes_asks_first_and_changes_nothing",
    "tests/labs/test_lab01_install.py::test_control_plane_service_type_and_ports",
    "tests/labs/test_lab02_bookinfo.py::test_sidecar_dials_the_istiod_of_its_revision",
    "tests/labs/test_lab05_traffic_mirroring.py",
]
RUN_LIMIT = 300.0  # seconds for one lab run (a pytest process) on a loaded 2-core machine
STEP_LIMIT = 120.0  # seconds for one istioctl command or for the probe to start or stop

pytestmark = pytest.mark.usefixtures("_no_istiolab_env")


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[EmbeddedCluster]:
    with EmbeddedCluster(tmp_path / "cluster", seed=1515, istio_version=OLD) as started:
        run([str(started.istioctl_of(OLD)), "install", "-y", "--set", "profile=demo"])
        yield started


def run(argv: list[str], limit: float = STEP_LIMIT) -> subprocess.CompletedProcess[str]:
    res = subprocess.run(argv, capture_output=True, text=True, timeout=limit,
                         stdin=subprocess.DEVNULL)
    assert res.returncode == 0, f"{argv}: {res.stdout}\n{res.stderr}"
    return res


def existing(cluster: EmbeddedCluster) -> list[str]:
    return ["--istio-cluster", "existing", "--istio-context", "embedded",
            "--istio-kubeconfig", str(cluster.kubeconfig)]


def labs(cluster: EmbeddedCluster, version: str, report: Path, *extra: str
         ) -> subprocess.CompletedProcess[str]:
    """The lab selection against the cluster as it is (never installs), with a report."""
    argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *LABS,
            *existing(cluster), "--istio-install", "never", "--istio-version", version,
            "--istio-istioctl", str(cluster.istioctl_of(version)),
            "--istio-conformance-report", str(report), *extra]
    return subprocess.run(argv, capture_output=True, text=True, timeout=RUN_LIMIT, cwd=REPO,
                          stdin=subprocess.DEVNULL)


class Probe:
    """An ``istiolab-probe`` process; its output goes to a file (a pipe nobody reads while it
    runs would fill up and block the probe)."""

    running: list[Probe] = []

    def __init__(self, cluster: EmbeddedCluster, report: Path, *extra: str) -> None:
        self.report = report
        self.log = report.with_suffix(".log")
        with self.log.open("w") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "pytest_istiolab.probe", *existing(cluster),
                 "--report", str(report), "--progress", "0.5", *extra],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env={**os.environ, "PYTHONUNBUFFERED": "1"})
        Probe.running.append(self)

    def flowing(self) -> dict:
        def written() -> dict:
            assert self.proc.poll() is None, f"the probe exited early: {self.log.read_text()}"
            assert self.report.exists(), "no continuity report yet"
            data = json.loads(self.report.read_text())
            assert all(p["requests"] for p in data["paths"].values()), data["paths"]
            return data
        return eventually(written, timeout=STEP_LIMIT, interval=0.2,
                          description="the probe's traffic flowing on both paths")

    def stop(self) -> tuple[int, str, dict]:
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(timeout=STEP_LIMIT)
        Probe.running.remove(self)
        return self.proc.returncode, self.log.read_text(), json.loads(self.report.read_text())


@pytest.fixture(autouse=True)
def _no_probe_left_behind() -> Iterator[None]:
    """A test that failed with its probe running: stop it (Ctrl-C, then kill)."""
    yield
    while Probe.running:
        probe = Probe.running.pop()
        if probe.proc.poll() is None:
            probe.proc.send_signal(signal.SIGINT)
            try:
                probe.proc.wait(timeout=STEP_LIMIT)
            except subprocess.TimeoutExpired:
                probe.proc.kill()
                probe.proc.wait()


def restart(cluster: EmbeddedCluster, ns: str, name: str) -> None:
    """``kubectl rollout restart``: a new ``restartedAt`` annotation on the pod template."""
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    store = cluster.runtime.store

    def fill(cur: dict) -> None:
        meta = cur["spec"]["template"].setdefault("metadata", {})
        meta.setdefault("annotations", {})["kubectl.kubernetes.io/restartedAt"] = stamp
    store.mutate(store.resource_type("apps", "deployments"), ns, name, fill)


def relabel(cluster: EmbeddedCluster, ns: str) -> None:
    """``kubectl label ns NS istio-injection- istio.io/rev=1-26-8``."""
    store = cluster.runtime.store

    def fill(cur: dict) -> None:
        labels = cur["metadata"].setdefault("labels", {})
        labels.pop("istio-injection", None)
        labels["istio.io/rev"] = REVISION
    store.mutate(store.resource_type("", "namespaces"), None, ns, fill)


def proxy_images(cluster: EmbeddedCluster, ns: str) -> set[str]:
    return {ctr["image"] for p in cluster.runtime.store.by_kind("", "pods", ns)
            if not p["metadata"].get("deletionTimestamp")
            for ctr in p["spec"]["containers"] if ctr["name"] == "istio-proxy"}


def upgrade_in_place(cluster: EmbeddedCluster, probe_ns: str) -> None:
    run([str(cluster.istioctl_of(NEW)), "upgrade", "-y", "--set", "profile=demo"])
    restart(cluster, probe_ns, "httpbin")


def upgrade_by_revision(cluster: EmbeddedCluster, probe_ns: str) -> None:
    ctl = str(cluster.istioctl_of(NEW))
    run([ctl, "install", "-y", "--set", "profile=demo", "--set", f"revision={REVISION}"])
    relabel(cluster, probe_ns)
    restart(cluster, probe_ns, "httpbin")
    run([ctl, "tag", "set", "default", "--revision", REVISION, "--overwrite"])


def wait_for_proxies(cluster: EmbeddedCluster, ns: str, image: str) -> None:
    def moved() -> None:
        assert image in proxy_images(cluster, ns), proxy_images(cluster, ns)
    eventually(moved, timeout=STEP_LIMIT, interval=0.2,
               description=f"a proxy of {ns} running {image}")


@pytest.mark.parametrize("style", ["in-place", "revision"])
def test_an_upgrade_validated_before_and_after_with_traffic_continuity(
        cluster: EmbeddedCluster, tmp_path: Path, style: str) -> None:
    before, after = tmp_path / "before.json", tmp_path / "after.json"
    res = labs(cluster, OLD, before)
    assert res.returncode == 0, res.stdout + res.stderr
    assert json.loads(before.read_text())["found"]["istio_version"] == OLD

    probe = Probe(cluster, tmp_path / "continuity.json", "--max-error-rate", "0")
    probe_ns = probe.flowing()["namespace"]
    (upgrade_in_place if style == "in-place" else upgrade_by_revision)(cluster, probe_ns)
    wait_for_proxies(cluster, probe_ns, f"docker.io/istio/proxyv2:{NEW}")
    probe.flowing()  # still flowing after the rollouts
    status, out, continuity = probe.stop()
    assert status == 0, out
    for name, path in continuity["paths"].items():
        assert path["requests"] > 0 and path["failed"] == 0, (name, path)
    if style == "revision":
        run([str(cluster.istioctl_of(NEW)), "uninstall", "--revision", "default", "-y"])

    res = labs(cluster, NEW, after, "--istio-compare", str(before))
    assert res.returncode == 0, res.stdout + res.stderr
    report = json.loads(after.read_text())
    assert report["found"]["istio_version"] == NEW
    assert report["comparison"]["regressions"] == [], report["comparison"]
    assert f"baseline: Istio {OLD}" in res.stdout and f"current:  Istio {NEW}" in res.stdout
    named = {k: report["checks"][k]["status"] for k in ("L1-C03", "L1-C10", "L2-C03")}
    assert named == dict.fromkeys(named, "passed"), named  # run, not skipped, on istiod-<rev>
    revisions = [REVISION] if style == "revision" else ["default"]
    assert report["found"]["istiod_revisions"] == revisions, report["found"]

    if style == "in-place":  # the regressed "after": a 1.26.8 that lost a CRD (a test double)
        store = cluster.runtime.store
        store.delete(store.resource_type("apiextensions.k8s.io", "customresourcedefinitions"),
                     None, "proxyconfigs.networking.istio.io")
        regressed = labs(cluster, NEW, tmp_path / "regressed.json", "--istio-compare",
                         str(before))
        assert regressed.returncode == 1, regressed.stdout + regressed.stderr
        doc = json.loads((tmp_path / "regressed.json").read_text())
        assert [r["check"] for r in doc["comparison"]["regressions"]] == ["L1-C06"], doc
        assert "L1-C06" in regressed.stdout and "regression" in regressed.stdout.lower()


# ------------------------------------------------------------ what the probe sees of a rollout
SLOW_READY = Realism(seed=1515, push_delay=(0.0, 0.0), ready_delay=(1.0, 1.5), write_429=0.0,
                     write_500=0.0)


@pytest.fixture
def slow_cluster(tmp_path: Path) -> Iterator[EmbeddedCluster]:
    """Pods turn Ready 1-1.5 s after they start (only the realism profile's readiness delay)."""
    with EmbeddedCluster(tmp_path / "slow", seed=1515, realism=SLOW_READY) as started:
        run([str(started.istioctl), "install", "-y", "--set", "profile=demo"])
        yield started


def roll_gateway(cluster: EmbeddedCluster, strategy: dict | None) -> None:
    """Restart the ingress gateway (``strategy``: a test double's, or None for the chart's)
    and wait until its new pod is the only one and Ready."""
    store = cluster.runtime.store
    deployments = store.resource_type("apps", "deployments")
    old = {p["metadata"]["name"] for p in store.by_kind("", "pods", "istio-system")
           if p["metadata"]["name"].startswith("istio-ingressgateway-")}
    if strategy is not None:
        def fill(cur: dict) -> None:
            cur["spec"]["strategy"] = strategy
        store.mutate(deployments, "istio-system", "istio-ingressgateway", fill)
    restart(cluster, "istio-system", "istio-ingressgateway")

    def rolled() -> None:
        pods = [p for p in store.by_kind("", "pods", "istio-system")
                if p["metadata"]["name"].startswith("istio-ingressgateway-")]
        assert pods and not {p["metadata"]["name"] for p in pods} & old, "old pod still there"
        assert all(c.get("status") == "True" for p in pods
                   for c in p["status"].get("conditions", []) if c["type"] == "Ready")
    eventually(rolled, timeout=STEP_LIMIT, interval=0.1, description="the gateway rolled")


@pytest.mark.parametrize(("strategy", "fails"), [
    (None, False),  # the chart's maxSurge 100%: the old pod serves until the new one is Ready
    ({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}}, True),
])
def test_the_probe_sees_what_the_gateway_rollout_strategy_causes(
        slow_cluster: EmbeddedCluster, tmp_path: Path, strategy: dict | None,
        fails: bool) -> None:
    probe = Probe(slow_cluster, tmp_path / "continuity.json", "--max-error-rate", "0")
    probe.flowing()
    roll_gateway(slow_cluster, strategy)
    first = probe.flowing()["paths"]["ingress"]["requests"]

    def more() -> None:  # a few more requests through the new gateway pod
        assert probe.flowing()["paths"]["ingress"]["requests"] >= first + 5
    eventually(more, timeout=STEP_LIMIT, interval=0.2, description="traffic after the rollout")
    status, out, continuity = probe.stop()
    ingress = continuity["paths"]["ingress"]
    assert continuity["paths"]["in-mesh"]["failed"] == 0, continuity["paths"]["in-mesh"]
    if fails:
        assert status == 1 and ingress["failed"] > 0, (out, ingress)
        assert "--max-error-rate exceeded on ingress" in out
    else:
        assert status == 0 and ingress["failed"] == 0, (out, ingress)
