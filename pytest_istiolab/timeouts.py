"""Named timeouts: every wait in pytest-istiolab takes its limit from one :class:`Timeouts`.

The defaults are generous, for real clusters (kind, an existing cluster): images are pulled,
sidecars injected, Envoy configuration distributed by istiod over the network.

The embedded cluster answers in milliseconds and applies configuration synchronously, so its
timeouts are short — a wait that would pass there passes almost at once, and a broken behaviour
fails in seconds instead of minutes. Its ``consecutive`` is 1: configuration is distributed
synchronously in the embedded mesh, so once a check passes it keeps passing and repeating it
proves nothing (stability is checked explicitly with ``waiting.consistently``). Real clusters
keep 3 consecutive successes, as Gateway API conformance does for eventual consistency, and so
does the embedded cluster under its realism profile (config pushed to each proxy after a delay).
"""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Timeouts:
    """Limits in seconds (``consecutive`` is a count) for each kind of wait."""

    api_request: float = 10.0   # one Kubernetes API request (connect + read)
    ready: float = 120.0        # pods / deployments becoming ready
    delete: float = 60.0        # an object or namespace disappearing
    exec: float = 60.0          # one command run in a pod
    eventually: float = 30.0    # a traffic check becoming true (config propagation)
    poll_interval: float = 0.5  # pause between attempts of a poll
    consecutive: int = 3        # successes in a row for an eventual check to count
    istioctl: float = 600.0     # one istioctl invocation (install can pull images)
    http: float = 30.0          # one HTTP request to a gateway (fault delays take seconds)
    scrape: float = 90.0        # a sample in Prometheus/Jaeger (15 s scrape + 2 for a rate)

    @classmethod
    def for_provider(cls, name: str, realism: bool = False) -> Timeouts:
        """The timeouts for a cluster provider ("embedded", "kind", "existing"); ``realism``:
        the embedded cluster's realism profile (real-cluster ``consecutive``)."""
        if name == "embedded":
            return EMBEDDED_REALISM if realism else EMBEDDED
        return cls()

    @classmethod
    def for_handle(cls, handle: object) -> Timeouts:
        """The timeouts for a started cluster (a ``ClusterHandle``)."""
        extra = getattr(handle, "extra", None) or {}
        return cls.for_provider(str(getattr(handle, "provider", "")),
                                realism=extra.get("realism") == "on")

    def scaled(self, factor: float) -> Timeouts:
        """Every duration multiplied by ``factor`` (counts unchanged): for a slow CI machine."""
        return replace(
            self,
            api_request=self.api_request * factor, ready=self.ready * factor,
            delete=self.delete * factor, exec=self.exec * factor,
            eventually=self.eventually * factor, poll_interval=self.poll_interval * factor,
            istioctl=self.istioctl * factor, http=self.http * factor,
            scrape=self.scrape * factor,
        )


EMBEDDED = Timeouts(
    api_request=10.0, ready=30.0, delete=15.0, exec=30.0, eventually=10.0,
    poll_interval=0.05, consecutive=1, istioctl=120.0, http=10.0, scrape=10.0,
)
# The realism profile pushes config to each proxy after up to 2 s and makes pods Ready after up
# to 1.5 s: real-cluster consecutive successes, and room for the delays.
EMBEDDED_REALISM = replace(EMBEDDED, eventually=20.0, ready=45.0, poll_interval=0.1,
                           consecutive=3)
