"""Option names, ini keys, environment variables, markers and defaults.

One place, reused by code and tests.
"""

from __future__ import annotations

from dataclasses import dataclass

from pytest_istiolab.embedded.install.profiles import (
    ALL_PROFILES,
    MODELLED_PROFILES,
    MODELLED_VERSIONS,
    PROFILE_LIMITS,
)

DEFAULT_ISTIO_VERSION = "1.26.0"
DEFAULT_PROFILE = "demo"

# Profiles shipped in manifests/profiles of Istio 1.26 (`istioctl profile list`), those the
# embedded cluster models, and why it refuses the others: one table, kept by the embedded
# installer (the layer that knows what it models).
ISTIO_PROFILES: tuple[str, ...] = ALL_PROFILES
EMBEDDED_PROFILES: tuple[str, ...] = MODELLED_PROFILES
EMBEDDED_PROFILE_LIMITS: dict[str, str] = PROFILE_LIMITS
# Istio releases the embedded cluster models (newest 1.25, 1.26 and 1.27 patches, and 1.26.0)
EMBEDDED_ISTIO_VERSIONS: tuple[str, ...] = MODELLED_VERSIONS

CLUSTER_PROVIDERS: tuple[str, ...] = ("embedded", "kind", "existing")
KEEP_CHOICES: tuple[str, ...] = ("never", "on-failure", "always")


@dataclass(frozen=True)
class Option:
    """A command-line option with its ini key and environment variable."""

    flag: str
    ini: str
    env: str
    help: str
    default: str | None = None
    choices: tuple[str, ...] | None = None

    @property
    def dest(self) -> str:
        return self.flag.lstrip("-").replace("-", "_")


OPT_PROFILE = Option("--istio-profile", "istio_profile", "ISTIOLAB_PROFILE",
                     "Istio installation profile to install and test", DEFAULT_PROFILE)
OPT_VERSION = Option("--istio-version", "istio_version", "ISTIOLAB_VERSION",
                     "Istio version the mesh must run", DEFAULT_ISTIO_VERSION)
OPT_CLUSTER = Option("--istio-cluster", "istio_cluster", "ISTIOLAB_CLUSTER",
                     "where to run: embedded (in-process, default), kind, or existing",
                     "embedded", CLUSTER_PROVIDERS)
OPT_CONTEXT = Option("--istio-context", "istio_context", "ISTIOLAB_CONTEXT",
                     "kube context of an existing cluster (required with --istio-cluster=existing)")
OPT_KUBECONFIG = Option("--istio-kubeconfig", "istio_kubeconfig", "ISTIOLAB_KUBECONFIG",
                        "kubeconfig file for an existing cluster (default: $KUBECONFIG or "
                        "~/.kube/config)")
OPT_KEEP = Option("--istio-keep", "istio_keep", "ISTIOLAB_KEEP",
                  "keep lab namespaces and applied resources: never, on-failure or always",
                  "never", KEEP_CHOICES)
OPT_ISTIOCTL = Option("--istio-istioctl", "istio_istioctl", "ISTIOLAB_ISTIOCTL",
                      "path of the istioctl executable to use")
OPT_SEED = Option("--istio-seed", "istio_seed", "ISTIOLAB_SEED",
                  "seed of the embedded mesh's randomness (printed in the header; default random)")

INSTALL_CHOICES: tuple[str, ...] = ("if-missing", "always", "never")
OPT_INSTALL = Option("--istio-install", "istio_install", "ISTIOLAB_INSTALL",
                     "install Istio: if-missing (test an installed mesh as it is), always "
                     "(install/upgrade to --istio-profile and --istio-version), never",
                     "if-missing", INSTALL_CHOICES)
OPT_KIND_NAME = Option("--istio-kind-name", "istio_kind_name", "ISTIOLAB_KIND_NAME",
                       "kind cluster name: reused (never deleted) if it exists, else created")
OPT_KIND_IMAGE = Option("--istio-kind-image", "istio_kind_image", "ISTIOLAB_KIND_IMAGE",
                        "kind node image, e.g. kindest/node:v1.32.2")
OPT_OFFLINE = Option("--istio-offline", "istio_offline", "ISTIOLAB_OFFLINE",
                     "never download istioctl (use --istio-istioctl, PATH or the cache): "
                     "true/false",
                     "false", ("true", "false"))
OPT_RELEASE_URL = Option("--istio-release-url", "istio_release_url", "ISTIOLAB_RELEASE_URL",
                         "base URL of Istio releases for istioctl downloads (a mirror)")
OPT_READ_ONLY = Option("--istio-read-only", "istio_read_only", "ISTIOLAB_READ_ONLY",
                       "skip labs that change mesh-wide state (mesh config, mesh-wide "
                       "PeerAuthentication, reinstall): true/false", "false", ("true", "false"))

OPT_CONFORMANCE_REPORT = Option("--istio-conformance-report", "istio_conformance_report",
                                "ISTIOLAB_CONFORMANCE_REPORT",
                                "write the per-lab, per-check conformance result as JSON to this "
                                "path (for diffs between nightly runs or across an upgrade)")

DEFAULT_EXTERNAL_HOST = "httpbin.org"
# External hosts the embedded cluster models (embedded/mesh/internet.py, catalogue Appendix B).
EMBEDDED_EXTERNAL_HOSTS: tuple[str, ...] = (DEFAULT_EXTERNAL_HOST,)
COMPARE_FAIL_ON: tuple[str, ...] = ("regression", "any-change", "never")
OPT_COMPARE = Option("--istio-compare", "istio_compare", "ISTIOLAB_COMPARE",
                     "compare this run with a baseline conformance report (JSON of an earlier "
                     "run): regressions, fixes, newly skipped and not run, printed after the run "
                     "and written into the new report")
