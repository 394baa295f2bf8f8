"""``istiolab-probe``: traffic continuity during an upgrade (plain Python, no pytest).

Owns the probe's workloads (``target``), its traffic loops (``runner``), the continuity record
and report (``continuity``) and the command line (``cli``). Uses the cluster session, the
deploy layer (sample apps, Istio found or, on the embedded cluster, installed) and traffic.
"""

from pytest_istiolab.probe.continuity import Budget, Outcome, PathRecord, envoy_flag, summary

__all__ = ["Budget", "Outcome", "PathRecord", "envoy_flag", "summary"]
