"""Run by test_shared_addons (not collected otherwise): the worker that finishes last.

It takes the addons, lets the other worker end, and checks that the addons survived the
other worker's teardown (the lock kept them) and carry the run id both workers share.
"""

from __future__ import annotations

import os
from pathlib import Path

from pytest_istiolab.constants import LABEL_RUN
from pytest_istiolab.waiting import poll_until

SHARED = Path(os.environ.get("ISTIOLAB_SHARED_ADDONS_DIR", "."))
WAIT = 60.0


def test_late_still_has_the_addons_after_the_other_worker_ended(addons, kube, istio_settings  # type: ignore[no-untyped-def]
                                                                 ) -> None:
    (SHARED / "late-has-addons").write_text(istio_settings.run_id)
    assert poll_until(lambda: (SHARED / "early-done").exists(), timeout=WAIT, interval=0.05), \
        "the other worker never finished"
    assert (SHARED / "early-done").read_text() == istio_settings.run_id, "run ids differ"
    prometheus = kube.get("apps/v1", "Deployment", "prometheus", "istio-system")
    assert prometheus is not None, "the other worker deleted the addons this one still uses"
    assert prometheus["metadata"]["labels"][LABEL_RUN] == istio_settings.run_id
