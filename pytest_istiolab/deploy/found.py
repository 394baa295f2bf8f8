"""What the cluster runs, for the conformance report: istiod, the proxies the labs used, Kubernetes.

Read from the API objects only (the same on every provider): istiod's Deployments and their
``istio.io/rev`` labels, and the ``istio-proxy`` containers of a namespace's pods (sidecars, and
native sidecars: init containers with ``restartPolicy: Always``).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from pytest_istiolab.deploy.controlplane import pod_revision
from pytest_istiolab.deploy.installation import ISTIO_NAMESPACE, FoundIstio, find_istio
from pytest_istiolab.kube import Kube
from pytest_istiolab.kube.containers import running_containers

PROXY_CONTAINER = "istio-proxy"
REVISION_LABEL = "istio.io/rev"


def control_plane(kube: Kube, provider: str) -> dict[str, Any]:
    """istiod's version and image, its revisions, the Kubernetes version and the server."""
    found: FoundIstio = find_istio(kube)
    revisions = sorted({(d["metadata"].get("labels") or {}).get(REVISION_LABEL, "default")
                        for d in kube.list("apps/v1", "Deployment", ISTIO_NAMESPACE,
                                           "app=istiod")})
    return {"provider": provider, "server": kube.server, "kubernetes_version": kube.ping(),
            "istio_version": found.version, "istiod_image": found.image,
            "istiod_revisions": revisions}


def proxy_pods(kube: Kube, namespace: str) -> dict[str, dict[str, str]]:
    """The ``istio-proxy`` image and revision of each of the namespace's pods, by pod uid."""
    found: dict[str, dict[str, str]] = {}
    for pod in kube.pods(namespace):
        meta = pod["metadata"]
        revision = pod_revision(pod) or "default"
        for container in running_containers(pod):
            if container.get("name") == PROXY_CONTAINER and container.get("image"):
                found[str(meta.get("uid") or f"{namespace}/{meta['name']}")] = {
                    "image": str(container["image"]), "revision": str(revision)}
    return found


def summarize_proxies(pods: dict[str, dict[str, str]]) -> list[dict[str, Any]]:
    """Proxies counted by image and revision, with the version read from the image tag."""
    seen = Counter((p["image"], p["revision"]) for p in pods.values())
    return [{"image": image, "version": FoundIstio(image).version, "revision": revision,
             "count": count} for (image, revision), count in sorted(seen.items())]
