"""The embedded cluster can be upgraded (issue 15): several modelled releases, in-place and
revision-based canary upgrades, revision tags, and proxies that keep their version until their
pods are recreated, as ``istioctl version`` and ``istioctl proxy-status`` show them.

istioctl runs as its own process (``bin/istioctl-<version>``, one per modelled release) against
an :class:`EmbeddedCluster`; workloads are created and restarted through its store.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pytest_istiolab import constants as c
from pytest_istiolab.embedded import EmbeddedCluster
from pytest_istiolab.embedded.install import render_install
from pytest_istiolab.embedded.install.profiles import InstallError, resolve
from pytest_istiolab.embedded.install.releases import MODELLED_VERSIONS, release
from pytest_istiolab.embedded.install.render import render_spec
from pytest_istiolab.embedded.realism import Realism
from pytest_istiolab.waiting import eventually

OLD, NEW = "1.25.5", "1.26.8"
ISTIOCTL_TIMEOUT = 60.0  # seconds for one istioctl process (install waits for readiness)
SETTLE = 30.0  # seconds for the embedded controllers to roll a Deployment


# ------------------------------------------------------------------ releases, no cluster
def test_the_modelled_releases_are_the_newest_patches_and_the_default() -> None:
    assert MODELLED_VERSIONS == ("1.25.5", "1.26.0", "1.26.8", "1.27.9")
    assert c.EMBEDDED_ISTIO_VERSIONS == MODELLED_VERSIONS
    assert c.DEFAULT_ISTIO_VERSION in MODELLED_VERSIONS


@pytest.mark.parametrize(("version", "storage"), [
    ("1.25.5", "v1beta1"), ("1.26.0", "v1beta1"), ("1.26.8", "v1beta1"), ("1.27.9", "v1")])
def test_each_release_renders_its_images_labels_and_crd_storage(version: str,
                                                                  storage: str) -> None:
    objs = render_spec(resolve("default", {}, None, version))
    crds = {o["metadata"]["name"]: o for o in objs if o["kind"] == "CustomResourceDefinition"}
    assert len(crds) == 14
    stored = {v["name"] for v in crds["virtualservices.networking.istio.io"]["spec"]["versions"]
              if v["storage"]}
    assert stored == {storage}
    assert {v["name"] for v in crds["envoyfilters.networking.istio.io"]["spec"]["versions"]
            if v["storage"]} == {"v1alpha3"}
    images = {ctr["image"] for o in objs if o["kind"] == "Deployment"
              for ctr in o["spec"]["template"]["spec"]["containers"]}
    assert images == {f"docker.io/istio/pilot:{version}", f"docker.io/istio/proxyv2:{version}"}
    assert {o["metadata"]["labels"]["operator.istio.io/version"] for o in objs} == {version}


def test_a_revisioned_install_names_its_control_plane_after_the_revision() -> None:
    objs = render_install("default", {"revision": "1-26-8"})
    names = {(o["kind"], o["metadata"]["name"]) for o in objs}
    assert {("Deployment", "istiod-1-26-8"), ("Service", "istiod-1-26-8"),
            ("ConfigMap", "istio-1-26-8"), ("ConfigMap", "istio-sidecar-injector-1-26-8"),
            ("MutatingWebhookConfiguration", "istio-sidecar-injector-1-26-8")} <= names
    # the default revision's objects are left alone: no default tag, no default validator
    assert not {("MutatingWebhookConfiguration", "istio-revision-tag-default"),
                ("ValidatingWebhookConfiguration", "istiod-default-validator"),
                ("Deployment", "istiod")} & names
    assert {o["metadata"]["labels"]["istio.io/rev"] for o in objs
            if o["kind"] != "CustomResourceDefinition"} == {"1-26-8"}


@pytest.mark.parametrize(("sets", "message"), [
    ({"revision": "1.26.8"}, "a revision is a DNS label"),
    ({"tag": NEW}, f"this istioctl installs Istio {OLD}"),
])
def test_bad_revisions_and_tags_are_refused(sets: dict, message: str) -> None:
    with pytest.raises(InstallError, match=message):
        resolve("default", sets, None, OLD)


def test_an_unmodelled_release_names_the_modelled_ones() -> None:
    with pytest.raises(ValueError, match="it models 1.25.5, 1.26.0, 1.26.8, 1.27.9"):
        release("1.24.6")


# ------------------------------------------------------------------ upgrades, end to end
@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[EmbeddedCluster]:
    with EmbeddedCluster(tmp_path / "cluster", seed=15, istio_version=OLD) as started:
        yield started


def istioctl(cluster: EmbeddedCluster, version: str, *argv: str,
             ok: bool = True) -> subprocess.CompletedProcess[str]:
    res = subprocess.run([str(cluster.istioctl_of(version)), *argv], capture_output=True,
                         text=True, timeout=ISTIOCTL_TIMEOUT, stdin=subprocess.DEVNULL)
    if ok:
        assert res.returncode == 0, res.stderr
    return res


def _rt(cluster: EmbeddedCluster, group: str, plural: str):  # noqa: ANN202
    return cluster.runtime.store.resource_type(group, plural)


def deploy_app(cluster: EmbeddedCluster, ns: str, labels: dict[str, str]) -> None:
    store = cluster.runtime.store
    store.create(_rt(cluster, "", "namespaces"), {"metadata": {"name": ns, "labels": labels}})
    store.create(_rt(cluster, "apps", "deployments"), {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [
                     {"name": "web", "image": "docker.io/mccutchen/go-httpbin:v2.15.0"}]}}}},
        ns)


def relabel(cluster: EmbeddedCluster, ns: str, labels: dict[str, str | None]) -> None:
    def fill(cur: dict) -> None:
        meta = cur["metadata"].setdefault("labels", {})
        for key, value in labels.items():
            if value is None:
                meta.pop(key, None)
            else:
                meta[key] = value
    cluster.runtime.store.mutate(_rt(cluster, "", "namespaces"), None, ns, fill)


def rollout_restart(cluster: EmbeddedCluster, ns: str, name: str) -> None:
    """What ``kubectl rollout restart`` writes: a new ``restartedAt`` template annotation."""
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    def fill(cur: dict) -> None:
        tmeta = cur["spec"]["template"].setdefault("metadata", {})
        tmeta.setdefault("annotations", {})["kubectl.kubernetes.io/restartedAt"] = stamp
    cluster.runtime.store.mutate(_rt(cluster, "apps", "deployments"), ns, name, fill)


def proxy_versions(cluster: EmbeddedCluster, ns: str) -> list[str]:
    """The ``istio-proxy`` image tags of the running pods in ``ns``."""
    pods = [p for p in cluster.runtime.store.by_kind("", "pods", ns)
            if (p.get("status") or {}).get("phase") == "Running"
            and not p["metadata"].get("deletionTimestamp")]
    return sorted(ctr["image"].rsplit(":", 1)[1] for p in pods
                  for ctr in p["spec"]["containers"] if ctr["name"] == "istio-proxy")


def settled(cluster: EmbeddedCluster, ns: str, want: list[str]) -> None:
    def check() -> None:
        assert proxy_versions(cluster, ns) == want
    eventually(check, timeout=SETTLE, interval=0.1,
               description=f"the proxies of {ns} to run {want}")


def ps_rows(cluster: EmbeddedCluster, version: str) -> dict[str, tuple[str, str]]:
    """proxy-status: NAME -> (ISTIOD, VERSION)."""
    lines = istioctl(cluster, version, "proxy-status").stdout.splitlines()
    assert lines[0].split() == ["NAME", "CLUSTER", "CDS", "LDS", "EDS", "RDS", "ECDS",
                                "ISTIOD", "VERSION"]
    return {cols[0]: (cols[-2], cols[-1]) for cols in (line.split() for line in lines[1:])}


def test_in_place_upgrade_moves_the_control_plane_and_proxies_follow_their_restart(
        cluster: EmbeddedCluster) -> None:
    istioctl(cluster, OLD, "install", "-y", "--set", "profile=default")
    deploy_app(cluster, "app", {"istio-injection": "enabled"})
    settled(cluster, "app", [OLD])
    assert istioctl(cluster, NEW, "version").stdout == (
        f"client version: {NEW}\ncontrol plane version: {OLD}\n"
        f"data plane version: {OLD} (2 proxies)\n")

    res = istioctl(cluster, NEW, "upgrade", "-y")
    assert f"WARNING: Istio is being upgraded from {OLD} to {NEW}." in res.stderr
    assert "use revisions to upgrade alongside" in res.stderr
    # istiod and the gateway rolled (their Deployments changed); the app's proxy did not
    assert istioctl(cluster, NEW, "version").stdout == (
        f"client version: {NEW}\ncontrol plane version: {NEW}\n"
        f"data plane version: {OLD} (1 proxies), {NEW} (1 proxies)\n")
    rows = ps_rows(cluster, NEW)
    app = next(name for name in rows if name.endswith(".app"))
    assert rows[app][1] == OLD and rows[app][0].startswith("istiod-")

    rollout_restart(cluster, "app", "web")
    settled(cluster, "app", [NEW])
    assert istioctl(cluster, NEW, "version").stdout.endswith(
        f"data plane version: {NEW} (2 proxies)\n")


def test_canary_upgrade_runs_two_istiods_and_namespaces_move_by_label_or_tag(
        cluster: EmbeddedCluster) -> None:
    istioctl(cluster, OLD, "install", "-y", "--set", "profile=default")
    deploy_app(cluster, "app", {"istio-injection": "enabled"})
    deploy_app(cluster, "tagged", {"istio-injection": "enabled"})
    settled(cluster, "app", [OLD])
    settled(cluster, "tagged", [OLD])
    rev = release(NEW).revision_name

    res = istioctl(cluster, NEW, "install", "-y", "--set", f"revision={rev}")
    assert "Made this installation the default" not in res.stdout
    version = istioctl(cluster, NEW, "version").stdout.splitlines()
    assert version[0] == f"client version: {NEW}"
    assert sorted(version[1:3]) == [f"pilot version: {OLD}", f"pilot version: {NEW}"]
    rows = ps_rows(cluster, NEW)
    app = next(name for name in rows if name.endswith(".app"))
    assert rows[app] == (rows[app][0], OLD) and not rows[app][0].startswith(f"istiod-{rev}")
    gateway = next(name for name in rows if name.startswith("istio-ingressgateway-"))
    assert rows[gateway][0].startswith(f"istiod-{rev}-") and rows[gateway][1] == NEW

    # a namespace relabelled to the new revision: its pods change on restart, not before
    relabel(cluster, "app", {"istio-injection": None, "istio.io/rev": rev})
    assert proxy_versions(cluster, "app") == [OLD]
    rollout_restart(cluster, "app", "web")
    settled(cluster, "app", [NEW])
    rows = ps_rows(cluster, NEW)
    app = next(name for name in rows if name.endswith(".app"))
    assert rows[app][0].startswith(f"istiod-{rev}-") and rows[app][1] == NEW

    # istio-injection=enabled follows the default tag, once it points at the new revision
    assert "--overwrite is false" in istioctl(
        cluster, NEW, "tag", "set", "default", "--revision", rev, ok=False).stderr
    istioctl(cluster, NEW, "tag", "set", "default", "--revision", rev, "--overwrite")
    assert istioctl(cluster, NEW, "tag", "list").stdout.splitlines() == [
        "TAG     REVISION NAMESPACES", f"default {rev}   ", "        default  "]
    rollout_restart(cluster, "tagged", "web")
    settled(cluster, "tagged", [NEW])

    # the old control plane goes last; the CRDs, the moved tag and the new revision stay
    res = istioctl(cluster, NEW, "uninstall", "--revision", "default", "-y")
    assert "proxies pointing" not in res.stdout and "✔ Uninstall complete" in res.stderr
    store = cluster.runtime.store
    deployments = {d["metadata"]["name"] for d in store.by_kind("apps", "deployments",
                                                                "istio-system")}
    assert deployments == {f"istiod-{rev}", "istio-ingressgateway"}
    assert store.try_get(_rt(cluster, "admissionregistration.k8s.io",
                             "mutatingwebhookconfigurations"), None, "istio-revision-tag-default")
    validator = store.try_get(_rt(cluster, "admissionregistration.k8s.io",
                                  "validatingwebhookconfigurations"), None,
                              "istiod-default-validator")
    assert validator["webhooks"][0]["clientConfig"]["service"]["name"] == f"istiod-{rev}"
    assert len([c for c in store.by_kind("apiextensions.k8s.io", "customresourcedefinitions")
                if c["metadata"]["name"].endswith(".istio.io")]) == 14
    assert istioctl(cluster, NEW, "version").stdout == (
        f"client version: {NEW}\ncontrol plane version: {NEW}\n"
        f"data plane version: {NEW} (3 proxies)\n")
    # istio-injection=enabled still injects, through the moved default tag
    deploy_app(cluster, "later", {"istio-injection": "enabled"})
    settled(cluster, "later", [NEW])


def test_tag_and_injection_mistakes_say_what_is_wrong(cluster: EmbeddedCluster) -> None:
    istioctl(cluster, OLD, "install", "-y", "--set", "profile=minimal")
    res = istioctl(cluster, OLD, "tag", "set", "prod", "--revision", "nosuch", ok=False)
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert 'cannot find MutatingWebhookConfiguration with revision "nosuch"' in res.stderr
    res = istioctl(cluster, OLD, "tag", "remove", "prod", ok=False)
    assert 'cannot remove tag "prod"' in res.stderr
    res = istioctl(cluster, OLD, "uninstall", "--revision", "nosuch", "-y")
    assert "No resources will be pruned" in res.stdout
    # a namespace naming a revision nobody installed gets no sidecar (no webhook matches)
    deploy_app(cluster, "stray", {"istio.io/rev": "canary"})

    def running() -> None:
        pods = [p for p in cluster.runtime.store.by_kind("", "pods", "stray")
                if (p.get("status") or {}).get("phase") == "Running"]
        assert pods and not proxy_versions(cluster, "stray")
    eventually(running, timeout=SETTLE, interval=0.1, description="the stray pod to run")


# ------------------------------------------------------------------ rollouts follow the strategy
SLOW_READY = Realism(seed=15, push_delay=(0.0, 0.0), ready_delay=(0.6, 0.6), write_429=0.0,
                     write_500=0.0)


@pytest.fixture
def slow_ready(tmp_path: Path) -> Iterator[EmbeddedCluster]:
    """Pods turn Ready 0.6 s after they start (the realism profile's readiness delay only)."""
    with EmbeddedCluster(tmp_path / "slow", seed=15, realism=SLOW_READY) as started:
        yield started


def _ready_pods(cluster: EmbeddedCluster, ns: str) -> int:
    return len([p for p in cluster.runtime.store.by_kind("", "pods", ns)
                if not p["metadata"].get("deletionTimestamp")
                and any(cnd.get("type") == "Ready" and cnd.get("status") == "True"
                        for cnd in (p.get("status") or {}).get("conditions") or [])])


def _roll_and_watch(cluster: EmbeddedCluster, strategy: dict) -> tuple[int, list[str]]:
    """Roll a 1-replica Deployment with ``strategy``; the fewest Ready pods seen meanwhile,
    and the final pods' template hashes."""
    store = cluster.runtime.store
    store.create(_rt(cluster, "", "namespaces"), {"metadata": {"name": "roll"}})
    store.create(_rt(cluster, "apps", "deployments"), {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"replicas": 1, "strategy": strategy,
                 "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [
                     {"name": "web", "image": "docker.io/mccutchen/go-httpbin:v2.15.0"}]}}}},
        "roll")

    def one_ready() -> None:
        assert _ready_pods(cluster, "roll") == 1
    eventually(one_ready, timeout=SETTLE, interval=0.05, description="the first pod Ready")
    first = {p["metadata"]["labels"]["pod-template-hash"]
             for p in store.by_kind("", "pods", "roll")}
    rollout_restart(cluster, "roll", "web")
    fewest = 1

    def rolled() -> list[str]:
        nonlocal fewest
        fewest = min(fewest, _ready_pods(cluster, "roll"))
        deploy = store.try_get(_rt(cluster, "apps", "deployments"), "roll", "web") or {}
        status = deploy.get("status") or {}
        assert status.get("updatedReplicas") == 1 == status.get("replicas") == \
            status.get("readyReplicas"), status
        assert status.get("observedGeneration") == deploy["metadata"]["generation"]
        hashes = sorted(p["metadata"]["labels"]["pod-template-hash"]
                        for p in store.by_kind("", "pods", "roll")
                        if not p["metadata"].get("deletionTimestamp"))
        assert not set(hashes) & first, hashes
        return hashes
    hashes = eventually(rolled, timeout=SETTLE, interval=0.02, description="the rollout")
    return fewest, hashes


def test_a_surge_rollout_keeps_a_ready_pod_until_the_new_one_is_ready(
        slow_ready: EmbeddedCluster) -> None:
    fewest, hashes = _roll_and_watch(slow_ready, {
        "type": "RollingUpdate", "rollingUpdate": {"maxSurge": "100%", "maxUnavailable": "25%"}})
    assert fewest == 1 and len(hashes) == 1


@pytest.mark.parametrize("strategy", [
    {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}},
    {"type": "Recreate"},
])
def test_a_rollout_that_removes_the_old_pod_first_leaves_nothing_ready(
        slow_ready: EmbeddedCluster, strategy: dict) -> None:
    fewest, hashes = _roll_and_watch(slow_ready, strategy)
    assert fewest == 0 and len(hashes) == 1