OPT_COMPARE_FAIL_ON = Option("--istio-compare-fail-on", "istio_compare_fail_on",
                             "ISTIOLAB_COMPARE_FAIL_ON",
                             "what in the comparison fails the run (exit 1, also when the tests "
                             "concerned were deselected): regression, any-change or never",
                             "regression", COMPARE_FAIL_ON)
OPT_EXTERNAL_HOST = Option("--istio-external-host", "istio_external_host",
                           "ISTIOLAB_EXTERNAL_HOST",
                           "external host the egress labs (3.4, 3.6) call over HTTP on port 80; "
                           "it must serve httpbin's /headers and /ip (air-gapped clusters: a "
                           "reachable Python httpbin)", DEFAULT_EXTERNAL_HOST)

JWT_SOURCES: tuple[str, ...] = ("local", "remote")
OPT_JWT_SOURCE = Option("--istio-jwt-source", "istio_jwt_source", "ISTIOLAB_JWT_SOURCE",
                        "Lab 8's JWKS and token: local (a key minted by the run, inline jwks; "
                        "no internet needed) or remote (the manual's jwksUri and demo token on "
                        "raw.githubusercontent.com; istiod and this host need internet)",
                        "local", JWT_SOURCES)

REALISM_CHOICES: tuple[str, ...] = ("off", "on")
OPT_EMBEDDED_REALISM = Option(
    "--istio-embedded-realism", "istio_embedded_realism", "ISTIOLAB_EMBEDDED_REALISM",
    "make the embedded cluster as slow and unkind as a real one: per-proxy config push "
    "delays, delayed readiness, watches that end, 429/500 on writes (seeded by --istio-seed): "
    "off or on", "off", REALISM_CHOICES)

OPT_TIMEOUT_SCALE = Option(
    "--istio-timeout-scale", "istio_timeout_scale", "ISTIOLAB_TIMEOUT_SCALE",
    "multiply every named timeout (readiness, waits, requests, istioctl) by this factor, for "
    "slow clusters and first image pulls, e.g. 3", "1")
OPT_TEST_TIMEOUT = Option(
    "--istio-test-timeout", "istio_test_timeout", "ISTIOLAB_TEST_TIMEOUT",
    "fail a test phase (setup, call or teardown) that runs longer than this many seconds, so a "
    "hung cluster fails a test instead of hanging the run (scaled by --istio-timeout-scale; "
    "0: no bound)", "900")

OPTIONS: tuple[Option, ...] = (OPT_PROFILE, OPT_VERSION, OPT_CLUSTER, OPT_CONTEXT, OPT_KUBECONFIG,
                               OPT_KEEP, OPT_ISTIOCTL, OPT_SEED, OPT_INSTALL, OPT_KIND_NAME,
                               OPT_KIND_IMAGE, OPT_OFFLINE, OPT_RELEASE_URL, OPT_READ_ONLY,
                               OPT_CONFORMANCE_REPORT, OPT_EXTERNAL_HOST, OPT_JWT_SOURCE,
                               OPT_COMPARE, OPT_COMPARE_FAIL_ON, OPT_EMBEDDED_REALISM,
                               OPT_TIMEOUT_SCALE, OPT_TEST_TIMEOUT)

# Markers
MARK_LAB = "lab"            # @pytest.mark.lab(2): the manual's lab number; also -m lab2
MARK_CHECK = "check"        # @pytest.mark.check("L1-C06", ...): catalogue check IDs
MARK_REQUIRES = "requires"  # @pytest.mark.requires("egress-gateway"): installation capability
LAB_NUMBERS: tuple[int, ...] = tuple(range(1, 10))

# Capabilities a profile provides (for MARK_REQUIRES).
PROFILE_CAPABILITIES: dict[str, frozenset[str]] = {
    "demo": frozenset({"istiod", "ingress-gateway", "egress-gateway", "access-log"}),
    "default": frozenset({"istiod", "ingress-gateway"}),
    "minimal": frozenset({"istiod"}),
    "empty": frozenset(),
    "preview": frozenset({"istiod", "ingress-gateway"}),
    "ambient": frozenset({"istiod"}),
    "remote": frozenset(),
    "openshift": frozenset({"istiod", "ingress-gateway"}),
    "openshift-ambient": frozenset({"istiod"}),
    "stable": frozenset({"istiod", "ingress-gateway"}),
}
CAPABILITIES: tuple[str, ...] = ("istiod", "ingress-gateway", "egress-gateway", "access-log")
# What every test of a lab needs, beside its own ``requires`` markers: Labs 2-9 run workloads
# with injected sidecars, which needs istiod (and the Istio CRDs it comes with). Lab 1 marks
# its tests one by one (some check only what istioctl prints).
LAB_REQUIRES: dict[int, tuple[str, ...]] = {lab: ("istiod",) for lab in range(2, 10)}

LABEL_MANAGED = "istiolab.io/managed-by"     # on every namespace the suite creates
LABEL_RUN = "istiolab.io/run"                # the run id
LABEL_SESSION = "istiolab.io/session"        # the run id shared by every xdist worker
FIELD_MANAGER = "pytest-istiolab"
