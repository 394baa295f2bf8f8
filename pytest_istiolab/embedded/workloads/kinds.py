"""Which behaviour an image has: its workload kind, version, port and the tools it ships.

The kind comes from ``embedded/images.py`` (``workload_kind``) when the controllers provide
it; the local table below is the fallback and must agree with it for the images the labs use.
"""

from __future__ import annotations

import re
from collections.abc import Callable

try:  # the controllers' classification, shared by the whole embedded cluster
    from ..images import workload_kind as _shared_kind
except ImportError:  # pragma: no cover - only while images.py does not exist yet
    _shared_kind = None

_shared: Callable[[str], str | None] | None = _shared_kind

# (pattern on the image reference without tag, kind)
_FALLBACK: tuple[tuple[str, str], ...] = (
    (r"(^|/)examples-bookinfo-productpage-v\d+$", "bookinfo-productpage"),
    (r"(^|/)examples-bookinfo-reviews-v\d+$", "bookinfo-reviews"),
    (r"(^|/)examples-bookinfo-ratings-v\d+$", "bookinfo-ratings"),
    (r"(^|/)examples-bookinfo-details-v\d+$", "bookinfo-details"),
    (r"(^|/)mccutchen/go-httpbin$", "go-httpbin"),
    (r"(^|/)(kennethreitz|citizenstig)/httpbin$", "httpbin"),
    (r"(^|/)curlimages/curl$", "curl"),
    (r"(^|/)governmentpaas/curl-ssl$", "sleep"),
    (r"(^|/)fortio/fortio$", "fortio"),
    (r"(^|/)istio/proxyv2$", "proxyv2"),
    (r"(^|/)examples-helloworld-v\d+$", "helloworld"),
)

# Default listening port per kind when the pod spec declares none.
DEFAULT_PORTS: dict[str, int] = {
    "bookinfo-productpage": 9080, "bookinfo-reviews": 9080, "bookinfo-ratings": 9080,
    "bookinfo-details": 9080, "go-httpbin": 8080, "httpbin": 80, "fortio": 8080,
    "helloworld": 5000,
}

CURL_IMAGE_KINDS = ("curl", "sleep")
DEFAULT_CURL_VERSION = "8.14.1"  # curlimages/curl without a tag: the version the model pins
# curl in images that are not curl images. The ratings image (node on Debian) and proxyv2
# (Ubuntu 24.04) ship curl; the versions are those of their base distributions (assumed,
# the labs never print them). go-httpbin, fortio, productpage, details and reviews have none.
_CURL_IN_IMAGE: dict[str, str] = {"bookinfo-ratings": "7.88.1", "proxyv2": "8.5.0"}


def split_image(image: str) -> tuple[str, str]:
    """``docker.io/istio/x:1.2`` -> (``docker.io/istio/x``, ``1.2``); digests dropped."""
    ref = image.split("@", 1)[0]
    name, sep, tag = ref.rpartition(":")
    if sep and "/" not in tag:
        return name, tag
    return ref, ""


def workload_kind(image: str) -> str | None:
    if _shared is not None:
        kind = _shared(image)
        if kind is not None:
            return kind
    name, _ = split_image(image)
    for pattern, kind in _FALLBACK:
        if re.search(pattern, name):
            return kind
    return None


def image_version(image: str) -> str | None:
    """The ``vN`` of a Bookinfo or helloworld image name (``examples-bookinfo-reviews-v2``)."""
    match = re.search(r"-(v\d+)$", split_image(image)[0])
    return match.group(1) if match else None


def curl_version(image: str) -> str | None:
    """The curl version an image ships, or None when it has no curl."""
    kind = workload_kind(image)
    if kind in CURL_IMAGE_KINDS:
        tag = split_image(image)[1]
        return tag if re.fullmatch(r"\d+\.\d+\.\d+", tag) else DEFAULT_CURL_VERSION
    return _CURL_IN_IMAGE.get(kind or "")
