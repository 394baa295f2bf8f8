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
