"""Istio on the cluster: what is installed, the install policy, the run's plan, install.

``--istio-install`` decides what a run does about Istio:

* ``if-missing`` (default): when istiod runs, the installed mesh is tested as it is, and a
  version other than ``--istio-version`` is reported (header, terminal summary), never fixed;
  otherwise ``istioctl x precheck`` then ``istioctl install --set profile=P -y``;
* ``always``: install (or upgrade/reinstall) with the profile, whatever is there;
* ``never``: test what is there; a cluster without istiod is an error naming the fix.

What is installed is read through the API: the ``istiod`` Deployment in ``istio-system`` and its
``discovery`` container image tag (``docker.io/istio/pilot:1.26.0`` -> 1.26.0). Without an
``istiod`` (a revision-based install, e.g. after a canary upgrade removed the default
revision), the ``istiod-<rev>`` the ``default`` revision tag points at, else the newest one.
Meshes in another namespace are not detected.

An Istio the run installs stays installed at the end: it is the mesh under test, the plan says
so up front, and a later run finds it and tests it as is.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pytest_istiolab.cluster import ClusterHandle, ClusterSession
from pytest_istiolab.constants import LABEL_MANAGED, LABEL_RUN
from pytest_istiolab.deploy.controlplane import ControlPlane, serving_control_plane
from pytest_istiolab.errors import ClusterError
from pytest_istiolab.istioctl import IstioVersion
from pytest_istiolab.kube import Kube, ObjectRef
from pytest_istiolab.kube.manifests import load
from pytest_istiolab.settings import Settings
from pytest_istiolab.timeouts import Timeouts

ISTIO_NAMESPACE = "istio-system"
ISTIOD = "istiod"
_TAG_VERSION = re.compile(r"^v?(\d+\.\d+(?:\.\d+)?)")


@dataclass(frozen=True)
class FoundIstio:
    """What the cluster runs: istiod's image, and the version read from its tag."""

    image: str | None = None

    @property
    def present(self) -> bool:
        return self.image is not None

    @property
    def version(self) -> str | None:
        if not self.image or ":" not in self.image.rsplit("/", 1)[-1]:
            return None
        match = _TAG_VERSION.match(self.image.rsplit(":", 1)[1])
        return match.group(1) if match else None

    def describe(self) -> str:
        if not self.present:
            return f"Istio is not installed (no Deployment {ISTIOD} in {ISTIO_NAMESPACE})"
        version = self.version or "of unknown version"
        return f"found Istio {version} in {ISTIO_NAMESPACE} (istiod image {self.image})"


def find_istio(kube: Kube) -> FoundIstio:
    """istiod's image, read from its Deployment (``FoundIstio()`` when there is none)."""
    deployment = kube.get("apps/v1", "Deployment", ISTIOD, ISTIO_NAMESPACE) or \
        _revisioned_istiod(kube)
    if deployment is None:
        return FoundIstio()
    containers = deployment["spec"]["template"]["spec"].get("containers") or []
    chosen = next((c for c in containers if c.get("name") == "discovery"),
                  containers[0] if containers else {})
    return FoundIstio(str(chosen.get("image") or "(no image)"))


def _revisioned_istiod(kube: Kube) -> dict[str, Any] | None:
    """The ``istiod-<rev>`` Deployment of the default tag's revision, else the newest."""
    found = [d for d in kube.list("apps/v1", "Deployment", ISTIO_NAMESPACE, "app=istiod")
             if d["metadata"]["name"].startswith(ISTIOD + "-")]
    if not found:
        return None
    tag = kube.get("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration",
                   "istio-revision-tag-default")
    default = ((tag or {}).get("metadata", {}).get("labels") or {}).get("istio.io/rev")
    chosen = [d for d in found if (d["metadata"].get("labels") or {}).get("istio.io/rev")
              == default]

    def version(d: dict[str, Any]) -> tuple[int, ...]:
        image = (d["spec"]["template"]["spec"].get("containers") or [{}])[0].get("image", "")
        tag_version = FoundIstio(str(image)).version or "0"
        return tuple(int(x) for x in tag_version.split(".") if x.isdigit())
    return (chosen or sorted(found, key=version))[-1]


def not_installed(where: str) -> ClusterError:
    return ClusterError(f"Istio is not installed on {where} (no Deployment {ISTIOD} in "
                        f"{ISTIO_NAMESPACE}) and --istio-install=never",
                        "pass --istio-install=if-missing|always to let the run install it, or "
                        "install Istio first")


