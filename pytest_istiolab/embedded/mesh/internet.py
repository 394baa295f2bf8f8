"""The part of the Internet the model knows: a few public hosts and the cluster's public address.

Only hosts the labs contact are modelled (catalogue Appendix B: ``httpbin.org`` on port 80).
Any other public name does not resolve (curl exit 6), and a public address that is not
listed here never answers. Their behaviour lives in ``workloads.external``.
"""

from __future__ import annotations

from dataclasses import dataclass

# The address the cluster's traffic leaves from (SNAT on the node); a TEST-NET-3 address,
# so nobody mistakes it for a real one.
CLUSTER_EGRESS_IP = "203.0.113.10"


@dataclass(frozen=True)
class PublicHost:
    name: str
    addresses: tuple[str, ...]
    ports: tuple[int, ...]


PUBLIC_HOSTS: dict[str, PublicHost] = {
    "httpbin.org": PublicHost("httpbin.org", ("54.166.148.227", "3.215.37.86"), (80,)),
}


def lookup(name: str) -> PublicHost | None:
    return PUBLIC_HOSTS.get(name.lower().rstrip("."))


def host_at(ip: str) -> PublicHost | None:
    """The public host answering on ``ip``, if it is one the model knows."""
    return next((h for h in PUBLIC_HOSTS.values() if ip in h.addresses), None)
