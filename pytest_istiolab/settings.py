"""Settings: what the user asked for (options, ini keys, environment variables), validated."""

from __future__ import annotations

import os
import re
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pytest_istiolab import constants as c
from pytest_istiolab.errors import UsageError

Lookup = Callable[[c.Option], "str | None"]


@dataclass(frozen=True)
class Settings:
    """Everything a run needs to know before it touches a cluster."""

    profile: str = c.DEFAULT_PROFILE
    version: str = c.DEFAULT_ISTIO_VERSION
    cluster: str = "embedded"
    context: str | None = None
    kubeconfig: Path | None = None
    keep: str = "never"
    istioctl: str | None = None
    seed: int = 0
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:6])  # same on xdist workers
    worker: str = ""  # the xdist worker id ("gw0"), empty in a run without workers
    workdir: Path = Path(".")
    install: str = "if-missing"
    kind_name: str | None = None
    kind_image: str | None = None
    offline: bool = False
    release_url: str | None = None
    read_only: bool = False
    external_host: str = c.DEFAULT_EXTERNAL_HOST
    jwt_source: str = "local"
    realism: bool = False  # the embedded cluster's realism profile
    timeout_scale: float = 1.0  # every named timeout multiplied by it
    test_timeout: float = 900.0  # seconds per test phase, already scaled; 0: no bound

    @property
    def scope_id(self) -> str:
        """The run id of what belongs to this process alone (its lab namespaces): the run id,
        plus the worker id under xdist, where workers share the run id and may share a cluster."""
        return f"{self.run_id}{self.worker}"

    @property
    def run_dir(self) -> Path:
        """The directory all processes of the run share: the controller's workdir (an xdist
        worker's workdir is inside it, see the plugin)."""
        return self.workdir.parent if self.worker else self.workdir

    @property
    def capabilities(self) -> frozenset[str]:
        return c.PROFILE_CAPABILITIES.get(self.profile, frozenset())

    @property
    def cluster_kubeconfig(self) -> Path | None:
        """Where the kubeconfig is (or will be, for clusters the run creates)."""
        if self.cluster == "existing":
            return self.kubeconfig or default_kubeconfig()
        return self.workdir / self.cluster / "kubeconfig"

    def header(self) -> str:
        seed = f", seed {self.seed}" if self.cluster == "embedded" else ""
        seed += ", realism on" if self.realism else ""
        context = f", context {self.context}" if self.context else ""
        return (f"istiolab: cluster {self.cluster}{context}, Istio {self.version}, "
                f"profile {self.profile}{seed}, kubeconfig {self.cluster_kubeconfig}")


def default_kubeconfig() -> Path:
    env = os.environ.get("KUBECONFIG", "")
    first = env.split(os.pathsep)[0] if env else ""
    return Path(first) if first else Path.home() / ".kube" / "config"


def from_lookup(get: Lookup, workdir: Path, run_id: str | None = None,
                worker: str = "") -> Settings:
    """Build and validate settings; ``get(option)`` returns the raw value (option > ini > env).

    ``run_id``: the controller's, on an xdist worker (a new one otherwise)."""
    profile = _choice(get(c.OPT_PROFILE) or c.DEFAULT_PROFILE, c.ISTIO_PROFILES, c.OPT_PROFILE)
    cluster = _choice(get(c.OPT_CLUSTER) or "embedded", c.CLUSTER_PROVIDERS, c.OPT_CLUSTER)
    keep = _choice(get(c.OPT_KEEP) or "never", c.KEEP_CHOICES, c.OPT_KEEP)
    version = (get(c.OPT_VERSION) or c.DEFAULT_ISTIO_VERSION).lstrip("v")
    if not _looks_like_version(version):
        raise UsageError(f"{c.OPT_VERSION.flag}={version!r} is not an Istio version",
                         f"pass a release such as {c.DEFAULT_ISTIO_VERSION}")
    external_host = _host_name(get(c.OPT_EXTERNAL_HOST) or c.DEFAULT_EXTERNAL_HOST)
    jwt_source = _choice(get(c.OPT_JWT_SOURCE) or "local", c.JWT_SOURCES, c.OPT_JWT_SOURCE)
    if cluster == "embedded":
        _check_embedded(profile, version)
        _check_embedded_host(external_host)
        if jwt_source == "remote":
            raise UsageError(f"{c.OPT_JWT_SOURCE.flag}=remote needs internet from istiod, and "
                             "the embedded cluster has none (its istiod cannot fetch the "
                             "manual's jwksUri)", f"drop {c.OPT_JWT_SOURCE.flag}, or use it "
                             "on a real cluster")
    if cluster == "existing" and not get(c.OPT_CONTEXT):
        raise UsageError(f"{c.OPT_CLUSTER.flag}=existing needs an explicit context: the suite "
                         "never picks the current context of a real cluster by itself",
                         f"pass {c.OPT_CONTEXT.flag} NAME (see `kubectl config get-contexts`)")
    install = _choice(get(c.OPT_INSTALL) or "if-missing", c.INSTALL_CHOICES, c.OPT_INSTALL)
    read_only = _flag(get(c.OPT_READ_ONLY), c.OPT_READ_ONLY)
    if read_only and install == "always":
        raise UsageError(f"{c.OPT_READ_ONLY.flag}=true and {c.OPT_INSTALL.flag}=always "
                         "contradict: a read-only run never installs Istio",
                         f"drop one of them ({c.OPT_INSTALL.flag}=if-missing tests the mesh "
                         "that is installed)")
    realism = _choice(get(c.OPT_EMBEDDED_REALISM) or "off", c.REALISM_CHOICES,
                      c.OPT_EMBEDDED_REALISM) == "on"
    if realism and cluster != "embedded":
        raise UsageError(f"{c.OPT_EMBEDDED_REALISM.flag}=on is a profile of the embedded cluster, "
                         f"not of {cluster} (a real cluster is real already)",
                         f"drop {c.OPT_EMBEDDED_REALISM.flag}, or run with "
                         f"{c.OPT_CLUSTER.flag}=embedded")
    scale = _number(get(c.OPT_TIMEOUT_SCALE), c.OPT_TIMEOUT_SCALE, positive=True)
    test_timeout = _number(get(c.OPT_TEST_TIMEOUT), c.OPT_TEST_TIMEOUT, positive=False)
    kubeconfig = get(c.OPT_KUBECONFIG)
    return Settings(
        profile=profile, version=version, cluster=cluster, context=get(c.OPT_CONTEXT) or None,
        kubeconfig=Path(kubeconfig).expanduser() if kubeconfig else None, keep=keep,
        istioctl=get(c.OPT_ISTIOCTL) or None, seed=_seed(get(c.OPT_SEED)), workdir=workdir,
        install=install,
        kind_name=get(c.OPT_KIND_NAME) or None, kind_image=get(c.OPT_KIND_IMAGE) or None,
        offline=_flag(get(c.OPT_OFFLINE), c.OPT_OFFLINE),
        release_url=get(c.OPT_RELEASE_URL) or None,
        read_only=read_only, external_host=external_host,
        jwt_source=jwt_source, realism=realism, timeout_scale=scale,
        test_timeout=test_timeout * scale,
        worker=worker, **({"run_id": run_id} if run_id else {}),
    )


