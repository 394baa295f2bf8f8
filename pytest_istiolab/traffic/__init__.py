"""Traffic: what a lab sends and how it reads the answers.

Owns curl and fortio command lines for client pods and the parsers of their output, Bookinfo page
markers, exact binomial statistics, the ingress gateway as reached from the test host, HTTPS to
the gateways from the test host (real curl, or Python's ssl), and sidecar access logs. Uses the
Kubernetes layer (``pytest_istiolab.kube``) and the foundation modules only. Lab modules import
these names from the package: ``from pytest_istiolab import traffic``.
"""

from pytest_istiolab.traffic.accesslog import AccessLogEntry, ProxyLog, parse_line, parse_log
from pytest_istiolab.traffic.bookinfo import (
    book_title,
    page_title,
    reviews_pod,
    reviews_version,
    star_color,
)
from pytest_istiolab.traffic.curl import (
    BODY_STATUS_FORMAT,
    STATUS_TIME_FORMAT,
    TRANSFER_MARK,
    CurlResult,
    batch_argv,
    curl_argv,
    parse_batch,
    parse_status_line,
    split_head,
)
from pytest_istiolab.traffic.fortio import FORTIO, envoy_stats, fortio_codes, fortio_load_argv
from pytest_istiolab.traffic.ingress import GatewayAddress, Ingress
from pytest_istiolab.traffic.stats import (
    Sampler,
    assert_proportion,
    binomial_two_sided_p,
    required_samples,
    tally,
)
from pytest_istiolab.traffic.tls import HttpsResult, https_get

__all__ = [
    "BODY_STATUS_FORMAT", "FORTIO", "STATUS_TIME_FORMAT", "TRANSFER_MARK", "AccessLogEntry",
    "CurlResult", "GatewayAddress", "HttpsResult", "Ingress", "ProxyLog", "Sampler",
    "assert_proportion", "batch_argv", "binomial_two_sided_p", "book_title", "curl_argv",
    "envoy_stats", "fortio_codes", "fortio_load_argv", "https_get", "page_title", "parse_batch",
    "parse_line", "parse_log", "parse_status_line", "required_samples", "reviews_pod",
    "reviews_version", "split_head", "star_color", "tally",
]
