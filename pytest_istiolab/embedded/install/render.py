"""``istioctl manifest generate`` for the embedded cluster: a profile + overlays -> objects."""

from __future__ import annotations

import copy
from typing import Any

from .common import COMPONENT_LABEL, owner_labels, stamp_release
from .gateways import egress_objects, ingress_objects
from .istiod import BASE, PILOT, base_objects, pilot_objects
from .profiles import InstallSpec, resolve

Obj = dict[str, Any]

# (component label, enabled-flag key, builder), in install order
_COMPONENTS = (
    (BASE, "base", base_objects),
    (PILOT, "pilot", pilot_objects),
    ("EgressGateways", "egressGateways", egress_objects),
    ("IngressGateways", "ingressGateways", ingress_objects),
)


def render_spec(spec: InstallSpec) -> list[Obj]:
    """Every object of an installation, labelled with its component and owner labels."""
    out: list[Obj] = []
    for component, key, build in _COMPONENTS:
        if not spec.enabled(key):
            continue
        for o in build(spec):
            o = copy.deepcopy(o)
            stamp_release(o, spec.version, spec.rev_label)
            labels = o["metadata"].setdefault("labels", {})
            labels.update(owner_labels(component, spec.version, spec.rev_label))
            out.append(o)
    return out


def render_install(profile: str = "default", sets: dict[str, Any] | None = None,
                   operator: Obj | None = None) -> list[Obj]:
    """The objects ``istioctl install --set profile=<profile> --set k=v ...`` would apply.

    ``sets`` maps ``--set`` paths to values (strings are typed as istioctl does; a
    ``profile`` key overrides ``profile``); ``operator`` is an IstioOperator object (``-f``).
    Raises :class:`~.profiles.InstallError` for what is not modelled.
    """
    return render_spec(resolve(profile, sets, operator))


def components_of(objects: list[Obj]) -> list[str]:
    """The component labels present, in install order."""
    present = {o["metadata"]["labels"].get(COMPONENT_LABEL) for o in objects}
    return [c for c, _, _ in _COMPONENTS if c in present]
