"""Runs one parsed istioctl command: connects to the cluster, prompts, prints."""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any, TextIO

import yaml

from .. import unmodelled
from ..install import InstallError, resolve
from ..install.istiod import mesh_config
from ..install.profiles import ISTIO_VERSION
from . import commands
from .backend import ApiError, Backend, RestBackend
from .installer import Installer

Obj = dict[str, Any]


def parse_duration(text: str) -> float:
    """Go durations as istioctl accepts them: ``300s``, ``5m``, ``1m30s``, ``500ms``."""
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", text.strip())
    if not parts or "".join(n + u for n, u in parts) != text.strip():
        raise InstallError(f'invalid argument "{text}" for "--readiness-timeout" flag: '
                           f'time: invalid duration "{text}"')
    scale = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    return sum(float(n) * scale[u] for n, u in parts)


def confirm(prompt: str, stdin: TextIO, out: TextIO) -> bool:
    out.write(prompt + " ")
    out.flush()
    answer = stdin.readline().strip().lower()
    return answer in ("y", "yes")


class Runner:
    def __init__(self, args: argparse.Namespace, stdin: TextIO, out: TextIO, err: TextIO,
                 backend: Backend | None, default_kubeconfig: str | None,
                 version: str = ISTIO_VERSION) -> None:
        self.args, self.stdin, self.out, self.err = args, stdin, out, err
        self._backend = backend
        self.default_kubeconfig = default_kubeconfig
        self.client_version = version

    @property
    def istio_ns(self) -> str:
        return getattr(self.args, "istio_namespace", None) or "istio-system"

    def backend(self) -> Backend:
        if self._backend is None:
            from .cli import kubeconfig_path

            backend = RestBackend(kubeconfig_path(self.args, self.default_kubeconfig),
                                  self.args.context)
            backend.server_version()  # fail fast (and clearly) when the server is unreachable
            self._backend = backend
        return self._backend

    def run(self) -> int:
        cmd = self.args.command
        sub = getattr(self.args, "subcommand", None)
        if cmd in ("install", "apply", "upgrade") or (cmd == "manifest" and sub == "apply"):
            return self.install()
        if cmd == "manifest" and sub == "generate":
            return self.generate()
        handlers = {"uninstall": self.uninstall, "version": self.version,
                    "x": self.precheck, "experimental": self.precheck,
                    "profile": lambda: commands.profile_list(self.out),
                    "kube-inject": self.kube_inject, "analyze": self.analyze,
                    "proxy-status": self.proxy_status, "ps": self.proxy_status,
                    "tag": self.tag,
                    "proxy-config": self.proxy_config, "pc": self.proxy_config}
        return handlers[cmd]()

    # ---------------------------------------------------------------- install
    def _operator(self) -> Obj | None:
        merged: Obj = {}
        for name in self.args.filename or []:
            text = Path(name).read_text() if name != "-" else self.stdin.read()
            doc = yaml.safe_load(text) or {}
            if doc.get("kind") != "IstioOperator":
                raise InstallError(f"{name}: expected an IstioOperator, got kind "
                                   f"{doc.get('kind')!r}")
            merged = _deep_merge(merged, doc)
        return merged or None

    def _spec(self) -> Any:
        from .cli import sets_of

        sets = sets_of(self.args.set or [])
        if getattr(self.args, "revision", ""):
            sets["revision"] = self.args.revision
        return resolve(None, sets, self._operator(), self.client_version)

    def install(self) -> int:
        from .cli import SAILBOAT

        if self.args.manifests:
            raise InstallError("--manifests is not modelled: the embedded cluster installs its "
                               f"built-in Istio {self.client_version} charts only")
        timeout = parse_duration(self.args.readiness_timeout)
        spec = self._spec()
        backend = self.backend()
        for notice in [*spec.notices, *(n.text for n in unmodelled.mesh_notes(
                mesh_config(spec), "meshConfig."))]:
            self.err.write(f"! {notice}\n")
        self.err.write(SAILBOAT + "\n")
        commands.version_change_warning(backend, spec, self.istio_ns, self.err)
        if self.args.dry_run:
            return 0
        if not self.args.skip_confirmation:
            prompt = (f'This will install the Istio {spec.version} profile "{spec.profile}" '
                      "into the cluster. Proceed? (y/N)")
            if not confirm(prompt, self.stdin, self.out):
                self.err.write("Cancelled.\n")
                return 1
        Installer(backend, self.out, self.err, timeout).install(spec)
        return 0

    def generate(self) -> int:
        from .cli import render_yaml, sets_of

        text = render_yaml(None, sets_of(self.args.set or []), self._operator(),
                           self.client_version)
        if self.args.output:
            Path(self.args.output).write_text(text)
        else:
            self.out.write(text)
        return 0

    def uninstall(self) -> int:
        if not self.args.purge:
            if not (self.args.revision or self.args.filename or self.args.set):
                raise commands.CommandError(
                    "at least one of the --revision (or --set revision=<revision>), "
                    "--filename or --purge flags must be set")
            if self.args.filename or self.args.set:
                raise commands.CommandError("uninstall by file or --set is not modelled by the "
                                            "embedded cluster; use --revision or --purge")
            return self.uninstall_revision(self.args.revision)
        backend = self.backend()
        self.out.write("All Istio resources will be pruned from the cluster\n")
        if not self.args.skip_confirmation and not confirm("Proceed? (y/N)", self.stdin,
                                                           self.out):
            self.err.write("Cancelled.\n")
            return 1
        self.out.write("\n")
        if not self.args.dry_run:
            Installer(backend, self.out, self.err).purge()
        return 0

    def uninstall_revision(self, revision: str) -> int:
        """``uninstall --revision R``: the revision's own objects (not the CRDs, not tags that
        point elsewhere), after istioctl's warnings about proxies and gateways still on it."""
        backend = self.backend()
        installer = Installer(backend, self.out, self.err)
        doomed = installer.revision_objects(revision)
        if not doomed:
            self.out.write("No resources will be pruned from the cluster. Please double check "
                           "the input configs\n")
            return 0
        attached = sorted(f"{p['metadata']['name']}.{p['metadata'].get('namespace', '')}"
                          for p in commands.proxies(backend)
                          if commands.pod_revision(p) == revision)
        message = ""
        if attached:
            message += (f"There are still {len(attached)} proxies pointing to the control plane "
                        f"revision {revision}\n" + "".join(f"{a}\n" for a in attached[:30]) +
                        "If you proceed with the uninstall, these proxies will become detached "
                        "from any control plane and will not function correctly.\n")
        gateways = sorted(o["metadata"]["name"] for o in doomed if o["kind"] == "Deployment"
                          and o["metadata"]["name"].endswith("gateway"))
        if gateways:
            message += (f"You are about to remove the following gateways: {', '.join(gateways)}."
                        " To avoid downtime, please quit this command and reinstall the "
                        "gateway(s) with a revision that is not being removed from the "
                        "cluster.\n")
        if self.args.dry_run or self.args.skip_confirmation:
            self.out.write(message)
        elif message and not confirm(message + "Proceed? (y/N)", self.stdin, self.out):
            self.err.write("Cancelled.\n")
            return 1
        if not self.args.dry_run:
            for obj in doomed:
                installer.remove(obj)
            self.err.write("✔ Uninstall complete\n")
        return 0

    # --------------------------------------------------------------- read-only
    def version(self) -> int:
        remote = str(self.args.remote).lower() != "false"
        if self.args.output == "json":
            raise commands.CommandError("version -o json is not modelled by the embedded "
                                        "cluster")
        return commands.version(self.backend() if remote else None, self.out, self.err,
                                self.istio_ns, self.client_version, self.args.revision)

    def proxy_status(self) -> int:
        return commands.proxy_status(self.backend(), self.out, self.istio_ns, self.args.pod,
                                     self.args.namespace, self.args.revision)

    def tag(self) -> int:
        sub = self.args.subcommand
        if sub == "list":
            if self.args.output != "table":
                raise commands.CommandError("tag list -o json/yaml is not modelled by the "
                                            "embedded cluster")
            return commands.tag_list(self.backend(), self.out)
        if sub == "set":
            return commands.tag_set(self.backend(), self.out, self.err, self.args.tag,
                                    self.args.revision, self.args.overwrite)
        return commands.tag_remove(self.backend(), self.out, self.args.tag)

    def precheck(self) -> int:
        return commands.precheck(self.backend(), self.out)

    def kube_inject(self) -> int:
        unsupported = [f for f in ("meshConfigFile", "injectConfigFile", "valuesFile")
                       if getattr(self.args, f, None)]
        if unsupported:
            raise commands.CommandError(f"kube-inject --{unsupported[0]} is not modelled by the "
                                        "embedded cluster (it reads the injector config from "
                                        "the cluster)")
        name = self.args.filename
        try:
            text = self.stdin.read() if name == "-" else Path(name).read_text()
        except OSError as exc:
            raise commands.CommandError(f"open {name}: {exc.strerror or exc}") from exc
        if self.args.output:
            with open(self.args.output, "w") as fh:
                return commands.kube_inject(self.backend(), text, fh, self.istio_ns,
                                            self.args.revision)
        return commands.kube_inject(self.backend(), text, self.out, self.istio_ns,
                                    self.args.revision)

    def analyze(self) -> int:
        ns = None if self.args.all_namespaces else (self.args.namespace or "default")
        extra = []
        for name in self.args.files:
            for doc in yaml.safe_load_all(Path(name).read_text()):
                if isinstance(doc, dict):
                    doc.setdefault("metadata", {}).setdefault("namespace", ns or "default")
                    extra.append(doc)
        return commands.analyze(self.backend(), ns, self.out, self.err, extra)

    def proxy_config(self) -> int:
        self.err.write("proxy-config is not modelled by the embedded cluster\n")
        return 1


def _deep_merge(a: Obj, b: Obj) -> Obj:
    out = dict(a)
    for key, value in b.items():
        out[key] = _deep_merge(out[key], value) if isinstance(value, dict) and isinstance(
            out.get(key), dict) else value
    return out


__all__ = ["ApiError", "Runner", "parse_duration"]
