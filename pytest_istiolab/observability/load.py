"""The manual's load loop (``while true; do curl http://$GATEWAY_URL/productpage; done``), bounded.

Lab 9 runs it before looking at Prometheus, Grafana, Kiali and Jaeger (D-33: a count and a
time bound instead of ``while true`` to ``node3:30193``). A failed request is counted under
status 0 and the loop goes on, as the shell loop would.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger(__name__)


@dataclass
class LoadResult:
    """What the loop saw: status code -> count (0: no response), and how long it took."""

    codes: dict[int, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def sent(self) -> int:
        return sum(self.codes.values())


def drive_load(send: Callable[[], int], requests: int, time_bound: float, *,
               progress_every: int = 0, name: str = "load") -> LoadResult:
    """Call ``send()`` (one request, returning its status) ``requests`` times, or until
    ``time_bound`` seconds have passed; log progress every ``progress_every`` requests."""
    result = LoadResult()
    start = time.monotonic()
    for i in range(requests):
        if time.monotonic() - start > time_bound:
            log.warning("%s: stopped after %d of %d requests (time bound %.0f s)", name, i,
                        requests, time_bound)
            break
        try:
            status = send()
        except Exception as exc:  # noqa: BLE001 - counted and reported, the loop goes on
            log.warning("%s request %d: %s", name, i, exc)
            status = 0
        result.codes[status] = result.codes.get(status, 0) + 1
        if progress_every and (i + 1) % progress_every == 0:
            log.warning("%s: %d/%d requests, codes %s", name, i + 1, requests, result.codes)
    result.seconds = time.monotonic() - start
    return result
