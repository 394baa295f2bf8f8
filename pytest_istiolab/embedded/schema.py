"""Structural-schema checks for custom resources (placeholder until the CRD work lands)."""

from __future__ import annotations

from typing import Any

from .resources import ResourceType


def validate_custom_resource(rt: ResourceType, obj: dict[str, Any]) -> None:
    """Reject what kube-apiserver rejects for ``rt``'s openAPIV3Schema (not yet modelled)."""
    return None