def _number(raw: str | None, opt: c.Option, *, positive: bool) -> float:
    text = (raw if raw not in (None, "") else opt.default) or "0"
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (value > 0 if positive else value >= 0) or value != value or value == float("inf"):
        what = "a number above 0" if positive else "a number of seconds (0: no bound)"
        raise UsageError(f"{opt.flag}={raw!r} is not {what}",
                         f"pass e.g. {opt.flag}={'3' if positive else '900'}")
    return value


def _flag(raw: str | None, opt: c.Option) -> bool:
    value = (raw or "false").strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise UsageError(f"{opt.flag}={raw!r} is not true or false", f"pass {opt.flag}=true")


def _choice(value: str, valid: tuple[str, ...], opt: c.Option) -> str:
    if value not in valid:
        raise UsageError(f"{opt.flag}={value!r} is not one of the valid values: {', '.join(valid)}",
                         f"pass one of them, e.g. {opt.flag}={opt.default or valid[0]}")
    return value


def _check_embedded(profile: str, version: str) -> None:
    if profile not in c.EMBEDDED_PROFILES:
        reason = c.EMBEDDED_PROFILE_LIMITS.get(profile, "it is not modelled")
        raise UsageError(
            f"the embedded cluster cannot run profile {profile!r}: {reason}",
            f"run it on a real cluster ({c.OPT_CLUSTER.flag}=existing --istio-context NAME), "
            f"or pick a profile the embedded cluster models: {', '.join(c.EMBEDDED_PROFILES)}")
    if version not in c.EMBEDDED_ISTIO_VERSIONS:
        raise UsageError(f"the embedded cluster models Istio "
                         f"{', '.join(c.EMBEDDED_ISTIO_VERSIONS)}, not {version}",
                         f"pass one of those to {c.OPT_VERSION.flag}, or test {version} on a "
                         "real cluster")


def _seed(raw: str | None) -> int:
    if raw in (None, ""):
        return secrets.randbelow(2**31)
    try:
        seed = int(str(raw))
    except ValueError:
        raise UsageError(f"{c.OPT_SEED.flag}={raw!r} is not an integer",
                         f"pass a whole number, e.g. {c.OPT_SEED.flag}=1234") from None
    if not 0 <= seed < 2**32:
        raise UsageError(f"{c.OPT_SEED.flag}={raw!r} is out of range (0 to {2**32 - 1})",
                         f"pass a whole number in that range, e.g. {c.OPT_SEED.flag}=1234")
    return seed


def _host_name(raw: str) -> str:
    host = raw.strip().lower().rstrip(".")
    labels = host.split(".")
    if not all(re.fullmatch(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?", label) for label in labels):
        raise UsageError(f"{c.OPT_EXTERNAL_HOST.flag}={raw!r} is not a DNS host name",
                         f"pass a host name such as {c.DEFAULT_EXTERNAL_HOST} (no scheme, port "
                         "or path)")
    return host


def _check_embedded_host(host: str) -> None:
    if host not in c.EMBEDDED_EXTERNAL_HOSTS:
        raise UsageError(f"the embedded cluster models only {', '.join(c.EMBEDDED_EXTERNAL_HOSTS)} "
                         f"as an external host, not {host}",
                         f"drop {c.OPT_EXTERNAL_HOST.flag}, or use it on a real cluster")


def _looks_like_version(v: str) -> bool:
    parts = v.split("-")[0].split(".")
    return len(parts) in (2, 3) and all(p.isdigit() for p in parts)
