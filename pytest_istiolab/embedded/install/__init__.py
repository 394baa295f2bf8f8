"""Istio 1.26 installation content (placeholder while it is being written)."""
