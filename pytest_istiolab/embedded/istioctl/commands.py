"""The istioctl commands besides install: version, proxy-status, tag, x precheck, profile
list, kube-inject, analyze.

Versions are read as istioctl reads them: istiod's from its ``discovery`` image (what its
``:15014/version`` answers), a proxy's from its ``istio-proxy`` image (the ``ISTIO_VERSION``
of its xDS metadata), so a proxy keeps its version until its pod is recreated.
"""

from __future__ import annotations

import time
from typing import Any, TextIO

import yaml

from ..injection import (
    kube_inject_documents,
    kubelet_versions,
    native_by_default,
    values_from_configmaps,
)
from ..install.istiod import default_validator, tag_webhook
from ..install.profiles import ALL_PROFILES, ISTIO_VERSION, InstallSpec
from ..install.releases import version_of_image
from ..podspec import image_of, proxy_of
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
            if (p.get("status") or {}).get("phase") == "Running" and proxy_of(p) is not None]


def _ready(pod: Obj) -> bool:
    status = pod.get("status") or {}
    return status.get("phase") == "Running" and any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in status.get("conditions") or [])


def _image(pod: Obj, container: str) -> str:
    return image_of(pod, container)


def istiod_pods(backend: Backend, istio_ns: str, revision: str = "") -> list[Obj]:
    """Ready istiod pods (``app=istiod``), of one revision when ``revision`` is given."""
    found = [p for p in backend.list("v1", "Pod", istio_ns, "app=istiod") if _ready(p)]
    if revision:
        found = [p for p in found if pod_revision(p) == revision]
    return found


def pod_revision(pod: Obj) -> str:
    """The control-plane revision of an istiod or proxy pod (label, else the injector's
    ``istio.io/rev`` annotation)."""
    meta = pod.get("metadata") or {}
    return str((meta.get("labels") or {}).get("istio.io/rev")
               or (meta.get("annotations") or {}).get("istio.io/rev") or "default")


def proxy_version(pod: Obj) -> str:
    return version_of_image(_image(pod, "istio-proxy"))


def version(backend: Backend | None, out: TextIO, err: TextIO, istio_ns: str,
            client: str = ISTIO_VERSION, revision: str = "") -> int:
    """``istioctl version``: identical control planes are coalesced into one line, mixed ones
    are listed per istiod pod (``pilot version: ...``), proxies counted per version."""
    out.write(f"client version: {client}\n")
    if backend is None:
        return 0
    istiod = istiod_pods(backend, istio_ns, revision)
    if not istiod:
        err.write(f'no ready Istio pods in "{istio_ns}"\n')
        return 0
    versions = [version_of_image(_image(p, "discovery")) for p in istiod]
    if len(set(versions)) == 1:
        out.write(f"control plane version: {versions[0]}\n")
    else:
        for pod, ver in zip(istiod, versions):
            component = ((pod.get("metadata") or {}).get("labels") or {}).get("istio", "pilot")
            out.write(f"{component} version: {ver}\n")
    found = proxies(backend)
    if revision:
        found = [p for p in found if pod_revision(p) == revision]
    if found:
        counts: dict[str, int] = {}
        for pod in found:
            counts[proxy_version(pod)] = counts.get(proxy_version(pod), 0) + 1
        out.write("data plane version: " + ", ".join(
            f"{ver} ({n} proxies)" for ver, n in sorted(counts.items())) + "\n")
    return 0


def version_change_warning(backend: Backend, spec: InstallSpec, istio_ns: str,
                           err: TextIO) -> None:
    """istioctl's ``detectIstioVersionDiff``: installing over a control plane of the same
    revision but another version warns (upgrade or downgrade)."""
    try:
        pods = istiod_pods(backend, istio_ns, spec.rev_label)
    except ApiError:
        return
    tags = sorted(version_of_image(_image(p, "discovery")) for p in pods)
    if not tags or tags[-1] == spec.version:
        return
    current = tags[-1]
    word = "upgraded" if current < spec.version else "downgraded"
    overwrite = ("         Running this command will overwrite it; use revisions to upgrade "
                 "alongside the existing version.\n") if not spec.revision else ""
    err.write(f"WARNING: Istio is being {word} from {current} to {spec.version}.\n{overwrite}"
              "         Before upgrading, you may wish to use 'istioctl x precheck' to check "
              "for upgrade warnings.\n")


def _age(pod: Obj, now: float) -> str:
    """Go's ``duration.HumanDuration`` of the time since the pod started, for SYNCED (...)."""
    from datetime import datetime

    started = (pod.get("status") or {}).get("startTime") or \
        (pod.get("metadata") or {}).get("creationTimestamp")
    try:
        secs = max(0, int(now - datetime.fromisoformat(str(started).replace("Z", "+00:00"))
                          .timestamp()))
    except ValueError:
        secs = 0
    if secs < 120:
        return f"{secs}s"
    minutes = secs // 60
    if minutes < 10:
        return f"{minutes}m{secs % 60}s" if secs % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    return f"{minutes // 60}h{minutes % 60}m" if minutes % 60 else f"{minutes // 60}h"


def tabulate(rows: list[list[str]], padding: int) -> str:
    """Go's ``tabwriter`` with minwidth 0: every cell but a line's last padded to its
    column's width plus ``padding``."""
    widths = [max(len(r[i]) for r in rows if len(r) > i + 1) + padding
              for i in range(max(len(r) for r in rows) - 1)]
    return "".join("".join(c.ljust(widths[i]) if i < len(r) - 1 else c
                           for i, c in enumerate(r)) + "\n" for r in rows)


