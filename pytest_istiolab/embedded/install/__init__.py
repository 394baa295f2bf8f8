"""Istio installation content for the embedded cluster (1.25.5, 1.26.0, 1.26.8, 1.27.9:
see :mod:`.releases` for what differs between them and what is not modelled).

What ``istioctl install`` renders and applies for the modelled profiles (``default``,
``demo``, ``minimal``, ``empty``): the 14 CRDs, istiod and its configuration, the injection
and validation webhook configurations, and the ingress/egress gateways. Pure data:
nothing here talks to a cluster (see :mod:`..istioctl` for that).
"""

from __future__ import annotations

from .common import COMPONENT_LABEL, COMPONENT_NAMES, owner_labels
from .crds import CRD_SPECS, istio_crds
from .profiles import (
    ALL_PROFILES,
    ISTIO_VERSION,
    MODELLED_PROFILES,
    InstallError,
    InstallSpec,
    resolve,
)
from .render import components_of, render_install, render_spec

__all__ = [
    "ALL_PROFILES", "COMPONENT_LABEL", "COMPONENT_NAMES", "CRD_SPECS", "ISTIO_VERSION",
    "MODELLED_PROFILES", "InstallError", "InstallSpec", "components_of", "istio_crds",
    "owner_labels", "render_install", "render_spec", "resolve",
]
