"""The container images the embedded cluster models, and what each one runs.

The embedded cluster has no container runtime: a container's behaviour is chosen by its
image repository. This module is the one list of those repositories. The controllers use
it to decide whether a container "starts" (an image not listed here never does: it stays
in ``ErrImagePull``/``ImagePullBackOff`` with a message naming this list), and the
workload models and exec tools use :func:`workload_kind` to pick a behaviour.

Repositories are normalised the way a container runtime does: ``httpbin`` and
``docker.io/library/httpbin`` are the same image; tags and digests are ignored.
"""

from __future__ import annotations

import hashlib

# repository (normalised, without tag) -> workload kind
KNOWN_IMAGES: dict[str, str] = {
    # Bookinfo (1.26 samples use tag 1.20.3; the manual's describe output shows 1.17.0)
    "docker.io/istio/examples-bookinfo-productpage-v1": "bookinfo-productpage",
    "docker.io/istio/examples-bookinfo-details-v1": "bookinfo-details",
    "docker.io/istio/examples-bookinfo-details-v2": "bookinfo-details",
    "docker.io/istio/examples-bookinfo-ratings-v1": "bookinfo-ratings",
    "docker.io/istio/examples-bookinfo-ratings-v2": "bookinfo-ratings",
    "docker.io/istio/examples-bookinfo-reviews-v1": "bookinfo-reviews",
    "docker.io/istio/examples-bookinfo-reviews-v2": "bookinfo-reviews",
    "docker.io/istio/examples-bookinfo-reviews-v3": "bookinfo-reviews",
    # httpbin flavours: go-httpbin (1.26 sample) and the Python httpbin of Labs 5.2 and 6
    "docker.io/mccutchen/go-httpbin": "go-httpbin",
    "docker.io/kennethreitz/httpbin": "httpbin",
    "docker.io/citizenstig/httpbin": "httpbin",
    # clients
    "docker.io/curlimages/curl": "curl",
    "docker.io/governmentpaas/curl-ssl": "sleep",
    "docker.io/fortio/fortio": "fortio",
    # helloworld
    "docker.io/istio/examples-helloworld-v1": "helloworld",
    "docker.io/istio/examples-helloworld-v2": "helloworld",
    # Istio itself
    "docker.io/istio/proxyv2": "proxyv2",
    "docker.io/istio/pilot": "pilot",
    # addons (samples/addons of 1.26.0)
    "docker.io/prom/prometheus": "prometheus",
    "ghcr.io/prometheus-operator/prometheus-config-reloader": "configmap-reload",
    "docker.io/jimmidyson/configmap-reload": "configmap-reload",
    "docker.io/grafana/grafana": "grafana",
    "docker.io/jaegertracing/all-in-one": "jaeger",
    "quay.io/kiali/kiali": "kiali",
    "docker.io/grafana/loki": "loki",
    "docker.io/kiwigrid/k8s-sidecar": "k8s-sidecar",
}

_DEFAULT_REGISTRY = "docker.io"


def split_image(image: str) -> tuple[str, str]:
    """Split ``image`` into (normalised repository, tag or digest)."""
    ref = image.strip()
    digest = ""
    if "@" in ref:
        ref, digest = ref.split("@", 1)
    tag = ""
    slash = ref.rfind("/")
    colon = ref.rfind(":")
    if colon > slash:
        ref, tag = ref[:colon], ref[colon + 1:]
    return normalize_repository(ref), digest or tag or "latest"


def normalize_repository(repo: str) -> str:
    """``httpbin`` -> ``docker.io/library/httpbin``; ``istio/x`` -> ``docker.io/istio/x``."""
    parts = repo.split("/")
    first = parts[0]
    has_registry = len(parts) > 1 and ("." in first or ":" in first or first == "localhost")
    if not has_registry:
        parts = [_DEFAULT_REGISTRY, *parts]
    if parts[0] in ("index.docker.io", "registry-1.docker.io"):
        parts[0] = _DEFAULT_REGISTRY
    if parts[0] == _DEFAULT_REGISTRY and len(parts) == 2:
        parts = [_DEFAULT_REGISTRY, "library", parts[1]]
    return "/".join(parts)


def workload_kind(image: str) -> str | None:
    """The behaviour the embedded cluster runs for ``image``, or None if it models none."""
    repo, _ = split_image(image)
    return KNOWN_IMAGES.get(repo)


def is_modelled(image: str) -> bool:
    return workload_kind(image) is not None


def image_id(image: str) -> str:
    """A stable ``repo@sha256:...`` image ID as the kubelet reports it in containerStatuses."""
    repo, ref = split_image(image)
    digest = ref if ref.startswith("sha256:") else \
        "sha256:" + hashlib.sha256(f"{repo}:{ref}".encode()).hexdigest()
    return f"{repo}@{digest}"


def known_images_summary() -> str:
    """A short human list of the modelled repositories, for error messages."""
    return ", ".join(sorted(KNOWN_IMAGES))


def not_modelled_message(image: str) -> str:
    return (f"the embedded cluster does not model image {image} (it models: "
            f"{known_images_summary()}); use a sample image or a real cluster")