def version_mismatch(found: FoundIstio, settings: Settings) -> str | None:
    """The warning for a mesh tested as is whose version is not ``--istio-version``."""
    if not found.present or settings.install == "always" or found.version == settings.version:
        return None
    seen = found.version or f"of unknown version (image {found.image})"
    return (f"WARNING: Istio {seen} is installed but --istio-version is {settings.version}: "
            "the installed mesh is tested as it is (Lab 1's version check will fail); pass "
            f"--istio-install=always to install {settings.version}, or "
            f"--istio-version={found.version or 'X'} to test what is there")


@dataclass(frozen=True)
class RunPlan:
    """What a run found and what it will change: header lines, and warnings for the summary."""

    lines: tuple[str, ...]
    warnings: tuple[str, ...] = ()


def plan_run(settings: Settings, handle: ClusterHandle, found: FoundIstio) -> RunPlan:
    """The plan for ``handle``'s cluster; ClusterError when ``never`` meets a bare cluster."""
    where = handle.description
    if settings.install == "never" and not found.present:
        raise not_installed(f"context {handle.context}")
    server = handle.extra.get("server_version")
    lines = [f"istiolab: {where}" + (f", Kubernetes {server}" if server else ""),
             f"istiolab: {found.describe()}",
             f"istiolab: this run will {_install_action(settings, found)}",
             f"istiolab: this run will create namespaces labelled {LABEL_MANAGED}="
             f"pytest-istiolab and {_keep_action(settings.keep)}",
             "istiolab: mesh-wide changes (Labs 3.4, 7, 9.1) "
             + ("are skipped (--istio-read-only)" if settings.read_only else
                "are recorded and restored at the end of their lab")]
    warning = version_mismatch(found, settings)
    return RunPlan(tuple(lines) + ((f"istiolab: {warning}",) if warning else ()),
                   (warning,) if warning else ())


def inspect_cluster(settings: Settings, handle: ClusterHandle) -> RunPlan:
    """Read what Istio ``handle``'s cluster runs and plan the run (one API request)."""
    timeouts = Timeouts.for_handle(handle).scaled(settings.timeout_scale)
    kube = Kube(handle.kubeconfig, handle.context, timeouts)
    try:
        found = find_istio(kube)
    finally:
        kube.close()
    return plan_run(settings, handle, found)


def _install_action(settings: Settings, found: FoundIstio) -> str:
    target = f"Istio {settings.version} profile {settings.profile}"
    if settings.install == "always":
        verb = "reinstall/upgrade to" if found.present else "install"
        return f"{verb} {target} with istioctl (--istio-install=always); it stays installed"
    if found.present:
        return f"test the installed mesh as it is, no install (--istio-install={settings.install})"
    return f"install {target} with istioctl (--istio-install=if-missing); it stays installed"


def _keep_action(keep: str) -> str:
    if keep == "always":
        return "keep them (--istio-keep=always)"
    if keep == "on-failure":
        return "delete them at the end unless a test in them failed (--istio-keep=on-failure)"
    return "delete them at the end (--istio-keep=never)"


@dataclass
class IstioInstallation:
    """The mesh a run tests, and what installing it printed (when this run installed it)."""

    session: ClusterSession
    profile: str
    precheck: subprocess.CompletedProcess[str] | None
    install: subprocess.CompletedProcess[str] | None
    found: FoundIstio = field(default_factory=FoundIstio)
    warnings: tuple[str, ...] = ()
    _control_plane: ControlPlane | None = field(default=None, repr=False)

    @property
    def installed_by_run(self) -> bool:
        return self.install is not None

    def version(self) -> IstioVersion:
        return self.session.istioctl.version()

    def control_plane(self) -> ControlPlane:
        """The control plane injecting the labs' namespaces (read once, then kept)."""
        if self._control_plane is None:
            self._control_plane = serving_control_plane(self.session.kube)
        return self._control_plane

    def mesh_config(self) -> dict:
        """The ``mesh`` key of the mesh ConfigMap, parsed (what istiod serves to proxies):
        ``istio``, or ``istio-<rev>`` of :meth:`control_plane` on a revision-based mesh."""
        kube = self.session.kube
        cm = kube.get("v1", "ConfigMap", self.control_plane().mesh_configmap, ISTIO_NAMESPACE)
        return yaml.safe_load(((cm or {}).get("data") or {}).get("mesh") or "") or {}

    def wait_ready(self) -> None:
        self.session.kube.wait_for_deployments(ISTIO_NAMESPACE)

    def wait_rolled_out(self) -> None:
        """After a reinstall: istiod and the gateways rolled out, no old pod left serving."""
        self.session.kube.wait_for_rollouts(ISTIO_NAMESPACE)


