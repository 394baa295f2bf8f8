"""pytest-istiolab: end-to-end Istio 1.26 conformance tests from the lab manual."""

from __future__ import annotations

__version__ = "0.1.0"
