"""Failure diagnostics: the terminal section and the pytest-html block of a failed lab test,
their size bound, and the istioctl parts used off the embedded cluster.

(The istioctl parts run for real, through ``--istio-cluster=existing``, in
``tests/realcluster/test_cleanup.py``.)
"""

from __future__ import annotations

import html
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from pytest_istiolab.istioctl import Istioctl
from pytest_istiolab.report import diagnostics

pytestmark = pytest.mark.usefixtures("_no_istiolab_env")

LAB_MODULE = """
import pytest

pytestmark = pytest.mark.lab(3)

def test_route_is_taken(apply, sleep, lab_namespace):
    apply("samples/bookinfo/networking/virtual-service-all-v1.yaml")
    assert False, "the route was not taken"

def test_with_a_huge_manifest(apply, lab_namespace):
    apply({huge!r})
    assert False, "huge"
"""


def _section(stdout: str, test: str) -> str:
    """The diagnostics section printed under the failure of ``test``."""
    failure = stdout.split(f"_ {test} _", 1)[1]
    section = failure.split(" istiolab diagnostics ", 1)[1].split("\n", 1)[1]
    return re.split(r"\n(?:_{3,} |={3,} )", section, maxsplit=1)[0]


def test_a_failed_lab_test_reports_manifests_commands_pods_and_events(pytester):
    huge = pytester.path / "huge.yaml"
    huge.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "ConfigMap",
                                    "metadata": {"name": "huge"},
                                    "data": {f"k{i}": "x" * 200 for i in range(400)}}))
    # named like a lab module: its namespace is lab03-diagnostics-<run>
    pytester.makepyfile(test_lab03_diagnostics=LAB_MODULE.format(huge=str(huge)))
    report = pytester.path / "report.html"
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", f"--html={report}",
                                           "--self-contained-html")
    result.assert_outcomes(failed=2)
    out = result.stdout.str()

    section = _section(out, "test_route_is_taken")
    assert "--- applied samples/bookinfo/networking/virtual-service-all-v1.yaml" in section
    assert "kind: VirtualService" in section
    assert re.search(r"--- commands run by the test \(\d+\)\n\$ ", section)
    assert "$ apply namespace/lab03-" in section and "$ apply deployment.apps/sleep" in section
    assert "$ apply virtualservice.networking.istio.io/productpage -n lab03-" in section
    assert re.search(r"--- pods and logs in lab03-[\w-]+\npod sleep-\S+: Running, 2/2 ready",
                     section)
    assert "Scheduled Pod/sleep-" in section.split("\n--- events in lab03-", 1)[1]
    assert "istioctl proxy-config" not in section  # the embedded istioctl does not model it

    bounded = _section(out, "test_with_a_huge_manifest")
    assert len(bounded) <= diagnostics.DIAGNOSTICS_LIMIT
    assert "characters dropped" in bounded
    # the namespace's pods, logs and events once per module: the second failure points back
    assert "--- events in lab03-" not in bounded
    assert re.search(r"--- pods, logs and events in lab03-[\w-]+\nshown once per module: see the "
                     r"diagnostics of test_lab03_diagnostics.py::test_route_is_taken", bounded)

    page = html.unescape(report.read_text())  # pytest-html keeps its data as escaped JSON
    blocks = re.findall(r'<div class=\\"istiolab-diagnostics\\">.*?</div>', page)
    assert len(blocks) == 2
    assert "<summary>applied samples/bookinfo/networking/virtual-service-all-v1.yaml</summary>" \
        in blocks[0]
    assert "<summary>events in lab03-" in blocks[0]


def test_parts_are_clipped_and_share_the_limit():
    parts = [diagnostics.Part("manifest", "m" * 50_000, "head"),
             diagnostics.Part("short", "ok"),
             diagnostics.Part("log", "\n".join(f"line {i}" for i in range(10_000)))]
    out = diagnostics.bound(parts, limit=10_000, part_limit=6_000)
    assert len(diagnostics.render_text(out)) <= 10_000
    assert out[0].text.startswith("mmm") and out[0].text.endswith("characters dropped)")
    assert out[1].text == "ok"
    assert out[2].text.startswith("...") and out[2].text.endswith("line 9999")
    assert diagnostics.clip("abc", 0) == "... (3 characters dropped)"


def test_pods_and_logs_keep_the_pod_list_and_the_last_log_lines():
    text = "pod sleep-1: Running, 2/2 ready\n" + "\n".join(f"log {i}" for i in range(5_000))
    cut = diagnostics.clip(text, 1_000, "both")
    assert len(cut) <= 1_000
    assert cut.startswith("pod sleep-1: Running, 2/2 ready") and cut.endswith("log 4999")
    assert "characters dropped)" in cut


def test_the_client_pod_is_a_lab_client_with_a_sidecar():
    def pod(name, app, sidecar=True, phase="Running"):
        containers = [{"name": app}] + ([{"name": "istio-proxy"}] if sidecar else [])
        return {"metadata": {"name": name, "labels": {"app": app}},
                "spec": {"containers": containers}, "status": {"phase": phase}}

    assert diagnostics.client_pod([pod("r", "ratings"), pod("s", "sleep")]) == "s"
    assert diagnostics.client_pod([pod("s", "sleep", sidecar=False), pod("p", "productpage"),
                                   pod("r", "ratings")]) == "p"
    assert diagnostics.client_pod([pod("h", "httpbin")]) == "h"
    assert diagnostics.client_pod([pod("s", "sleep", phase="Pending")]) is None
    native = pod("n", "sleep", sidecar=False)
    native["spec"]["initContainers"] = [{"name": "istio-proxy", "restartPolicy": "Always"}]
    assert diagnostics.client_pod([pod("r", "ratings"), native]) == "n", "1.27 native sidecar"


def test_off_the_embedded_cluster_istioctl_proxy_config_and_analyze_run(tmp_path: Path):
    fake = tmp_path / "istioctl"
    fake.write_text('#!/bin/sh\necho "istioctl $*"\n')
    fake.chmod(0o755)
    sleep_pod = {"metadata": {"name": "sleep-1", "labels": {"app": "sleep"}},
                 "spec": {"containers": [{"name": "sleep"}, {"name": "istio-proxy"}]},
                 "status": {"phase": "Running"}}
    kube = SimpleNamespace(pods=lambda ns, selector=None: [sleep_pod],
                           events=lambda ns: [], logs=lambda *a, **k: "")
    session = SimpleNamespace(kube=kube, istioctl=Istioctl(fake, None, "prod"),
                              handle=SimpleNamespace(provider="existing"),
                              timeouts=SimpleNamespace(api_request=5.0))
    parts = diagnostics.collect(session, [], [], "lab05-x")  # type: ignore[arg-type]
    shown = {p.title: p.text for p in parts}
    assert shown["$ istioctl proxy-config routes sleep-1.lab05-x"].startswith(
        "istioctl --context=prod proxy-config routes sleep-1.lab05-x")
    assert "$ istioctl proxy-config clusters sleep-1.lab05-x" in shown
    assert shown["$ istioctl analyze -n lab05-x"].startswith("istioctl --context=prod analyze")
    session.handle.provider = "embedded"
    assert not [p for p in diagnostics.collect(session, [], [], "lab05-x")  # type: ignore[arg-type]
                if "istioctl" in p.title]
