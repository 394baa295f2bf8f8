"""The lab catalogue's 120 check IDs (``L<lab>.<section>-C<nn>``) with their short titles.

Taken from the team's ``labs/CATALOGUE.md`` (the acceptance checklist of the Istio 1.26 lab
manual), so a run can say which checks it did not run. Companion checks (``-X<nn>``) are not
listed: they are the suite's own and counted apart. ``tests/plugin/test_catalogue.py`` keeps this
table equal to the catalogue where the catalogue is at hand.
"""

from __future__ import annotations

import re

CATALOGUE: dict[str, str] = {
    "L1-C01": "Download",
    "L1-C02": "Pre-check",
    "L1-C03": "Install demo profile",
    "L1-C04": "Install addons",
    "L1-C05": "Versions",
    "L1-C06": "Istio CRDs",
    "L1-C07": "API resources",
    "L1-C08": "Namespaces",
    "L1-C09": "istio-system pods",
    "L1-C10": "istio-system services",
    "L1-C11": "Component overview",
    "L1-C12": "Clone lab scripts",
    "L2-C01": "Label + deploy",
    "L2-C02": "Services and pods",
    "L2-C03": "Sidecar injection details",
    "L2-C04": "In-mesh page fetch",
    "L2-C05": "Default gateway",
    "L2-C06": "Default destination rules",
    "L2-C07": "Ingress URL",
    "L2-C08": "External access",
    "L3.1-C01": "All-v1, anonymous",
    "L3.1-C02": "Jason gets v2",
    "L3.1-C03": "Everyone else still v1",
    "L3.2-C01": "100 % v1",
    "L3.2-C02": "50/50 v1/v3",
    "L3.2-C03": "100 % v3",
    "L3.3-C01": "Existing gateways",
    "L3.3-C02": "Gateway added",
    "L3.3-C03": "VS added",
    "L3.3-C04": "/details/0 through the gateway",
    "L3.3-C05": "/health through the gateway",
    "L3.4-C01": "sleep running",
    "L3.4-C02": "Outbound allowed by default (ALLOW_ANY)",
    "L3.4-C03": "Switch to REGISTRY_ONLY",
    "L3.4-C04": "Outbound blocked",
    "L3.4-C05": "ServiceEntry created",
    "L3.4-C06": "Outbound re-allowed for httpbin.org",
    "L3.5-C01": "httpbin running",
    "L3.5-C02": "Ingress gateway service",
    "L3.5-C03": "Gateway + VS bound",
    "L3.5-C04": "/status/200 via host httpbin.example.com",
    "L3.5-C05": "/delay/2 via host httpbin.example.com",
    "L3.5-C06": "Unpublished path",
    "L3.5-C07": "/headers published for any host",
    "L3.5-C08": "VS hosts changed",
    "L3.6-C01": "Egress gateway present",
    "L3.6-C02": "ServiceEntry",
    "L3.6-C03": "Direct egress works",
    "L3.6-C04": "Sidecar access log shows direct route",
    "L3.6-C05": "Baseline VS/DR",
    "L3.6-C06": "Egress Gateway resource",
    "L3.6-C07": "Egress VS/DR",
    "L3.6-C08": "Egress via gateway works, origin changes",
    "L3.6-C09": "Sidecar log shows egress-gateway route",
    "L4.1-C01": "reviews v2",
    "L4.1-C02": "2 s delay visible",
    "L4.1-C03": "1 s timeout → fast failure",
    "L4.1-C04": "Retry policy applied; page refreshed once",
    "L4.1-C05": "Two ratings attempts in the log",
    "L4.2-C01": "Single request succeeds",
    "L4.2-C02": "Trip the breaker, 2 connections × 20 requests",
    "L4.2-C03": "3 connections × 30 requests",
    "L4.2-C04": "Breaker stats",
    "L5.1-C01": "Baseline routing",
    "L5.1-C02": "Delay hits jason",
    "L5.1-C03": "Delay does not affect others",
    "L5.1-C04": "Abort hits jason",
    "L5.1-C05": "Abort does not affect others",
    "L5.2-C01": "Request served (routing to v1)",
    "L5.2-C02": "Only v1 received it",
    "L5.2-C03": "Mirroring applied; client response unchanged",
    "L5.2-C04": "v2 now receives mirrored copies",
    "L6.1-C01": "HTTPS with the original CA → teapot",
    "L6.1-C02": "Secret rotated; new CA works",
    "L6.1-C03": "Old CA rejected",
    "L6.2-C01": "helloworld over HTTPS",
    "L6.2-C02": "httpbin still served on the same port",
    "L6.3-C01": "No client cert → rejected",
    "L6.3-C02": "With client cert → teapot",
    "L7-C01": "Baseline: everything reachable",
    "L7-C02": "No policies yet; only Bookinfo DRs",
    "L7-C03": "Mesh-wide PERMISSIVE: still all 200",
    "L7-C04": "Mesh-wide STRICT: legacy client rejected",
    "L7-C05": "Re-deploy legacy with sidecars",
    "L7-C06": "All reachable again",
    "L7-C07": "Policy listing",
    "L7-C08": "httpbin in foo/bar/legacy are the 1.26 sample (implicit)",
    "L8-C01": "Baseline",
    "L8-C02": "Invalid JWT rejected",
    "L8-C03": "No JWT still allowed",
    "L8-C04": "AuthorizationPolicy + token prepared",
    "L8-C05": "Valid JWT allowed",
    "L8-C06": "No JWT now denied",
    "L9.1-C01": "One productpage request from the node",
    "L9.1-C02": "Text access log of productpage sidecar",
    "L9.1-C03": "Switch to JSON access logs",
    "L9.1-C04": "JSON outbound entries",
    "L9.1-C05": "JSON inbound entry",
    "L9.2-C01": "Services are NodePort with fixed ports",
    "L9.2-C02": "Ingress NodePort lookup",
    "L9.2-C03": "Load generation",
    "L9.2-C04": "Prometheus: service metric",
    "L9.2-C05": "Prometheus: Envoy proxy metric",
    "L9.2-C06": "Prometheus: control-plane status",
    "L9.2-C07": "Grafana dashboards list",
    "L9.2-C08": "Mesh Dashboard",
    "L9.2-C09": "Service Dashboard",
    "L9.2-C10": "Workload Dashboard",
    "L9.2-C11": "Performance Dashboard",
    "L9.3-C01": "Overview page",
    "L9.3-C02": "Graph page (topology)",
    "L9.3-C03": "Traffic distribution / latency",
    "L9.3-C04": "Applications view",
    "L9.3-C05": "Services view",
    "L9.3-C06": "Workloads view",
    "L9.4-C01": "Search",
    "L9.4-C02": "Pick a rich trace",
    "L9.4-C03": "Call chain",
    "L9.4-C04": "Span details",
    "L9.4-C05": "Trace Graph view",
}

CHECK_ID = re.compile(r"^L(?P<lab>\d+)(?:\.(?P<section>\d+))?-(?P<kind>[CX])(?P<n>\d{2})$")


def lab_of(check_id: str) -> int:
    """The lab number of a check ID (catalogue or companion)."""
    match = CHECK_ID.match(check_id)
    if match is None:
        raise ValueError(f"{check_id!r} is not a check ID (L<lab>[.<section>]-C<nn> or -X<nn>)")
    return int(match["lab"])


def is_companion(check_id: str) -> bool:
    """A check beyond the manual (``L4.1-X01``), counted apart from the 120."""
    match = CHECK_ID.match(check_id)
    return bool(match) and match["kind"] == "X"  # type: ignore[index]