def ensure_istio(session: ClusterSession, profile: str) -> IstioInstallation:
    """Apply the run's install policy (``session.settings.install``, see the module docstring).

    One process's view: xdist workers sharing a cluster agree on who installs through
    :class:`pytest_istiolab.deploy.runinstall.RunInstall`, which uses the same two steps."""
    found = find_istio(session.kube)
    installation = tested_as_is(session, profile, found) or install_istio(session, profile, found)
    installation.wait_ready()
    return installation


def tested_as_is(session: ClusterSession, profile: str,
                 found: FoundIstio) -> IstioInstallation | None:
    """The installed mesh when the policy tests it as it is, None when an install is due;
    ClusterError for ``never`` on a cluster without Istio."""
    settings = session.settings
    if settings.install == "never" and not found.present:
        raise not_installed(f"context {session.handle.context} ({session.handle.description})")
    if not found.present or settings.install == "always":
        return None
    warning = version_mismatch(found, settings)
    return IstioInstallation(session, profile, None, None, found, (warning,) if warning else ())


def install_istio(session: ClusterSession, profile: str,
                  found: FoundIstio) -> IstioInstallation:
    """``istioctl x precheck``, then ``istioctl install --set profile=P -y`` (not waited for)."""
    ctl = session.istioctl
    precheck = ctl.precheck()
    return IstioInstallation(session, profile, precheck, ctl.install(profile), found)


class Addons:
    """The observability addons, added where missing; only what the run added is removed.

    A cluster that has them already (a platform team's, or one kept from an earlier run) is
    tested with its own: an object that exists is left exactly as it is, never re-applied or
    deleted. Each object the run creates is recorded *before* its request, so an interrupted
    run (Ctrl-C mid-apply) still removes it (deleting what is missing is fine).

    With a ``run_id``, what the run creates carries ``istiolab.io/run=<run id>``, and cleanup
    also removes the manifests' objects carrying it: under xdist on a shared cluster another
    worker of the same run may have created them (this one found them). Deciding *when* to
    clean up (the last worker using them) is the caller's part (the ``addons`` fixture).
    """

    def __init__(self, kube: Kube, manifests: Iterable[str | Path],
                 namespace: str = ISTIO_NAMESPACE, run_id: str | None = None) -> None:
        self.kube, self.manifests, self.namespace = kube, list(manifests), namespace
        self.run_id = run_id
        self.created: list[ObjectRef] = []
        self.found: list[ObjectRef] = []

    def install(self) -> Addons:
        for doc in self._docs():
            ref = self.kube.ref_for(doc, self.namespace)
            if self.kube.get(ref.api_version, ref.kind, ref.name, ref.namespace) is not None:
                self.found.append(ref)
                continue
            self.created.append(ref)
            self.kube.apply([self._labelled(doc)], self.namespace)
        self.kube.wait_for_deployments(self.namespace)
        self.kube.wait_for_statefulsets(self.namespace)
        return self

    def cleanup(self) -> None:
        created, self.created = set(self.created), []
        refs = [ref for ref in (self.kube.ref_for(doc, self.namespace) for doc in self._docs())
                if ref in created or self._ours(ref)]
        self.kube.delete_all(refs)  # newest first

    def _docs(self) -> list[dict[str, Any]]:
        return [doc for manifest in self.manifests for doc in load(manifest)]

    def _labelled(self, doc: dict[str, Any]) -> dict[str, Any]:
        if not self.run_id:
            return doc
        meta = dict(doc.get("metadata") or {})
        meta["labels"] = {**(meta.get("labels") or {}), LABEL_RUN: self.run_id}
        return {**doc, "metadata": meta}

    def _ours(self, ref: ObjectRef) -> bool:
        """Whether the live object carries this run's label."""
        if not self.run_id:
            return False
        obj = self.kube.get(ref.api_version, ref.kind, ref.name, ref.namespace)
        labels = ((obj or {}).get("metadata") or {}).get("labels") or {}
        return bool(labels.get(LABEL_RUN) == self.run_id)
