"""What the installed mesh can do, read from the cluster rather than from ``--istio-profile``.

A run against a mesh it did not install (``--istio-install=never``, or ``if-missing`` finding
one) knows nothing about the profile that made it; a platform team's mesh may have been made
with Helm (the ingress gateway in ``istio-ingress``) or with a custom access-log format. So each
capability a check may need (``@pytest.mark.requires``) is read from the objects that carry it:

* ``istiod``: a Deployment labelled ``app=istiod`` in ``istio-system``;
* ``ingress-gateway``: a Service labelled ``istio=ingressgateway``, in whatever namespace holds
  it (``istio-system`` for ``istioctl install``, ``istio-ingress`` for the Helm layout; the one
  in ``istio-system`` when there are several); its namespace is :attr:`ingress_namespace` (found by
  :func:`pytest_istiolab.traffic.ingress.find_gateway_namespace`, the lookup the traffic layer
  uses too);
* ``egress-gateway``: a Deployment ``istio-egressgateway`` (any namespace);
* ``access-log``: the mesh config's ``accessLogFile`` set, with Istio's default format (TEXT,
  or JSON with ``accessLogEncoding: JSON``: :mod:`pytest_istiolab.traffic.accesslog` reads
  both). With ``accessLogFormat`` set the log is there but the checks cannot read it: the
  capability is missing and the reason names the format (a skip, not a parse error).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pytest_istiolab.deploy.installation import ISTIO_NAMESPACE
from pytest_istiolab.kube import Kube
from pytest_istiolab.traffic.ingress import find_gateway_namespace

EGRESS_DEPLOYMENT = "istio-egressgateway"


@dataclass(frozen=True)
class MeshCapabilities:
    """The capabilities present, where the ingress gateway lives, and why others are not."""

    present: frozenset[str]
    ingress_namespace: str | None = None
    access_log_format: str | None = None  # meshConfig.accessLogFormat, when set
    why_not: dict[str, str] = field(default_factory=dict)
    installed_profile: str | None = None  # the profile this run installed; None: found mesh

    def has(self, capability: str) -> bool:
        return capability in self.present

    def missing(self, needed: list[str] | tuple[str, ...]) -> list[str]:
        return [cap for cap in dict.fromkeys(needed) if cap not in self.present]

    def reason(self, missing: list[str]) -> str:
        """The skip reason: the profile when this run installed the mesh and nothing more
        specific is known, else what the mesh shows."""
        profile = self.installed_profile
        if profile is not None and not any(cap in self.why_not for cap in missing):
            return f"profile {profile!r} has no {', '.join(missing)}"
        details = [self.why_not.get(cap, f"no {cap}") for cap in missing]
        return f"the installed mesh has {'; '.join(details)}"

    @property
    def profile_like(self) -> str:
        """The profile the run installed, else the one the mesh looks like: ``demo`` with an
        egress gateway and access logs, ``default`` with an ingress gateway, else ``minimal``
        (what decides the profile-specific expectations, such as demo's ingress ports)."""
        if self.installed_profile is not None:
            return self.installed_profile
        if self.demo_like:
            return "demo"
        return "default" if self.has("ingress-gateway") else "minimal"

    @property
    def demo_like(self) -> bool:
        """Egress gateway and access logs: what the demo profile adds to ``default``."""
        return {"egress-gateway", "access-log"} <= self.present or (
            self.has("egress-gateway") and self.access_log_format is not None)


def read_capabilities(kube: Kube, mesh: dict[str, Any],
                      installed_profile: str | None = None) -> MeshCapabilities:
    """The capabilities of the mesh ``kube`` reaches; ``mesh`` is its parsed mesh config."""
    present: set[str] = set()
    why_not: dict[str, str] = {}
    if kube.list("apps/v1", "Deployment", ISTIO_NAMESPACE, "app=istiod"):
        present.add("istiod")
    ingress = find_gateway_namespace(kube)
    if ingress is not None:
        present.add("ingress-gateway")
    if any(d["metadata"]["name"] == EGRESS_DEPLOYMENT
           for d in kube.list("apps/v1", "Deployment", None, "istio=egressgateway")):
        present.add("egress-gateway")
    log_format = mesh.get("accessLogFormat") or None
    if mesh.get("accessLogFile"):
        if log_format is not None:
            why_not["access-log"] = (f"access logs in a custom format (meshConfig."
                                     f"accessLogFormat {log_format!r}); the checks read "
                                     "Istio's default format only (TEXT or JSON)")
        else:
            present.add("access-log")
    return MeshCapabilities(frozenset(present), ingress, log_format, why_not, installed_profile)
