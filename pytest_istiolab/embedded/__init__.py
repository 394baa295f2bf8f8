"""The embedded cluster: a Kubernetes API server and a reference model of the Istio data plane.

Scope and limitations
---------------------
Models, in-process on 127.0.0.1, what the nine labs of the Istio 1.26 lab manual do:

* Kubernetes API: REST for core, apps, apiextensions and any CRD; discovery; watch with
  resourceVersion replay, 410 and bookmarks; server-side apply and the usual patch types;
  status subresources; pods/log; exec over websocket (v4 and v5 channel protocols).
* Controllers: Deployments/ReplicaSets/StatefulSets to Pods (rollouts paced by each
  Deployment's strategy), sidecar injection by revision and revision tag, Services with
  ClusterIPs and NodePorts, Endpoints, one Node at 127.0.0.1.
* An ``istioctl`` console program for the commands the labs and an upgrade use, one per
  modelled release (1.25.5, 1.26.0, 1.26.8, 1.27.9: installs, upgrades in place and by
  revision; :mod:`.install.releases` lists what differs between them, e.g. 1.27's native
  sidecars, and what is not modelled; the data plane model is 1.26's for all).
* The Istio data plane as pure functions from the Istio config in the store to the outcome
  of a request, with simulated (virtual) time.

It never models: real containers or images (workloads are behaviours chosen by image),
a scheduler, kubelet probes, persistent volumes, SPDY (``kubectl port-forward``, exec with
kubectl older than 1.30), admission webhooks other than sidecar injection, RBAC enforcement,
or any Istio feature the labs do not use. Where a request needs something unmodelled, it
fails with a message saying so.
"""

from __future__ import annotations

from .cluster import EmbeddedCluster

__all__ = ["EmbeddedCluster"]
