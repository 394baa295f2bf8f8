"""The nightly's upgrade job (issue 15) uses options that exist and keeps what it must upload.

scripts/check-workflows.sh validates the workflow files against GitHub's schema; this checks
what the schema cannot: that every ``--istio-*`` flag the job passes is one of the plugin's
options and that the job uploads both reports, the comparison and the continuity report.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from pytest_istiolab import constants as c

NIGHTLY = Path(__file__).resolve().parents[2] / ".github" / "workflows" / "nightly.yml"


def _upgrade_job() -> dict:
    return yaml.safe_load(NIGHTLY.read_text())["jobs"]["upgrade"]


def test_the_upgrade_job_passes_only_real_options() -> None:
    scripts = "\n".join(step.get("run", "") for step in _upgrade_job()["steps"])
    used = set(re.findall(r"(--istio-[a-z-]+)", scripts))
    known = {opt.flag for opt in c.OPTIONS}
    assert used and used <= known, sorted(used - known)
    assert {"--istio-conformance-report", "--istio-compare", "--istio-istioctl"} <= used


def test_the_upgrade_job_runs_the_flow_in_order_and_uploads_its_evidence() -> None:
    steps = [step.get("name", "") for step in _upgrade_job()["steps"]]
    order = ["Labs before (installs the newest 1.25)", "Start the probe",
             "Canary upgrade to the newest 1.26", "Restart workloads onto the new revision",
             "Stop the probe", "Labs after, compared with before"]
    assert [s for s in steps if s in order] == order
    upload = next(s for s in _upgrade_job()["steps"] if s.get("name") == "Upload reports")
    paths = upload["with"]["path"].split()
    assert {"before.json", "after.json", "comparison.txt", "continuity.json"} <= set(paths)
    assert upload["if"] == "always()"


def _jobs() -> dict:
    return yaml.safe_load(NIGHTLY.read_text())["jobs"]


def _newest_patches() -> dict[str, str]:
    """minor -> the newest patch the embedded cluster models (the releases last checked)."""
    from pytest_istiolab.embedded.install.releases import MODELLED_VERSIONS
    newest: dict[str, str] = {}
    for version in MODELLED_VERSIONS:
        minor = version.rsplit(".", 1)[0]
        if minor not in newest or _key(version) > _key(newest[minor]):
            newest[minor] = version
    return newest


def _key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def test_the_matrix_is_the_manuals_version_and_the_newest_patch_of_each_line() -> None:
    matrix = _jobs()["labs"]["strategy"]["matrix"]
    assert set(matrix["istio"]) == {"1.26.0", *_newest_patches().values()}
    env = _jobs()["upgrade"]["env"]
    newest = _newest_patches()
    assert (env["OLD"], env["NEW"]) == (newest["1.25"], newest["1.26"])


def test_kind_node_images_are_pinned_by_digest_and_one_job_runs_kubernetes_1_33() -> None:
    text = NIGHTLY.read_text()
    images = re.findall(r"kindest/node:v[0-9.]+[^\s\"\]]*", text)
    assert images, "no kind node image named"
    for image in images:
        assert re.fullmatch(r"kindest/node:v\d+\.\d+\.\d+@sha256:[0-9a-f]{64}", image), image
    include = _jobs()["labs"]["strategy"]["matrix"]["include"]
    assert any(entry["istio"].startswith("1.27.") and
               _key(re.search(r":v([0-9.]+)@", entry["node"])[1])[:2] >= (1, 33)
               for entry in include), include


def test_the_egress_labs_use_an_external_host_outside_the_cluster_and_the_registry() -> None:
    """Labs 3.4/3.6 against a host outside the mesh registry (not httpbin.org, not a Service):
    a docker container on kind's network, named for the pods by a CoreDNS hosts entry."""
    job = _jobs()["labs"]
    host = job["env"]["EXTERNAL_HOST"]
    assert host != c.DEFAULT_EXTERNAL_HOST and not host.endswith(".svc.cluster.local")
    steps = {step.get("name", ""): step.get("run", "") for step in job["steps"]}
    names = list(steps)
    setup = next(n for n in names if n.startswith("External httpbin"))
    assert names.index(setup) < names.index("Lab suite")
    script = steps[setup]
    assert "docker run" in script and "--network kind" in script
    assert "$proxy_add_x_forwarded_for" in script  # two origins through the egress gateway
    assert "hosts {" in script and "$EXTERNAL_HOST" in script and "coredns" in script
    assert "kind: Service" not in script and "kubectl expose" not in script
    assert '--istio-external-host "$EXTERNAL_HOST"' in steps["Lab suite"]
