"""The manual's load loop (``while true; do curl http://$GATEWAY_URL/productpage; done``), bounded.

Lab 9 runs it before looking at Prometheus, Grafana, Kiali and Jaeger (D-33: a count and a
time bound instead of ``while true`` to ``node3:30193``). A failed request is counted under
status 0 and the loop goes on, as the shell loop would.

:class:`LoadLoop` is the same loop kept going: :meth:`LoadLoop.burst` is :func:`drive_load`
(the requests a lab counts), and :meth:`LoadLoop.start` keeps a slow loop on a thread ("run
the load script in another window") so rate panels whose window is shorter than the time
since the burst still see traffic, until :meth:`LoadLoop.stop` or its own bounds.
"""

from __future__ import annotations

import logging
import threading
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


@dataclass
class LoadLoop:
    send: Callable[[], int]  # one request; its status code
    pause: float = 0.5  # seconds between background requests
    max_requests: int = 2000
    max_seconds: float = 600.0
    codes: dict[int, int] = field(default_factory=dict)  # of the background loop
    burst_codes: dict[int, int] = field(default_factory=dict)  # of the last burst
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def burst(self, requests: int, time_bound: float, progress_every: int = 0) -> LoadResult:
        result = drive_load(self.send, requests, time_bound, progress_every=progress_every,
                            name="Lab 9.2 load")
        self.burst_codes = dict(result.codes)
        return result

    def _one(self) -> None:
        try:
            status = self.send()
        except Exception as exc:  # noqa: BLE001 - counted, and the loop goes on
            log.warning("background load request: %s", exc)
            status = 0
        self.codes[status] = self.codes.get(status, 0) + 1

    def start(self) -> LoadLoop:
        def loop() -> None:
            end = time.monotonic() + self.max_seconds
            for _ in range(self.max_requests):
                if time.monotonic() > end:
                    return
                self._one()
                if self._stop.wait(self.pause):
                    return

        self._thread = threading.Thread(target=loop, name="lab9-load", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> dict[int, int]:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        return dict(self.codes)
