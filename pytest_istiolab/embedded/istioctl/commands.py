"""The read-only istioctl commands: version, x precheck, profile list, kube-inject, analyze."""

from __future__ import annotations

from typing import Any, TextIO

import yaml

from ..injection import kube_inject_documents, values_from_configmaps
from ..install.profiles import ALL_PROFILES, ISTIO_VERSION
from .backend import ApiError, Backend

Obj = dict[str, Any]
ANALYSIS_DOCS = f"https://istio.io/v{ISTIO_VERSION.rsplit('.', 1)[0]}/docs/reference/config/" \
    "analysis"
ANALYZE_FAILED_EXIT = 79


class CommandError(Exception):
    """A command failure: printed as ``Error: <message>``, exit code ``code``."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.message, self.code = message, code


def proxies(backend: Backend) -> list[Obj]:
    """Running pods that carry an Istio proxy (sidecars and gateways), all namespaces."""
    return [p for p in backend.list("v1", "Pod")
            if (p.get("status") or {}).get("phase") == "Running"
            and any(c.get("name") == "istio-proxy" for c in (p.get("spec") or {}).get(
                "containers") or [])]


def version(backend: Backend | None, out: TextIO, err: TextIO, istio_ns: str) -> int:
    out.write(f"client version: {ISTIO_VERSION}\n")
    if backend is None:
        return 0
    istiod = [p for p in backend.list("v1", "Pod", istio_ns, "app=istiod")
              if (p.get("status") or {}).get("phase") == "Running"]
    if not istiod:
        err.write(f'no ready Istio pods in "{istio_ns}"\n')
        return 0
    out.write(f"control plane version: {ISTIO_VERSION}\n")
    count = len(proxies(backend))
    if count:
        out.write(f"data plane version: {ISTIO_VERSION} ({count} proxies)\n")
    return 0


def precheck(backend: Backend, out: TextIO) -> int:
    server = backend.server_version()
    minor = int("".join(ch for ch in server.split(".")[1] if ch.isdigit()) or 0) \
        if server.count(".") >= 1 else 0
    if minor and minor < 29:
        out.write(f"Error [IST0136] The Kubernetes version {server} is not supported by Istio "
                  f"{ISTIO_VERSION}. The minimum supported Kubernetes version is 1.29.\n")
        return 1
    out.write("✔ No issues found when checking the cluster. Istio is safe to install or "
              "upgrade!\n  To get started, check out "
              "https://istio.io/latest/docs/setup/getting-started/\n")
    return 0


def profile_list(out: TextIO) -> int:
    out.write("Istio configuration profiles:\n")
    for name in ALL_PROFILES:
        out.write(f"    {name}\n")
    return 0


def kube_inject(backend: Backend, text: str, out: TextIO, istio_ns: str) -> int:
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        raise CommandError(f"failed to parse input: {exc}") from exc
    injector = backend.get("v1", "ConfigMap", "istio-sidecar-injector", istio_ns)
    mesh = backend.get("v1", "ConfigMap", "istio", istio_ns)
    if injector is None or mesh is None:
        missing = "istio-sidecar-injector" if injector is None else "istio"
        raise CommandError(f'failed to get injection config: configmaps "{missing}" not found '
                           f'in namespace "{istio_ns}" (is Istio installed?)')
    values = values_from_configmaps(injector, mesh)
    injected = kube_inject_documents(docs, values)
    out.write("---\n".join(yaml.safe_dump(d, sort_keys=False) for d in injected))
    return 0


def analyze(backend: Backend, namespace: str | None, out: TextIO, err: TextIO,
            extra: list[Obj] | None = None) -> int:
    """IST0101: VirtualServices referencing a missing Gateway or DestinationRule subset."""
    def objs(kind: str) -> list[Obj]:
        found = backend.list("networking.istio.io/v1", kind, namespace)
        found += [o for o in extra or [] if o.get("kind") == kind]
        return found
    gateways = {(o["metadata"].get("namespace", "default"), o["metadata"]["name"])
                for o in objs("Gateway")}
    subsets: dict[tuple[str, str], set[str]] = {}
    for dr in objs("DestinationRule"):
        ns = dr["metadata"].get("namespace", "default")
        host = _fqdn((dr.get("spec") or {}).get("host", ""), ns)
        names = {s.get("name") for s in (dr.get("spec") or {}).get("subsets") or []}
        subsets.setdefault((ns, host), set()).update(n for n in names if n)
    messages = []
    for vs in objs("VirtualService"):
        messages += _check_vs(vs, gateways, subsets)
    where = f"namespace: {namespace}" if namespace else "all namespaces"
    if not messages:
        out.write(f"✔ No validation issues found when analyzing {where}.\n")
        return 0
    out.write("".join(m + "\n" for m in sorted(messages)))
    err.write(f"Error: Analyzers found issues when analyzing {where}.\nSee {ANALYSIS_DOCS} "
              "for more information about causes and resolutions.\n")
    return ANALYZE_FAILED_EXIT


def _fqdn(host: str, ns: str) -> str:
    return host if "." in host or host == "*" else f"{host}.{ns}.svc.cluster.local"


def _check_vs(vs: Obj, gateways: set[tuple[str, str]],
              subsets: dict[tuple[str, str], set[str]]) -> list[str]:
    ns = vs["metadata"].get("namespace", "default")
    name = vs["metadata"]["name"]
    spec = vs.get("spec") or {}
    where = f"(VirtualService {ns}/{name})"
    out = []
    for gw in spec.get("gateways") or []:
        if gw == "mesh":
            continue
        gw_ns, _, gw_name = gw.rpartition("/")
        if (gw_ns or ns, gw_name) not in gateways:
            out.append(f'Error [IST0101] {where} Referenced gateway not found: "{gw}"')
    for route in [*(spec.get("http") or []), *(spec.get("tcp") or []), *(spec.get("tls") or [])]:
        for dest in route.get("route") or []:
            d = dest.get("destination") or {}
            subset = d.get("subset")
            if subset is None:
                continue
            host = _fqdn(d.get("host", ""), ns)
            known = set().union(*(names for (_, h), names in subsets.items() if h == host)) \
                if subsets else set()
            if subset not in known:
                out.append(f"Error [IST0101] {where} Referenced host+subset in "
                           f'destinationrule not found: "{d.get("host")}+{subset}"')
    return out


def describe_api_error(err: ApiError) -> str:
    return err.message
