"""An existing cluster, addressed by an explicit kube context (platform teams validating upgrades).

What this does: resolves the kubeconfig (``--istio-kubeconfig``, else ``$KUBECONFIG`` — the first
file that defines the context when it lists several — else ``~/.kube/config``), insists on an
explicit context that the kubeconfig defines (a :class:`UsageError` listing the contexts
otherwise), and checks within a hard deadline (10 s) that the API server answers ``GET
/version`` with the kubernetes client, without retries. ``stop()`` does nothing: the cluster
is not ours; what the run creates in it is removed by the session's own cleanup.

Not done here: detecting Istio (the session reads it through the API after ``start()``), and
kubeconfigs whose context, cluster and user are spread over several ``$KUBECONFIG`` files.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import yaml
from kubernetes import client, config

from pytest_istiolab.cluster.providers.base import ClusterHandle
from pytest_istiolab.errors import ClusterError, UsageError

CONNECT_TIMEOUT = 3.0
READ_TIMEOUT = 5.0
DEADLINE = 10.0        # whole reachability check, including credential plugins
T = TypeVar("T")


class ExistingProvider:
    """A cluster that exists already; only an explicitly named context is ever used."""

    name = "existing"

    def __init__(self, context: str | None, kubeconfig: Path | None = None, *,
                 connect_timeout: float = CONNECT_TIMEOUT, read_timeout: float = READ_TIMEOUT,
                 deadline: float = DEADLINE) -> None:
        self.context, self.kubeconfig = context, kubeconfig
        self.timeouts = (connect_timeout, read_timeout)
        self.deadline = deadline

    def start(self) -> ClusterHandle:
        path, document = self._kubeconfig_defining(self.context)
        context = self._check_context(path, document)
        server = _server_of(document, context)
        version = _within(self.deadline, lambda: self._server_version(path, context),
                          lambda: _unreachable(context, server,
                                               f"no answer within {self.deadline:.0f} s"))
        return ClusterHandle(
            kubeconfig=path, context=context, provider=self.name,
            description=f"existing context {context} (server {server})",
            extra={"server": server, "server_version": version})

    def stop(self) -> None:
        """Nothing to remove: the cluster belongs to its owners."""

    # ------------------------------------------------------------------ kubeconfig
    def _candidates(self) -> list[Path]:
        if self.kubeconfig is not None:
            return [self.kubeconfig.expanduser()]
        env = os.environ.get("KUBECONFIG", "")
        paths = [Path(p).expanduser() for p in env.split(os.pathsep) if p]
        return paths or [Path.home() / ".kube" / "config"]

    def _kubeconfig_defining(self, context: str | None) -> tuple[Path, dict[str, Any]]:
        """The first existing kubeconfig that defines ``context`` (else the first existing)."""
        found = [p for p in self._candidates() if p.is_file()]
        folders = [p for p in self._candidates() if p.is_dir()]
        if not found and folders:
            raise UsageError(f"--istio-cluster=existing: kubeconfig {folders[0]} is a directory, "
                             "not a file", "pass --istio-kubeconfig the kubeconfig file in it "
                             f"(e.g. {folders[0] / 'config'})")
        if not found:
            shown = ", ".join(str(p) for p in self._candidates())
            raise UsageError(f"--istio-cluster=existing: kubeconfig {shown} does not exist",
                             "pass --istio-kubeconfig PATH or set KUBECONFIG")
        documents = [(p, _load(p)) for p in found]
        for path, document in documents:
            if context in _contexts(document):
                return path, document
        return documents[0]

    def _check_context(self, path: Path, document: dict[str, Any]) -> str:
        names = _contexts(document)
        listed = ", ".join(names) or "(none)"
        if not self.context:
            raise UsageError(f"--istio-cluster=existing needs --istio-context NAME; contexts in "
                             f"{path}: {listed}", "pass --istio-context with one of them")
        if self.context not in names:
            raise UsageError(f"context {self.context!r} is not in {path}; contexts there: "
                             f"{listed}", "pass one of those to --istio-context, or the right "
                             "--istio-kubeconfig")
        return self.context

    # ------------------------------------------------------------------ reachability
    def _server_version(self, path: Path, context: str) -> str:
        configuration = client.Configuration()
        try:
            config.load_kube_config(config_file=str(path), context=context,
                                    client_configuration=configuration, persist_config=False)
        except Exception as exc:  # noqa: BLE001 - ConfigException, exec plugins, bad certs
            raise UsageError(f"context {context!r} in {path} cannot be loaded: {exc}",
                             "fix the kubeconfig (check with `kubectl --context "
                             f"{context} version`)") from exc
        configuration.retries = 0            # one attempt: the deadline is the caller's
        server = configuration.host
        try:
            with client.ApiClient(configuration) as api:
                raw: Any = client.VersionApi(api).get_code(_request_timeout=self.timeouts,
                                                           _preload_content=False)
                info = json.loads(raw.data)
        except client.ApiException as exc:
            raise _unreachable(context, server, f"HTTP {exc.status} {exc.reason}",
                               _http_fix(exc.status, context)) from exc
        except Exception as exc:  # noqa: BLE001 - urllib3/ssl/socket errors, all "unreachable"
            raise _unreachable(context, server, _describe(exc)) from exc
        if not isinstance(info, dict) or "gitVersion" not in info:
            raise _unreachable(context, server, f"GET /version answered {str(info)[:200]!r}, "
                               "not a Kubernetes version", "check that the server is a "
                               "Kubernetes API server")
        return str(info["gitVersion"])


# ---------------------------------------------------------------------- helpers
def _load(path: Path) -> dict[str, Any]:
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except UnicodeDecodeError:
        raise UsageError(f"kubeconfig {path} is not a kubeconfig: it is not UTF-8 text (a "
                         "binary file?)", "pass the YAML kubeconfig to --istio-kubeconfig"
                         ) from None
    except (OSError, yaml.YAMLError) as exc:
        raise UsageError(f"kubeconfig {path} cannot be read: {exc}",
                         "pass a valid --istio-kubeconfig") from None
    if not isinstance(document, dict):
        raise UsageError(f"kubeconfig {path} is not a kubeconfig (no mapping at the top)",
                         "pass a valid --istio-kubeconfig")
    return document


def _contexts(document: dict[str, Any]) -> list[str]:
    return [str(c.get("name")) for c in document.get("contexts") or [] if isinstance(c, dict)]


def _server_of(document: dict[str, Any], context: str) -> str:
    entry: dict[str, Any] = next(
        (c for c in document.get("contexts") or [] if c.get("name") == context), {})
    cluster_name = (entry.get("context") or {}).get("cluster")
    cluster: dict[str, Any] = next((c for c in document.get("clusters") or []
                                    if c.get("name") == cluster_name), {})
    return str((cluster.get("cluster") or {}).get("server") or "(no server in the kubeconfig)")


def _within(seconds: float, work: Callable[[], T], on_timeout: Callable[[], Exception]) -> T:
    """Run ``work`` in a daemon thread; raise ``on_timeout()`` if it is not done in time."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = work()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            outcome["error"] = exc

    worker = threading.Thread(target=run, name="istiolab-reachability", daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        raise on_timeout()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]  # type: ignore[no-any-return]


def _unreachable(context: str, server: str, why: str, fix: str | None = None) -> ClusterError:
    return ClusterError(
        f"the API server of context {context!r} ({server}) is not usable: {why}",
        fix or f"check that the cluster runs and is reachable from here (VPN, proxy, firewall): "
               f"`kubectl --context {context} version`")


def _describe(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None) or exc
    text = str(reason)
    if "Connection refused" in text or "Errno 111" in text:
        return "connection refused"
    if "timed out" in text.lower():
        return f"no answer in time ({type(reason).__name__})"
    return f"{type(reason).__name__}: {text}"


def _http_fix(status: int | None, context: str) -> str:
    if status in (401, 403):
        return (f"the credentials of context {context!r} were refused: refresh them (e.g. your "
                "cloud CLI login) and retry")
    return f"check the server with `kubectl --context {context} version`"
