"""Peer authentication: which connections a sidecar accepts, and which ones a client sends as mTLS.

Server side (``PeerAuthentication``, as istiod composes it in ``ComposePeerAuthentication``,
pilot/pkg/security/authn/policy_applier.go at 1.26):

* scopes: mesh (no selector, in the root namespace ``istio-system``), namespace (no selector),
  workload (``selector.matchLabels``, outside the root namespace; a selector policy in the root
  namespace applies to nothing). Within one scope the oldest policy wins;
* the narrowest scope wins; ``UNSET`` (or no ``mtls``) inherits from the next wider scope, and
  no policy at all means ``PERMISSIVE``;
* ``portLevelMtls`` (workload policies only) is keyed by the workload's container port; an
  ``UNSET`` port inherits the workload's mode.

``STRICT`` accepts only Istio mTLS: a plaintext connection matches no filter chain of the
inbound listener and Envoy closes it, so curl without a sidecar gets exit 56 with
``%{http_code}`` 000. ``DISABLE`` accepts only plaintext. ``PERMISSIVE`` accepts both.

Client side (``mtlsChecker.checkMtlsEnabled``, pilot/pkg/xds/endpoints/mtls_checker.go): a
DestinationRule ``tls.mode`` for the cluster (``portLevelSettings`` of the port win, a subset's
policy over the top-level one) decides: ``ISTIO_MUTUAL`` sends mTLS, any other mode does not.
Without one, auto mTLS sends mTLS to endpoints with a sidecar, unless the endpoint's own
PeerAuthentication says ``DISABLE`` for that port.

TLS origination with the user's certificates (``SIMPLE``, ``MUTUAL``) is not modelled: such a
DestinationRule counts as "not Istio mTLS" here (as in mtlsChecker), and the connection stays
plaintext instead of carrying the user's TLS.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .config import ROOT_NAMESPACE, Snapshot, creation_key, namespace_of, spec_of
from .model import Cluster, Endpoint, LocalReply
from .topology import has_sidecar, is_gateway, pod_labels, selects

Obj = dict[str, Any]
MODES = ("UNSET", "DISABLE", "PERMISSIVE", "STRICT")

# The client sidecar's answer when the server sidecar refused the connection: Envoy's local
# reply for an upstream reset before any response byte (flag UC).
UPSTREAM_RESET = LocalReply(
    503, "upstream connect error or disconnect/reset before headers. reset reason: "
    "connection termination", "UC",
    "upstream_reset_before_response_started{connection_termination}")
# ISTIO_MUTUAL towards a plaintext application: the TLS handshake fails (flag UF).
TLS_HANDSHAKE_FAILURE = LocalReply(
    503, "upstream connect error or disconnect/reset before headers. reset reason: "
    "connection failure, transport failure reason: TLS_error:|268435703:SSL "
    "routines:OPENSSL_internal:WRONG_VERSION_NUMBER:TLS_error_end", "UF",
    "upstream_reset_before_response_started{connection_failure|TLS_error:|268435703:SSL_"
    "routines:OPENSSL_internal:WRONG_VERSION_NUMBER:TLS_error_end}")


@dataclass(frozen=True)
class PeerPolicy:
    """The composed PeerAuthentication of one workload: its mode, and its port-level modes."""

    mode: str = "PERMISSIVE"
    ports: tuple[tuple[int, str], ...] = ()
    source: str = "-"  # namespace/name of the narrowest policy that applied, for messages

    def mode_for(self, port: int) -> str:
        return dict(self.ports).get(port, self.mode)


def _mode(spec: Obj) -> str:
    mode = str((spec.get("mtls") or {}).get("mode") or "UNSET").upper()
    return mode if mode in MODES else "UNSET"


def _oldest(policies: list[Obj]) -> Obj | None:
    return min(policies, key=creation_key) if policies else None


def peer_policy(snap: Snapshot, pod: Obj) -> PeerPolicy:
    """The PeerAuthentication that applies to ``pod`` (see the module docstring)."""
    ns, labels = namespace_of(pod), pod_labels(pod)
    mesh, namespace, workload = [], [], []
    for pa in snap.peer_authentications:
        selector = (spec_of(pa).get("selector") or {}).get("matchLabels") or {}
        pa_ns = namespace_of(pa)
        if not selector:
            if pa_ns == ROOT_NAMESPACE:
                mesh.append(pa)
            elif pa_ns == ns:
                namespace.append(pa)
        elif pa_ns == ns and pa_ns != ROOT_NAMESPACE and selects(selector, labels):
            workload.append(pa)
    mode, source = "PERMISSIVE", "-"
    chosen = [p for p in (_oldest(mesh), _oldest(namespace), _oldest(workload)) if p]
    for pa in chosen:
        if _mode(spec_of(pa)) != "UNSET":
            mode = _mode(spec_of(pa))
        source = f"{namespace_of(pa)}/{pa['metadata']['name']}"
    ports: list[tuple[int, str]] = []
    top = _oldest(workload)
    if top is not None:
        for key, value in (spec_of(top).get("portLevelMtls") or {}).items():
            port_mode = _mode({"mtls": value})
            if str(key).isdigit():
                ports.append((int(key), mode if port_mode == "UNSET" else port_mode))
    return PeerPolicy(mode, tuple(ports), source)


def server_mode(snap: Snapshot, pod: Obj, port: int) -> str:
    """STRICT, PERMISSIVE or DISABLE for connections to ``pod``'s container ``port``."""
    return peer_policy(snap, pod).mode_for(port)


def accepts(snap: Snapshot, pod: Obj, port: int, mtls: bool) -> bool:
    """Whether the sidecar of ``pod`` takes a connection for ``port`` (mTLS or plaintext)."""
    mode = server_mode(snap, pod, port)
    if mode == "STRICT":
        return mtls
    if mode == "DISABLE":
        return not mtls
    return True


# ------------------------------------------------------------------ client side
def _tls_mode(policy: Obj | None, port: int) -> str | None:
    if not policy:
        return None
    mode = (policy.get("tls") or {}).get("mode")
    for settings in policy.get("portLevelSettings") or []:
        if int((settings.get("port") or {}).get("number") or 0) == port and settings.get("tls"):
            mode = settings["tls"].get("mode")
            break
    return str(mode).upper() if mode else None


def destination_tls_mode(cluster: Cluster) -> str | None:
    """The DestinationRule's ``tls.mode`` for the cluster's port (subset over top level)."""
    rule = cluster.destination_rule
    if rule is None:
        return None
    spec = spec_of(rule)
    mode = None
    if cluster.subset:
        subset = next((s for s in spec.get("subsets") or [] if s.get("name") == cluster.subset),
                      None)
        mode = _tls_mode((subset or {}).get("trafficPolicy"), cluster.port)
    return mode or _tls_mode(spec.get("trafficPolicy"), cluster.port)


def client_tls(snap: Snapshot, cluster: Cluster, endpoint: Endpoint) -> bool:
    """True when the client sidecar opens Istio mTLS to ``endpoint`` (module docstring)."""
    mode = destination_tls_mode(cluster)
    if mode is not None:
        return mode == "ISTIO_MUTUAL"
    pod = endpoint.pod
    if pod is None or not (has_sidecar(pod) or is_gateway(pod)):
        return False
    if is_gateway(pod):
        return True
    return server_mode(snap, pod, endpoint.port) != "DISABLE"


# What the client sidecar answers, by how the server end refused its connection
# (a :class:`~.model.Failure` kind).
FAILURES = {"reset": UPSTREAM_RESET, "tls": TLS_HANDSHAKE_FAILURE}
