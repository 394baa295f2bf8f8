"""Which behaviour an image has: its workload kind, version, port and the tools it ships.

The kind comes from ``embedded/images.py`` (the one list of modelled images, shared with
the controllers, which refuse to start anything else).
"""

from __future__ import annotations

import re

from ..images import split_image, workload_kind

__all__ = ["curl_version", "image_version", "split_image", "workload_kind"]

# The port each application really listens on (containerPort declarations are only labels).
DEFAULT_PORTS: dict[str, int] = {
    "bookinfo-productpage": 9080, "bookinfo-reviews": 9080, "bookinfo-ratings": 9080,
    "bookinfo-details": 9080, "go-httpbin": 8080, "httpbin": 80, "fortio": 8080,
    "helloworld": 5000, "prometheus": 9090,
    "grafana": 3000, "kiali": 20001, "jaeger": 16686,
}

CURL_IMAGE_KINDS = ("curl", "sleep")
DEFAULT_CURL_VERSION = "8.14.1"  # curlimages/curl without a tag: the version the model pins
# curl in images that are not curl images. The ratings image (node on Debian) and proxyv2
# (Ubuntu 24.04) ship curl; the versions are those of their base distributions (assumed,
# the labs never print them). go-httpbin, fortio, productpage, details and reviews have none.
_CURL_IN_IMAGE: dict[str, str] = {"bookinfo-ratings": "7.88.1", "proxyv2": "8.5.0"}


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
