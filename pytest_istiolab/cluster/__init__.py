"""The cluster of a run: providers (embedded, kind, existing) and the session built on one.

A provider makes a cluster exist and hands out a kubeconfig (and maybe an istioctl); the session
holds the Kubernetes client, istioctl and the ingress for the rest of the run. Uses the
Kubernetes, istioctl and traffic layers; the embedded provider is the only importer of ``embedded``.
"""

from pytest_istiolab.cluster.providers.base import ClusterHandle, ClusterProvider
from pytest_istiolab.cluster.session import ClusterSession, CommandLog, HandedOver, make_provider

__all__ = ["ClusterHandle", "ClusterProvider", "ClusterSession", "CommandLog", "HandedOver",
           "make_provider"]
