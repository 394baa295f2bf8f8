"""Istio 1.26 installation profiles and ``--set`` / IstioOperator overlays.

Modelled profiles: ``default`` (istiod + ingress gateway), ``demo`` (+ egress gateway,
access log to stdout, tracing sampling 100, the demo extension providers, small proxy
requests), ``minimal`` (istiod) and ``empty`` (nothing). Other 1.26 profiles exist
(``istioctl profile list`` shows them) but are refused with the reason.

Overlay paths: ``profile``, ``meshConfig.*`` (also ``values.meshConfig.*``, merged into
meshConfig as istioctl does), ``components.<c>.enabled`` (``base``, ``pilot``,
``ingressGateways[0]``/``[name:istio-ingressgateway]``, ``egressGateways[...]``),
``values.*`` (kept; those the embedded cluster does not act on are reported as notices),
``hub``/``tag`` (only the modelled values are accepted), ``revision`` (a DNS label; istiod,
its Service, ConfigMaps and webhooks are then named ``<name>-<revision>``).

The version installed is the istioctl's own (``version``, one of
:data:`.releases.MODELLED_VERSIONS`), as with real istioctl binaries.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from typing import Any

from .releases import DEFAULT_VERSION, MODELLED_VERSIONS, Release, release

ISTIO_VERSION = DEFAULT_VERSION
REVISION_RE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
ALL_PROFILES = ("ambient", "default", "demo", "empty", "minimal", "openshift",
                "openshift-ambient", "preview", "remote", "stable")
MODELLED_PROFILES = ("default", "demo", "minimal", "empty")
__all__ = ["ALL_PROFILES", "ISTIO_VERSION", "MODELLED_PROFILES", "MODELLED_VERSIONS",
           "PROFILE_LIMITS", "InstallError", "InstallSpec", "resolve"]
PROFILE_LIMITS = {
    "ambient": "ambient mode (ztunnel, waypoint proxies, istio-cni) is not modelled",
    "openshift-ambient": "ambient mode (ztunnel, waypoint proxies, istio-cni) is not modelled",
    "openshift": "OpenShift security constraints and istio-cni are not modelled",
    "preview": "preview features are not modelled",
    "remote": "multicluster (a remote cluster without its own control plane) is not modelled",
    "stable": "the 'stable' profile's feature gates are not modelled",
}
COMPONENTS = ("base", "pilot", "ingressGateways", "egressGateways")
# values.* paths the embedded cluster acts on
ACTED_VALUES = ("global.proxy.resources", "global.proxy.logLevel",
                "global.proxy.componentLogLevel", "global.meshID",
                "global.multiCluster.clusterName", "pilot.traceSampling",
                "pilot.autoscaleEnabled", "gateways.istio-ingressgateway.autoscaleEnabled",
                "gateways.istio-egressgateway.autoscaleEnabled")

Obj = dict[str, Any]


class InstallError(ValueError):
    """A profile, path or value the embedded istioctl cannot install."""


@dataclass
class InstallSpec:
    """The fully resolved installation: what istioctl renders from."""

    profile: str
    components: dict[str, bool]
    mesh_config: Obj
    values: Obj
    notices: list[str] = field(default_factory=list)
    version: str = ISTIO_VERSION
    revision: str = ""  # "" is the default revision
    # components.ingressGateways[0].namespace (Helm's layout puts it in istio-ingress)
    ingress_namespace: str = "istio-system"

    def enabled(self, component: str) -> bool:
        return self.components.get(component, False)

    @property
    def release(self) -> Release:
        return release(self.version)

    @property
    def rev_label(self) -> str:
        """The ``istio.io/rev`` value of what this installs."""
        return self.revision or "default"

    def named(self, name: str) -> str:
        """``istiod`` -> ``istiod-<revision>`` for a revisioned install."""
        return f"{name}-{self.revision}" if self.revision else name


DEMO_PROVIDERS = [
    {"name": "otel", "envoyOtelAls": {
        "service": "opentelemetry-collector.observability.svc.cluster.local", "port": 4317}},
    {"name": "skywalking", "skywalking": {
        "service": "tracing.istio-system.svc.cluster.local", "port": 11800}},
    {"name": "otel-tracing", "opentelemetry": {
        "port": 4317, "service": "opentelemetry-collector.observability.svc.cluster.local"}},
    {"name": "jaeger", "opentelemetry": {
        "port": 4317, "service": "jaeger-collector.istio-system.svc.cluster.local"}},
]


def _base_values(version: str) -> Obj:
    return {
        "global": {"proxy": {"resources": {"requests": {"cpu": "100m", "memory": "128Mi"},
                                           "limits": {"cpu": "2000m", "memory": "1024Mi"}},
                             "logLevel": "warning", "componentLogLevel": "misc:error"},
                   "meshID": "", "multiCluster": {"clusterName": ""},
                   "hub": "docker.io/istio", "tag": version},
        "pilot": {"autoscaleEnabled": True, "traceSampling": 1.0,
                  "resources": {"requests": {"cpu": "500m", "memory": "2048Mi"}}},
        "gateways": {"istio-ingressgateway": {"autoscaleEnabled": True},
                     "istio-egressgateway": {"autoscaleEnabled": True}},
    }


def profile_spec(profile: str, version: str = ISTIO_VERSION) -> InstallSpec:
    """The unmodified spec of a modelled profile."""
    if profile not in ALL_PROFILES:
        raise InstallError(f'could not read profile "{profile}": the Istio {version} '
                           f"profiles are: {', '.join(ALL_PROFILES)}")
    if profile not in MODELLED_PROFILES:
        raise InstallError(f'the embedded cluster does not model the "{profile}" profile: '
                           f"{PROFILE_LIMITS[profile]} (it models: "
                           f"{', '.join(MODELLED_PROFILES)})")
    try:
        release(version)
    except ValueError as err:
        raise InstallError(str(err)) from None
    values = _base_values(version)
    mesh: Obj = {}
    comps = {"base": True, "pilot": True, "ingressGateways": True, "egressGateways": False}
    if profile == "demo":
        comps["egressGateways"] = True
        mesh = {"accessLogFile": "/dev/stdout", "extensionProviders": copy.deepcopy(DEMO_PROVIDERS)}
        values["global"]["proxy"]["resources"]["requests"] = {"cpu": "10m", "memory": "40Mi"}
        values["pilot"].update(autoscaleEnabled=False, traceSampling=100,
                               resources={"requests": {"cpu": "10m", "memory": "100Mi"}})
        for gw in values["gateways"].values():
            gw["autoscaleEnabled"] = False
    elif profile == "minimal":
        comps.update(ingressGateways=False)
    elif profile == "empty":
        comps = dict.fromkeys(COMPONENTS, False)
    return InstallSpec(profile, comps, mesh, values, version=version)


def parse_value(raw: Any) -> Any:
    """``--set`` values: true/false, integers and floats are typed; quotes are stripped."""
    if not isinstance(raw, str):
        return raw
    text = raw.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        return text[1:-1]
    if text in ("true", "false"):
        return text == "true"
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    if re.fullmatch(r"-?\d+\.\d+", text):
        return float(text)
    return text


def split_path(path: str) -> list[str]:
    """``a.b\\.c.d`` -> [a, b.c, d] (istioctl escapes dots in keys with a backslash)."""
    parts, cur, i = [], "", 0
    while i < len(path):
        if path[i] == "\\" and i + 1 < len(path):
            cur += path[i + 1]
            i += 2
            continue
        if path[i] == ".":
            parts.append(cur)
            cur = ""
        else:
            cur += path[i]
        i += 1
    parts.append(cur)
    return parts


def set_path(target: Obj, parts: list[str], value: Any) -> None:
    for key in parts[:-1]:
        nxt = target.get(key)
        if not isinstance(nxt, dict):
            nxt = target[key] = {}
        target = nxt
    target[parts[-1]] = value


def resolve(profile: str | None = None, sets: dict[str, Any] | None = None,
            operator: Obj | None = None, version: str = ISTIO_VERSION) -> InstallSpec:
    """Profile, then an IstioOperator ``spec`` (``-f``), then ``--set`` paths, in that order;
    ``version`` is the istioctl's (what it installs)."""
    sets = dict(sets or {})
    op_spec = (operator or {}).get("spec") or {}
    name = str(sets.pop("profile", None) or op_spec.get("profile") or profile or "default")
    spec = profile_spec(name, version)
    for key, val in op_spec.items():
        if key == "profile":
            continue
        if key in ("meshConfig", "values", "components"):
            for path, leaf in _flatten(val, key):
                _apply(spec, path, leaf)
        else:
            _apply(spec, key, val)
    for path, raw in sets.items():
        _apply(spec, path, parse_value(raw))
    return spec


