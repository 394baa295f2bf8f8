"""The embedded istioctl's commands and output, in-process against a Store (no API server).

Supports checks L1-C02 (x precheck), L1-C03 and D-26 (install prompt and progress lines),
L1-C05 (version, proxy count), L3.4-C03 and D-07 (pruning on reinstall with the default
profile), L7-C05 (kube-inject), L9.1-C03 (manifest apply with values.meshConfig).
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from controllers_testkit import Cluster, deployment, running_cluster

from pytest_istiolab.embedded.controllers import bootstrap
from pytest_istiolab.embedded.istioctl import StoreBackend, main
from pytest_istiolab.embedded.runtime import Runtime
from pytest_istiolab.embedded.store import Store

UNREACHABLE_LIMIT = 8.0  # seconds an unreachable API server may take to be reported


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    with running_cluster() as c:
        c.settle()
        yield c


def run(cluster: Cluster | None, *argv: str, stdin: str = "") -> Result:
    out, err = io.StringIO(), io.StringIO()
    backend = StoreBackend(cluster.store) if cluster is not None else None
    code = main(list(argv), io.StringIO(stdin), out, err, backend)
    if cluster is not None:
        cluster.settle()
    return Result(code, out.getvalue(), err.getvalue())


INSTALLED_DEMO = ["✔ Istio core installed ⛵️", "✔ Istiod installed 🧠",
                  "✔ Egress gateways installed 🛫", "✔ Ingress gateways installed 🛬",
                  "✔ Installation complete"]


def _check_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith(("✔", "✘", "-"))]


def test_manifest_apply_prompts_then_installs_demo(cluster: Cluster) -> None:
    res = run(cluster, "manifest", "apply", "--set", "profile=demo", stdin="y\n")
    assert res.code == 0, res.err
    assert res.out.startswith('This will install the Istio 1.26.0 profile "demo" into the '
                              "cluster. Proceed? (y/N) ")
    assert "/______||__________\\" in res.err
    assert _check_lines(res.err) == INSTALLED_DEMO
    assert "Made this installation the default for cluster-wide operations." in res.out
    pods = {p["metadata"]["name"].rsplit("-", 2)[0]: p["status"]["phase"]
            for p in cluster.pods("istio-system")}
    assert pods == dict.fromkeys(["istiod", "istio-ingressgateway", "istio-egressgateway"],
                                 "Running")
    crds = [c["metadata"]["name"] for c in cluster.items("apiextensions.k8s.io",
                                                         "customresourcedefinitions")]
    assert len([c for c in crds if c.endswith("istio.io")]) == 14


def test_answering_no_cancels(cluster: Cluster) -> None:
    res = run(cluster, "install", "--set", "profile=demo", stdin="n\n")
    assert res.code == 1 and "Cancelled." in res.err
    assert cluster.pods("istio-system") == []


def test_reinstall_with_default_prunes_the_egress_gateway(cluster: Cluster) -> None:
    assert run(cluster, "install", "--set", "profile=demo", "-y").code == 0
    res = run(cluster, "install", "--set", "meshConfig.outboundTrafficPolicy.mode=REGISTRY_ONLY",
              "-y")
    assert res.code == 0, res.err
    assert "This will install" not in res.out
    assert _check_lines(res.err) == ["✔ Istio core installed ⛵️", "✔ Istiod installed 🧠",
                                     "✔ Ingress gateways installed 🛬",
                                     "- Pruning removed resources", "✔ Installation complete"]
    removed = [line for line in res.out.splitlines() if "Removed" in line]
    assert removed == [
        "  Removed apps/v1, Kind=Deployment/istio-egressgateway.istio-system.",
        "  Removed /v1, Kind=Service/istio-egressgateway.istio-system.",
        "  Removed /v1, Kind=ServiceAccount/istio-egressgateway-service-account.istio-system.",
        "  Removed rbac.authorization.k8s.io/v1, Kind=RoleBinding/istio-egressgateway-sds."
        "istio-system.",
        "  Removed rbac.authorization.k8s.io/v1, Kind=Role/istio-egressgateway-sds.istio-system.",
        "  Removed policy/v1, Kind=PodDisruptionBudget/istio-egressgateway.istio-system."]
    mesh = yaml.safe_load(cluster.get("", "configmaps", "istio-system", "istio")["data"]["mesh"])
    assert mesh["outboundTrafficPolicy"]["mode"] == "REGISTRY_ONLY"
    assert "accessLogFile" not in mesh
    assert not [p for p in cluster.pods("istio-system", "istio-egressgateway")]
    back = run(cluster, "install", "--set", "profile=demo", "-y")
    assert cluster.pods("istio-system", "istio-egressgateway")
    # demo disables autoscaling: only the default profile's HPAs go
    assert [line.split("/")[-1] for line in back.out.splitlines() if "Removed" in line] == [
        "istio-ingressgateway.istio-system.", "istiod.istio-system."]


def test_version_counts_proxies(cluster: Cluster) -> None:
    assert run(cluster, "install", "--set", "profile=demo", "-y").code == 0
    res = run(cluster, "version")
    assert res.out == ("client version: 1.26.0\ncontrol plane version: 1.26.0\n"
                       "data plane version: 1.26.0 (2 proxies)\n")
    cluster.namespace("app", {"istio-injection": "enabled"})
    cluster.create("apps", "deployments", deployment(
        "web", "web", "docker.io/istio/examples-bookinfo-details-v1:1.20.3", 2), "app")
    cluster.settle()
    assert "(4 proxies)" in run(cluster, "version").out
    assert run(None, "version", "--remote=false").out == "client version: 1.26.0\n"


def test_version_without_istio(cluster: Cluster) -> None:
    res = run(cluster, "version")
    assert res.code == 0 and res.out == "client version: 1.26.0\n"
    assert 'no ready Istio pods in "istio-system"' in res.err


def test_precheck_and_profile_list(cluster: Cluster) -> None:
    res = run(cluster, "x", "precheck")
    assert res.code == 0
    assert res.out.splitlines()[0] == ("✔ No issues found when checking the cluster. Istio is "
                                       "safe to install or upgrade!")
    profiles = run(None, "profile", "list").out.split()
    assert profiles[:3] == ["Istio", "configuration", "profiles:"]
    assert {"default", "demo", "minimal", "empty", "ambient"} <= set(profiles)


def test_uninstall_purge_removes_everything_it_created(cluster: Cluster) -> None:
    assert run(cluster, "install", "--set", "profile=demo", "-y").code == 0
    res = run(cluster, "uninstall", "--purge", "-y")
    assert res.code == 0
    assert res.out.startswith("All Istio resources will be pruned from the cluster\n\n")
    assert "  Removed apps/v1, Kind=Deployment/istiod.istio-system." in res.out
    assert "  Removed apiextensions.k8s.io/v1, Kind=CustomResourceDefinition/" \
        "virtualservices.networking.istio.io.." in res.out
    assert res.err.rstrip().endswith("✔ Uninstall complete")
    assert cluster.pods("istio-system") == []
    assert not [c for c in cluster.items("apiextensions.k8s.io", "customresourcedefinitions")
                if c["metadata"]["name"].endswith("istio.io")]
    assert not cluster.items("admissionregistration.k8s.io", "mutatingwebhookconfigurations")
    assert run(cluster, "uninstall").code == 1


def test_kube_inject_writes_injected_yaml(cluster: Cluster, tmp_path: Path) -> None:
    assert run(cluster, "install", "--set", "profile=demo", "-y").code == 0
    source = tmp_path / "sleep.yaml"
    source.write_text(yaml.safe_dump_all([
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "sleep"}},
        deployment("sleep", "sleep", "curlimages/curl", ports=[])]))
    res = run(cluster, "kube-inject", "-f", str(source))
    assert res.code == 0, res.err
    docs = list(yaml.safe_load_all(res.out))
    assert docs[0]["kind"] == "ServiceAccount"
    names = [c["name"] for c in docs[1]["spec"]["template"]["spec"]["containers"]]
    assert names == ["sleep", "istio-proxy"]


def test_kube_inject_without_istio_fails_clearly(cluster: Cluster, tmp_path: Path) -> None:
    source = tmp_path / "x.yaml"
    source.write_text(yaml.safe_dump(deployment("a", "a", "curlimages/curl")))
    res = run(cluster, "kube-inject", "-f", str(source))
    assert res.code == 1 and "istio-sidecar-injector" in res.err


def _istio_obj(kind: str, name: str, spec: dict) -> dict:
    return {"apiVersion": "networking.istio.io/v1", "kind": kind,
            "metadata": {"name": name, "namespace": "default"}, "spec": spec}


def test_analyze_reports_missing_gateway_and_subset(cluster: Cluster) -> None:
    assert run(cluster, "install", "--set", "profile=demo", "-y").code == 0
    ok = run(cluster, "analyze")
    assert ok.code == 0
    assert ok.out == "✔ No validation issues found when analyzing namespace: default.\n"
    backend = StoreBackend(cluster.store)
    backend.apply(_istio_obj("DestinationRule", "reviews", {
        "host": "reviews", "subsets": [{"name": "v1", "labels": {"version": "v1"}}]}))
    backend.apply(_istio_obj("VirtualService", "reviews", {
        "hosts": ["reviews"], "gateways": ["bookinfo-gateway"],
        "http": [{"route": [{"destination": {"host": "reviews", "subset": "v2"}}]}]}))
    res = run(cluster, "analyze", "-n", "default")
    assert res.code == 79
    assert res.out.splitlines() == [
        'Error [IST0101] (VirtualService default/reviews) Referenced gateway not found: '
        '"bookinfo-gateway"',
        'Error [IST0101] (VirtualService default/reviews) Referenced host+subset in '
        'destinationrule not found: "reviews+v2"']
    assert "Analyzers found issues when analyzing namespace: default." in res.err


@pytest.mark.parametrize(("argv", "text"), [
    (["bug-report"], '"bug-report"; it models: install, upgrade, manifest apply, uninstall'),
    (["tag", "generate", "prod"], '"tag generate"'),
    (["x", "wait"], '"x wait"'),
    (["dashboard", "kiali"], '"dashboard"'),
])
def test_unmodelled_commands_say_so(argv: list[str], text: str) -> None:
    res = run(None, *argv)
    assert res.code == 1 and text in res.err and "Traceback" not in res.err
    assert res.err.startswith("the embedded cluster's istioctl does not model")


def test_proxy_config_is_not_modelled() -> None:
    res = run(None, "proxy-config", "cluster", "productpage-v1-abc")
    assert res.code == 1 and res.err == "proxy-config is not modelled by the embedded cluster\n"


def test_bad_flag_is_a_usage_error_naming_it() -> None:
    res = run(None, "install", "--sett", "profile=demo")
    assert res.code == 1 and "--sett" in res.err and "usage:" in res.err


def test_unmodelled_profile_is_refused(cluster: Cluster) -> None:
    res = run(cluster, "install", "--set", "profile=ambient", "-y")
    assert res.code == 1
    assert res.err.startswith('Error: the embedded cluster does not model the "ambient" profile')


def test_readiness_timeout_names_what_is_not_ready() -> None:
    runtime = Runtime(Store(), 3)
    bootstrap(runtime)  # no controllers: nothing ever becomes ready
    out, err = io.StringIO(), io.StringIO()
    code = main(["install", "--set", "profile=minimal", "-y", "--readiness-timeout", "200ms"],
                None, out, err, StoreBackend(runtime.store))
    assert code == 1
    assert "✔ Istio core installed ⛵️" in err.getvalue()
    assert "✘ Istiod encountered an error: failed to wait for resource: resources not ready " \
        "after 0s" in err.getvalue()
    assert "Deployment/istio-system/istiod (no pods)" in err.getvalue()
    assert err.getvalue().rstrip().endswith("Error: failed to install manifests: errors "
                                            "occurred during operation")


def test_unreachable_api_server_is_one_clear_line(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "x",
        "clusters": [{"name": "x", "cluster": {"server": "http://127.0.0.1:9"}}],
        "users": [{"name": "x", "user": {"token": "t"}}],
        "contexts": [{"name": "x", "context": {"cluster": "x", "user": "x"}}]}))
    started = time.monotonic()
    res = run(None, "--kubeconfig", str(kubeconfig), "x", "precheck")
    assert time.monotonic() - started < UNREACHABLE_LIMIT
    assert res.code == 1
    assert res.err.count("\n") == 1
    assert res.err.startswith("Error: the Kubernetes API server http://127.0.0.1:9 cannot be "
                              "reached")


def test_an_unmodelled_mesh_config_setting_is_named_by_install(cluster: Cluster) -> None:
    """``--set meshConfig.X`` the data plane model does not read is installed (as istioctl
    does) and named; a modelled one (outboundTrafficPolicy) is not."""
    res = run(cluster, "install", "--set", "profile=demo", "--set",
              "meshConfig.defaultConfig.proxyHeaders.server.disabled=true", "--set",
              "meshConfig.outboundTrafficPolicy.mode=REGISTRY_ONLY", "-y")
    assert res.code == 0, res.err
    notices = [line for line in res.err.splitlines() if line.startswith("! ")]
    assert notices == ["! meshConfig.defaultConfig.proxyHeaders.server.disabled is ignored by "
                       "the embedded cluster: not modelled, the proxies run as if it were unset"]
    mesh = yaml.safe_load(cluster.get("", "configmaps", "istio-system", "istio")["data"]["mesh"])
    assert mesh["defaultConfig"]["proxyHeaders"] == {"server": {"disabled": True}}
