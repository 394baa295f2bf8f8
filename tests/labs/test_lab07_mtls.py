"""Lab 7 — Authentication: mutual TLS for applications ("认证：为应用生成双向 TLS"). L7-C01..C08.

The manual creates namespaces foo and bar with httpbin and sleep injected by ``istioctl
kube-inject`` (the namespaces are not labelled), and legacy with the same two apps without
sidecars; it prints the reachability matrix (sleep.<from> to httpbin.<to>, from foo/bar/legacy to
foo/bar), applies a mesh-wide PeerAuthentication ``default`` in istio-system (PERMISSIVE, then
STRICT), re-deploys legacy with kube-inject, and lists the policies.

Here each namespace is ``<module>-<role>-<run>`` (a shared cluster may have a foo), and every
test enters the state it checks itself — mesh policy none/PERMISSIVE/STRICT, legacy plain or
injected — so any subset runs, in any order. The mesh-wide policy goes through ``mesh_wide``:
recorded first, put back at module end whatever the outcome (or Ctrl-C), the mesh lock held
exclusively meanwhile; skipped under ``--istio-read-only``. A policy takes a moment to reach
the proxies on a real mesh (C04's "allow a few seconds"), so every cell polls until it holds.

Deviations (catalogue appendix D): D-27 the manual's ``v1beta1`` files are applied as they are;
D-30 C02's "only the Bookinfo DRs" is checked as "no DestinationRule reaches the lab's hosts"
(other labs' DRs may exist on a shared cluster). The manual's ``kubectl exec`` prints
``command terminated with exit code 56``: that is kubectl reporting curl's exit code, which the
exec API returns; it is asserted as exit code 56 with ``%{http_code}`` ``000``.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest

from pytest_istiolab import waiting
from pytest_istiolab.cluster import ClusterSession
from pytest_istiolab.deploy import MeshWide, kube_injected
from pytest_istiolab.kube import Applier, ExecResult, manifests, ready_column, running_containers
from pytest_istiolab.traffic import curl_argv

pytestmark = [pytest.mark.lab(7)]

LAB = "lab07-mtls/"
SEC = "security.istio.io/v1beta1"
ROOT = "istio-system"
SAMPLES = {"httpbin": "samples/httpbin/httpbin.yaml", "sleep": "samples/sleep/sleep.yaml"}
ROLES = ("foo", "bar", "legacy")
TARGETS = ("foo", "bar")
XFCC = re.compile(r'^By=(?P<by>spiffe://\S+?);Hash=(?P<hash>[0-9a-f]{64});Subject="";'
                  r"URI=(?P<uri>spiffe://\S+)$")

# phase -> (mesh-wide mode, legacy injected, the check it is)
PHASES = {"baseline": (None, False, pytest.mark.check("L7-C01")),
          "permissive": ("PERMISSIVE", False, pytest.mark.check("L7-C03")),
          "strict": ("STRICT", False, pytest.mark.check("L7-C04")),
          "reinjected": ("STRICT", True, pytest.mark.check("L7-C06"))}


@dataclass
class MtlsLab:
    """The three namespaces and the mesh-wide policy, moved into the state a test needs."""

    cluster: ClusterSession
    mesh: MeshWide
    namespaces: dict[str, str]
    appliers: dict[str, Applier]
    mode: str | None = "unknown"
    injected: dict[str, bool] = field(default_factory=dict)
    _injected_docs: list[manifests.Doc] = field(default_factory=list)

    def kube_inject(self) -> list[manifests.Doc]:
        """``istioctl kube-inject`` of httpbin and sleep (run once: same input, same output)."""
        if not self._injected_docs:
            self._injected_docs = kube_injected(self.cluster, *SAMPLES.values())
        return self._injected_docs

    def deploy(self, role: str, inject: bool) -> None:
        """``kubectl apply -f <(istioctl kube-inject -f samples/...) -n <role>`` (or plain)."""
        ns = self.namespaces[role]
        if inject:
            self.appliers[role].apply_docs(self.kube_inject(), "istioctl kube-inject -f "
                                           + " ".join(SAMPLES.values()))
        else:
            for path in SAMPLES.values():
                self.appliers[role](path)
        self.cluster.kube.wait_for_deployments(ns, list(SAMPLES))
        containers = 2 if inject else 1
        eventually(self.cluster, lambda: _pods_are(self.cluster, ns, containers),
                   f"every pod in {ns} running {containers} ready containers")
        self.injected[role] = inject

    def enter(self, mode: str | None, legacy_injected: bool) -> None:
        changed = False
        for role in ROLES:
            want = legacy_injected if role == "legacy" else True
            if self.injected.get(role) != want:
                self.deploy(role, want)
                changed = True
        if self.mode != mode:
            if mode is None:
                self.mesh.remove_policy(SEC, "PeerAuthentication", "default")
            else:
                doc = manifests.load(LAB + f"mtls{mode.lower()}.yaml")[0]
                self.mesh.apply_policy(doc)
            self.mode, changed = mode, True
        if changed:
            self._wait_in_effect(mode, legacy_injected)

    def _wait_in_effect(self, mode: str | None, legacy_injected: bool) -> None:
        """Until both servers' sidecars show the state: sleep.foo (mTLS) and sleep.legacy get
        what the mode gives them (plaintext refused under STRICT; PERMISSIVE and no policy look
        alike on the wire). Right after a deploy or a policy change a one-shot curl, or a 200
        under STRICT, would otherwise be read from the state before."""
        def check() -> None:
            for dst in TARGETS:
                for src in ("foo", "legacy"):
                    want = expected_answer(mode, src, legacy_injected)
                    result = self.curl(src, dst, write_out="%{http_code}")
                    seen = (result.stdout.strip(), result.exit_code)
                    assert seen == want, (f"sleep.{src} to httpbin.{dst}: {seen[0]} (exit "
                                          f"{seen[1]}), expected {want[0]} (exit {want[1]})")

        eventually(self.cluster, check, f"mesh-wide mode {mode or 'none'} in effect on "
                   f"httpbin.foo and httpbin.bar (legacy {'with' if legacy_injected else 'without'}"
                   " sidecar)")

    def enter_phase(self, phase: str) -> None:
        mode, injected, _ = PHASES[phase]
        self.enter(mode, injected)

    def curl(self, src: str, dst: str, path: str = "/ip", **options: object) -> ExecResult:
        ns = self.namespaces[src]
        pod = self.cluster.kube.first_pod(ns, "app=sleep")
        url = f"http://httpbin.{self.namespaces[dst]}:8000{path}"
        return self.cluster.kube.exec(ns, pod, curl_argv(url, **options),  # type: ignore[arg-type]
                                      container="sleep")

    def headers(self, src: str, dst: str) -> dict[str, list[str]]:
        result = self.curl(src, dst, "/headers", output=None)
        assert result.exit_code == 0, f"curl /headers {src} -> {dst}: exit {result.exit_code}"
        return dict(json.loads(result.stdout)["headers"])


def expected_answer(mode: str | None, src: str, legacy_injected: bool) -> tuple[str, int]:
    """(%{http_code}, curl exit) of sleep.<src> to an injected httpbin: only STRICT with a
    legacy client without sidecar fails (no filter chain for plaintext: reset, exit 56)."""
    refused = mode == "STRICT" and src == "legacy" and not legacy_injected
    return ("000", 56) if refused else ("200", 0)


def eventually(cluster: ClusterSession, check: Callable[[], object], description: str):  # type: ignore[no-untyped-def]
    t = cluster.timeouts
    return waiting.eventually(check, timeout=t.eventually, interval=t.poll_interval,
                              consecutive=t.consecutive, description=description)


def _pods_are(cluster: ClusterSession, namespace: str, containers: int) -> None:
    pods = [p for p in cluster.kube.pods(namespace) if not p["metadata"].get("deletionTimestamp")]
    assert pods, f"no pods in {namespace}"
    for pod in pods:  # a native sidecar (Istio 1.27) counts as a container, as kubectl does
        running = len(running_containers(pod))
        assert running == containers, f"{pod['metadata']['name']} has {running} containers"
        assert ready_column(pod) == f"{containers}/{containers}", \
            f"{pod['metadata']['name']} is not {containers}/{containers} ready"


@pytest.fixture(scope="module")
def lab(cluster, istio, mesh_wide, lab_namespaces) -> Iterator[MtlsLab]:
    names = {role: lab_namespaces(role) for role in ROLES}
    appliers = {role: Applier(cluster.kube, ns) for role, ns in names.items()}
    yield MtlsLab(cluster, mesh_wide, names, appliers)
    for applier in appliers.values():
        applier.cleanup()


def _lab_hosts(lab: MtlsLab) -> list[str]:
    return [f"httpbin.{lab.namespaces[r]}.svc.cluster.local" for r in ROLES]


@pytest.mark.check("L7-C02")
def test_no_peer_authentication_and_no_destination_rule_for_the_lab(lab, kube):
    """``kubectl get peerauthentication -A``: none in the root namespace or the lab's; no
    DestinationRule (anywhere) reaches the lab's httpbin hosts (D-30: other labs' may exist)."""
    lab.enter(None, False)
    watched = {ROOT, *lab.namespaces.values()}
    eventually(lab.cluster, lambda: _no_policies(kube, watched),
               "no PeerAuthentication in istio-system or the lab namespaces")
    for dr in kube.list("networking.istio.io/v1", "DestinationRule"):
        host = str((dr.get("spec") or {}).get("host") or "")
        ns = dr["metadata"]["namespace"]
        full = host if "." in host else f"{host}.{ns}.svc.cluster.local"
        assert not any(fnmatch.fnmatch(h, full) for h in _lab_hosts(lab)), \
            f"DestinationRule {ns}/{dr['metadata']['name']} (host {host}) reaches the lab's hosts"


def _no_policies(kube, namespaces: set[str]) -> None:  # type: ignore[no-untyped-def]
    found = [f"{p['metadata']['namespace']}/{p['metadata']['name']}"
             for p in kube.list(SEC, "PeerAuthentication")
             if p["metadata"]["namespace"] in namespaces]
    assert not found, f"PeerAuthentication present: {found}"


@pytest.mark.check("L7-C08")
def test_httpbin_is_the_1_26_go_httpbin_answering_ip(lab, kube):
    """The 1.26 sample is go-httpbin (port 8080 behind Service port 8000); ``/ip`` answers
    ``{"origin": ...}``."""
    lab.enter(None, False)
    for role in ROLES:
        deployment = kube.get("apps/v1", "Deployment", "httpbin", lab.namespaces[role])
        images = [c["image"] for c in deployment["spec"]["template"]["spec"]["containers"]]
        assert "docker.io/mccutchen/go-httpbin:v2.15.0" in images, images
    result = lab.curl("foo", "bar", output=None)
    assert result.exit_code == 0 and "origin" in json.loads(result.stdout)


@pytest.mark.check("L7-X01")
def test_mtls_request_carries_the_client_identity_in_xfcc(lab, istio):
    """Beyond the manual: on an mTLS request the server sidecar sets
    ``X-Forwarded-Client-Cert: By=<server SPIFFE>;Hash=<sha256>;Subject="";URI=<client SPIFFE>``
    (SPIFFE IDs from the service accounts), and the hash differs per client identity."""
    lab.enter(None, False)
    foo, bar = lab.namespaces["foo"], lab.namespaces["bar"]
    seen = {}
    for src in ("foo", "bar"):
        values = lab.headers(src, "bar").get("X-Forwarded-Client-Cert") or []
        assert len(values) == 1, f"XFCC from sleep.{src}: {values}"
        match = XFCC.match(values[0])
        assert match, f"XFCC not as Envoy writes it: {values[0]}"
        trust = match["by"].split("/")[2]
        assert match["by"] == f"spiffe://{trust}/ns/{bar}/sa/httpbin"
        assert match["uri"] == f"spiffe://{trust}/ns/{lab.namespaces[src]}/sa/sleep"
        seen[src] = match["hash"]
    assert seen["foo"] != seen["bar"], f"one hash for two identities ({foo}, {bar})"


@pytest.mark.check("L7-X02")
def test_plaintext_request_under_permissive_carries_no_xfcc(lab):
    """Beyond the manual: legacy (no sidecar) reaches foo in plaintext under PERMISSIVE, and
    Envoy removes/never sets XFCC on a connection that is not mTLS."""
    lab.enter("PERMISSIVE", False)
    headers = lab.headers("legacy", "foo")
    assert "X-Forwarded-Client-Cert" not in headers, headers.get("X-Forwarded-Client-Cert")


def cell(phase: str, src: str, dst: str):  # type: ignore[no-untyped-def]
    return pytest.param(phase, src, dst, marks=PHASES[phase][2],
                        id=f"{phase}-sleep.{src}-to-httpbin.{dst}")


MATRIX = [cell(phase, src, dst) for phase in PHASES for src in ROLES for dst in TARGETS]


@pytest.mark.parametrize("phase,src,dst", MATRIX)
def test_reachability_matrix(lab, phase, src, dst):
    """``curl http://httpbin.<to>:8000/ip -s -o /dev/null -w "%{http_code}"`` from sleep.<from>.

    Only STRICT with a legacy client without sidecar fails: the server sidecar finds no filter
    chain for plaintext and closes the connection (curl exit 56, ``000``).
    """
    lab.enter_phase(phase)
    mode, injected, _ = PHASES[phase]
    expected = expected_answer(mode, src, injected)

    def check() -> None:
        result = lab.curl(src, dst, write_out="%{http_code}")
        seen = (result.stdout.strip(), result.exit_code)
        assert seen == expected, (f"sleep.{src} to httpbin.{dst}: {seen[0]} (exit {seen[1]}), "
                                  f"expected {expected[0]} (exit {expected[1]})")

    eventually(lab.cluster, check, f"sleep.{src} to httpbin.{dst} under {phase}")


@pytest.mark.check("L7-C05")
def test_legacy_redeployed_with_kube_inject_runs_2_of_2(lab, kube):
    """``kubectl get pod -n legacy``: httpbin and sleep, READY ``2/2``, STATUS ``Running``."""
    lab.enter("STRICT", True)
    ns = lab.namespaces["legacy"]

    def listed() -> None:
        table = kube.table("v1", "Pod", ns)
        columns = [c["name"] for c in table["columnDefinitions"]]
        rows = [dict(zip(columns, r["cells"])) for r in table["rows"]]
        apps = sorted(r["Name"].rsplit("-", 2)[0] for r in rows)
        assert apps == ["httpbin", "sleep"], f"pods in legacy: {[r['Name'] for r in rows]}"
        assert all(r["Ready"] == "2/2" and r["Status"] == "Running" for r in rows), rows

    eventually(lab.cluster, listed, "legacy's pods 2/2 Running")


@pytest.mark.check("L7-C07")
def test_peer_authentication_listing_shows_the_mesh_wide_strict_policy(lab, kube):
    """``kubectl get peerauthentication -A``: one row istio-system / default / MODE STRICT
    (the columns the server prints from the CRD, read from the API as kubectl reads them)."""
    lab.enter("STRICT", True)
    watched = {ROOT, *lab.namespaces.values()}

    def listed() -> None:
        table = kube.table(SEC, "PeerAuthentication")
        columns = [c["name"] for c in table["columnDefinitions"]]
        assert columns[:2] == ["Name", "Mode"], columns
        rows = [(r["object"]["metadata"]["namespace"], *r["cells"][:2]) for r in table["rows"]]
        assert [r for r in rows if r[0] in watched] == [(ROOT, "default", "STRICT")], rows

    eventually(lab.cluster, listed, "the mesh-wide STRICT policy listed")


@pytest.mark.check("L7-X03")
def test_plaintext_from_a_sidecar_to_a_strict_server_is_a_503(lab):
    """Beyond the manual: a DestinationRule ``tls.mode: DISABLE`` overrides auto mTLS, so foo's
    sidecar sends plaintext to bar; under STRICT bar's sidecar refuses it and foo's own sidecar
    answers 503 (curl exit 0), not a reset."""
    lab.enter("STRICT", True)
    applier = lab.appliers["foo"]
    doc = {"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
           "metadata": {"name": "httpbin-bar-plaintext"},
           "spec": {"host": f"httpbin.{lab.namespaces['bar']}.svc.cluster.local",
                    "trafficPolicy": {"tls": {"mode": "DISABLE"}}}}
    refs = applier.apply_docs([doc], "DestinationRule tls DISABLE")
    try:
        def check() -> None:
            result = lab.curl("foo", "bar", write_out="%{http_code}")
            assert (result.stdout.strip(), result.exit_code) == ("503", 0), result.stdout
        eventually(lab.cluster, check, "503 from foo's sidecar")
    finally:
        lab.cluster.kube.delete_all(refs)
        applier.applied = [r for r in applier.applied if r not in refs]