def _flatten(value: Any, prefix: str) -> list[tuple[str, Any]]:
    if isinstance(value, dict) and value and prefix.count(".") < 8 and not _is_leaf(prefix):
        out = []
        for k, v in value.items():
            out += _flatten(v, f"{prefix}.{str(k).replace('.', chr(92) + '.')}")
        return out
    if isinstance(value, list) and prefix.startswith("components."):
        return [pair for i, v in enumerate(value) for pair in _flatten(v, f"{prefix}[{i}]")]
    return [(prefix, value)]


def _is_leaf(prefix: str) -> bool:
    return prefix.endswith((".resources", ".proxyMetadata", "extensionProviders"))


_GATEWAY_RE = re.compile(r"^components\.(ingressGateways|egressGateways)"
                         r"\[(?:0|name:istio-(?:ingress|egress)gateway)\]\.(.+)$")


def _apply(spec: InstallSpec, path: str, value: Any) -> None:
    parts = split_path(path)
    head = parts[0]
    if head == "meshConfig" and len(parts) > 1:
        set_path(spec.mesh_config, parts[1:], value)
    elif head == "values" and len(parts) > 2 and parts[1] == "meshConfig":
        set_path(spec.mesh_config, parts[2:], value)
    elif head == "values" and len(parts) > 1:
        set_path(spec.values, parts[1:], value)
        dotted = ".".join(parts[1:])
        if not any(dotted == a or dotted.startswith(a + ".") for a in ACTED_VALUES):
            spec.notices.append(f"values.{dotted}={value} is accepted but the embedded "
                                "cluster does not act on it")
    elif head == "components":
        _apply_component(spec, path, value)
    elif head == "hub":
        if str(value) != "docker.io/istio":
            raise InstallError(f"hub {value} is not modelled: the embedded cluster runs only "
                               "docker.io/istio images")
    elif head == "tag":
        if str(value).lstrip("v") != spec.version:
            raise InstallError(f"tag {value} is not modelled: this istioctl installs Istio "
                               f"{spec.version} (its own charts and images); to install "
                               f"{value}, run that version's istioctl (the embedded cluster "
                               f"provides bin/istioctl-<version>)")
    elif head == "revision":
        rev = str(value)
        if rev == "default":
            rev = ""
        if rev and not REVISION_RE.match(rev):
            raise InstallError(f'invalid revision "{value}": a revision is a DNS label '
                               '(lower-case letters, digits and "-", e.g. 1-26-8)')
        spec.revision = rev
    elif head in ("namespace", "installPackagePath"):
        if head == "namespace" and str(value) != "istio-system":
            raise InstallError("only the istio-system namespace is modelled")
    else:
        raise InstallError(f'unknown field "{head}" in IstioOperator spec (--set {path})')