def proxy_status(backend: Backend, out: TextIO, istio_ns: str, pod_name: str | None = None,
                 namespace: str | None = None, revision: str = "") -> int:
    """``istioctl proxy-status``: every proxy connected to a ready istiod (its revision's),
    with that istiod and the proxy's own version. The embedded control plane pushes
    synchronously, so every type is ``SYNCED``; ECDS is ``IGNORED`` (nothing subscribes)."""
    istiods: dict[str, list[str]] = {}
    for pod in istiod_pods(backend, istio_ns, revision):
        istiods.setdefault(pod_revision(pod), []).append(pod["metadata"]["name"])
    rows, now = [], time.time()
    for pod in proxies(backend):
        meta = pod["metadata"]
        name = f"{meta['name']}.{meta.get('namespace', 'default')}"
        if namespace and meta.get("namespace") != namespace:
            continue
        if pod_name and pod_name not in (meta["name"], name):
            continue
        connected = sorted(istiods.get(pod_revision(pod), []))
        if not connected or not _ready(pod):
            continue  # no istiod of its revision: the proxy is not connected to any
        synced = f"SYNCED ({_age(pod, now)})"
        istiod = connected[sum(map(ord, meta["name"])) % len(connected)]
        rows.append([name, "Kubernetes", synced, synced, synced, synced, "IGNORED", istiod,
                     proxy_version(pod)])
    if pod_name and not rows:
        raise CommandError(f"could not find proxy {pod_name!r} connected to any istiod")
    rows.sort()
    head = ["NAME", "CLUSTER", "CDS", "LDS", "EDS", "RDS", "ECDS", "ISTIOD", "VERSION"]
    out.write(tabulate([head, *rows], 5))
    return 0


# ------------------------------------------------------------------- revision tags
_MWC = "admissionregistration.k8s.io/v1"


def _webhooks(backend: Backend, selector: str) -> list[Obj]:
    return backend.list(_MWC, "MutatingWebhookConfiguration", None, selector)


def tag_set(backend: Backend, out: TextIO, err: TextIO, tag: str, revision: str,
            overwrite: bool) -> int:
    if not revision:
        raise CommandError("revision to point tag to is required")
    canonical = [w for w in _webhooks(backend, f"istio.io/rev={revision}")
                 if "istio.io/tag" not in (w["metadata"].get("labels") or {})]
    if tag != "default" and not overwrite and [
            w for w in _webhooks(backend, f"istio.io/rev={tag}")
            if "istio.io/tag" not in (w["metadata"].get("labels") or {})]:
        raise CommandError(f'cannot create revision tag "{tag}": found existing control plane '
                           "revision with same name")
    if not canonical:
        raise CommandError("cannot modify tag: cannot find MutatingWebhookConfiguration with "
                           f'revision "{revision}"')
    if _webhooks(backend, f"istio.io/tag={tag}") and not overwrite:
        raise CommandError(f'revision tag "{tag}" already exists, and --overwrite is false')
    backend.apply(tag_webhook(tag, revision))
    if tag == "default":
        backend.apply(default_validator(revision))
    out.write(f'Revision tag "{tag}" created, referencing control plane revision "{revision}". '
              "To enable injection using this\nrevision tag, use 'kubectl label namespace "
              f"<NAMESPACE> istio.io/rev={tag}'\n")
    return 0


def tag_list(backend: Backend, out: TextIO) -> int:
    hooks = _webhooks(backend, "istio.io/rev")
    if not hooks:
        out.write("No Istio revision tag MutatingWebhookConfigurations to list\n")
        return 0
    rows: dict[tuple[str, str], list[str]] = {}
    for hook in hooks:
        labels = hook["metadata"].get("labels") or {}
        tag, rev = labels.get("istio.io/tag", ""), labels["istio.io/rev"]
        namespaces = sorted(n["metadata"]["name"] for n in backend.list(
            "v1", "Namespace", None, f"istio.io/rev={tag}")) if tag else []
        rows[(rev, tag)] = [tag, rev, ",".join(namespaces)]
    for rev, tag in list(rows):
        if tag:
            rows.pop((rev, ""), None)
    out.write(tabulate([["TAG", "REVISION", "NAMESPACES"],
                        *(rows[k] for k in sorted(rows))], 1))
    return 0


def tag_remove(backend: Backend, out: TextIO, tag: str) -> int:
    hooks = _webhooks(backend, f"istio.io/tag={tag}")
    if not hooks:
        raise CommandError(f'cannot remove tag "{tag}": cannot find MutatingWebhookConfiguration '
                           "for tag")
    for hook in hooks:
        backend.delete(_MWC, "MutatingWebhookConfiguration", hook["metadata"]["name"])
    out.write(f"Revision tag {tag} removed\n")
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


def kube_inject(backend: Backend, text: str, out: TextIO, istio_ns: str,
                revision: str = "") -> int:
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        raise CommandError(f"failed to parse input: {exc}") from exc
    suffix = f"-{revision}" if revision and revision != "default" else ""
    injector = backend.get("v1", "ConfigMap", "istio-sidecar-injector" + suffix, istio_ns)
    mesh = backend.get("v1", "ConfigMap", "istio" + suffix, istio_ns)
    if injector is None or mesh is None:
        missing = ("istio-sidecar-injector" if injector is None else "istio") + suffix
        raise CommandError(f'failed to get injection config: configmaps "{missing}" not found '
                           f'in namespace "{istio_ns}" (is Istio installed?)')
    values = values_from_configmaps(injector, mesh)
    # through the in-cluster injector (the default): native sidecars as the nodes allow
    values.native = native_by_default(values.version,
                                      kubelet_versions(backend.list("v1", "Node")))
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
