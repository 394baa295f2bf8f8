"""What a fresh single-node cluster has before anyone applies anything.

Namespaces ``default``, ``kube-system``, ``kube-public``, ``kube-node-lease``; one Node at
127.0.0.1; the ``kubernetes`` Service (10.96.0.1:443) and its Endpoints; a cluster CA in
every namespace's ``kube-root-ca.crt`` ConfigMap; a ``default`` ServiceAccount per namespace.
Also registers the admission plugins (pod and service defaulting, sidecar injection).

Not modelled: kube-dns/CoreDNS, kube-proxy and the other kube-system pods.
"""

from __future__ import annotations

import datetime

# Imported at module load, not lazily: a test harness that unloads modules imported during an
# inner run (pytester) would otherwise leave cryptography's Python layer out of step with its
# already-initialised Rust bindings ("curve must be an EllipticCurve instance").
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ..runtime import Runtime
from ..store import StoreError
from .admission import register_admission
from .util import CONFIGMAP, ENDPOINTS, NAMESPACE, NODE, SERVICE, SERVICEACCOUNT, Obj, rtype

SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
KUBELET_VERSION = "v1.33.1"
KUBERNETES_SERVICE_IP = "10.96.0.1"
ROOT_CA_CONFIGMAP = "kube-root-ca.crt"


def bootstrap(runtime: Runtime) -> None:
    """Create the objects every cluster starts with, and register admission plugins."""
    register_admission(runtime)
    for ns in SYSTEM_NAMESPACES:
        _create(runtime, NAMESPACE, {"metadata": {"name": ns}})
    _create(runtime, NODE, node_object(runtime))
    _create(runtime, SERVICE, kubernetes_service(), "default")
    _create(runtime, ENDPOINTS, kubernetes_endpoints(runtime), "default")
    ca = cluster_ca_pem()
    for ns in SYSTEM_NAMESPACES:
        _create(runtime, CONFIGMAP, root_ca_configmap(ca), ns)
        _create(runtime, SERVICEACCOUNT, {"metadata": {"name": "default"}}, ns)


def _create(runtime: Runtime, key: tuple[str, str], obj: Obj, ns: str | None = None) -> None:
    try:
        runtime.store.create(rtype(runtime.store, key), obj, ns)
    except StoreError as err:
        if err.code != 409:
            raise


def node_object(runtime: Runtime) -> Obj:
    name = runtime.node_name
    capacity = {"cpu": "8", "ephemeral-storage": "102400Mi", "hugepages-2Mi": "0",
                "memory": "16Gi", "pods": "110"}
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    def cond(ctype: str, status: str, reason: str, message: str) -> Obj:
        return {"type": ctype, "status": status, "reason": reason, "message": message,
                "lastHeartbeatTime": stamp, "lastTransitionTime": stamp}

    return {
        "metadata": {"name": name, "labels": {
            "kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64", "beta.kubernetes.io/os": "linux",
            "beta.kubernetes.io/arch": "amd64", "node-role.kubernetes.io/control-plane": ""}},
        "spec": {"podCIDR": "10.244.0.0/24", "podCIDRs": ["10.244.0.0/24"]},
        "status": {
            "addresses": [{"type": "InternalIP", "address": runtime.node_ip},
                          {"type": "Hostname", "address": name}],
            "capacity": capacity, "allocatable": dict(capacity),
            "conditions": [
                cond("MemoryPressure", "False", "KubeletHasSufficientMemory",
                     "kubelet has sufficient memory available"),
                cond("DiskPressure", "False", "KubeletHasNoDiskPressure",
                     "kubelet has no disk pressure"),
                cond("PIDPressure", "False", "KubeletHasSufficientPID",
                     "kubelet has sufficient PID available"),
                cond("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "architecture": "amd64", "bootID": "embedded", "machineID": "embedded",
                "systemUUID": "embedded", "containerRuntimeVersion": "containerd://2.0.5",
                "kernelVersion": "6.1.0-embedded", "kubeProxyVersion": KUBELET_VERSION,
                "kubeletVersion": KUBELET_VERSION, "operatingSystem": "linux",
                "osImage": "pytest-istiolab embedded node"},
        },
    }


def kubernetes_service() -> Obj:
    return {"metadata": {"name": "kubernetes", "labels": {
        "component": "apiserver", "provider": "kubernetes"}},
        "spec": {"type": "ClusterIP", "clusterIP": KUBERNETES_SERVICE_IP,
                 "clusterIPs": [KUBERNETES_SERVICE_IP],
                 "ports": [{"name": "https", "port": 443, "protocol": "TCP",
                            "targetPort": 6443}],
                 "sessionAffinity": "None"}}


def kubernetes_endpoints(runtime: Runtime) -> Obj:
    return {"metadata": {"name": "kubernetes", "labels": {
        "endpointslice.kubernetes.io/skip-mirror": "true"}},
        "subsets": [{"addresses": [{"ip": runtime.node_ip}],
                     "ports": [{"name": "https", "port": 6443, "protocol": "TCP"}]}]}


def root_ca_configmap(ca_pem: str) -> Obj:
    return {"metadata": {"name": ROOT_CA_CONFIGMAP,
                         "annotations": {"kubernetes.io/description": (
                             "Contains a CA bundle that can be used to verify the "
                             "kube-apiserver when using internal endpoints such as the "
                             "internal service IP or kubernetes.default.svc. No other usage "
                             "is guaranteed across distributions of Kubernetes clusters.")}},
            "data": {"ca.crt": ca_pem}}


_CA_PEMS: dict[tuple[str, str], str] = {}


def cluster_ca_pem(common_name: str = "kubernetes", organization: str = "") -> str:
    """A self-signed CA certificate (EC P-256, made once per process and subject)."""
    key_id = (common_name, organization)
    if key_id not in _CA_PEMS:
        key = ec.generate_private_key(ec.SECP256R1())
        attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization)] if organization \
            else []
        if common_name:
            attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
        name = x509.Name(attrs)
        start = datetime.datetime.now(datetime.UTC)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(start).not_valid_after(start + datetime.timedelta(days=3650))
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .sign(key, hashes.SHA256()))
        _CA_PEMS[key_id] = cert.public_bytes(serialization.Encoding.PEM).decode()
    return _CA_PEMS[key_id]


def istio_root_ca_configmap() -> Obj:
    """What istiod writes into every namespace: its root certificate (``O=cluster.local``)."""
    return {"metadata": {"name": "istio-ca-root-cert", "labels": {"istio.io/config": "true"}},
            "data": {"root-cert.pem": cluster_ca_pem("", "cluster.local")}}