def _apply_component(spec: InstallSpec, path: str, value: Any) -> None:
    m = _GATEWAY_RE.match(path)
    if m:
        comp, attr = m.group(1), m.group(2)
    else:
        parts = split_path(path)
        if len(parts) < 3 or parts[1] not in COMPONENTS:
            raise InstallError(f"--set {path}: the embedded cluster models components.<c>."
                               f"enabled for {', '.join(COMPONENTS)} (gateways by index 0 or "
                               "by name) only")
        comp, attr = parts[1], ".".join(parts[2:])
    if attr == "name":
        return
    if attr == "namespace":
        ns = str(value)
        if comp == "egressGateways":
            if ns != "istio-system":
                raise InstallError(f"--set {path}={value}: the embedded cluster does not model "
                                   "an egress gateway outside istio-system (only the ingress "
                                   "gateway's namespace is modelled)")
            return
        if comp == "ingressGateways":
            if not REVISION_RE.match(ns):
                raise InstallError(f'--set {path}={value}: "{value}" is not a valid '
                                   "namespace name (a DNS label)")
            spec.ingress_namespace = ns
            return
    if attr != "enabled":
        spec.notices.append(f"{path}={value} is accepted but the embedded cluster does not "
                            "act on it")
        return
    spec.components[comp] = bool(value)
