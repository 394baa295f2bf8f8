"""Weakens the suite on purpose, to show that the realism profile bites (used by
``scripts/realism-runs --bite``). ``ISTIOLAB_BITE``:

* ``consecutive``: the realism profile's waits count one success as enough (as the default
  embedded timeouts do), instead of 3 in a row;
* ``transport``: the waits retry only assertion errors, not refused/reset connections or
  timeouts.

Load it with ``-p realism_bite_plugin`` and ``scripts`` on ``PYTHONPATH``. Never in a real run.
"""

from __future__ import annotations

import dataclasses
import os

from pytest_istiolab import timeouts, waiting

BITE = os.environ.get("ISTIOLAB_BITE", "")

if BITE == "consecutive":
    timeouts.EMBEDDED_REALISM = dataclasses.replace(timeouts.EMBEDDED_REALISM, consecutive=1)
elif BITE == "transport":
    for fn in (waiting.eventually, getattr(waiting, "consistently", None)):
        defaults = getattr(fn, "__kwdefaults__", None) or {}
        if "retry_on" in defaults:
            defaults["retry_on"] = (AssertionError,)
elif BITE:
    raise SystemExit(f"ISTIOLAB_BITE={BITE!r}: expected 'consecutive' or 'transport'")


def pytest_report_header() -> str:
    return f"realism bite: {BITE or 'none'} (the suite weakened on purpose)"
