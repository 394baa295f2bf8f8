"""Where the embedded istioctl reads and writes: the Kubernetes API, or a Store in-process.

:class:`RestBackend` talks to any API server through the ``kubernetes`` client's REST layer
(server-side apply with field manager ``istio-operator``, as istioctl does; no discovery:
istioctl only touches the kinds in :data:`KINDS`). :class:`StoreBackend` does the same
against an embedded :class:`~..store.Store` directly (tests; no server needed).
"""

from __future__ import annotations

import json
from typing import Any, Protocol

Obj = dict[str, Any]

# (apiVersion, kind) -> (plural, namespaced)
KINDS: dict[tuple[str, str], tuple[str, bool]] = {
    ("v1", "Namespace"): ("namespaces", False),
    ("v1", "Node"): ("nodes", False),
    ("v1", "Pod"): ("pods", True),
    ("v1", "Service"): ("services", True),
    ("v1", "ConfigMap"): ("configmaps", True),
    ("v1", "Secret"): ("secrets", True),
    ("v1", "ServiceAccount"): ("serviceaccounts", True),
    ("apps/v1", "Deployment"): ("deployments", True),
    ("apps/v1", "DaemonSet"): ("daemonsets", True),
    ("apps/v1", "StatefulSet"): ("statefulsets", True),
    ("apps/v1", "ReplicaSet"): ("replicasets", True),
    ("rbac.authorization.k8s.io/v1", "Role"): ("roles", True),
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): ("rolebindings", True),
    ("rbac.authorization.k8s.io/v1", "ClusterRole"): ("clusterroles", False),
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): ("clusterrolebindings", False),
    ("policy/v1", "PodDisruptionBudget"): ("poddisruptionbudgets", True),
    ("autoscaling/v2", "HorizontalPodAutoscaler"): ("horizontalpodautoscalers", True),
    ("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration"):
        ("mutatingwebhookconfigurations", False),
    ("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration"):
        ("validatingwebhookconfigurations", False),
    ("apiextensions.k8s.io/v1", "CustomResourceDefinition"):
        ("customresourcedefinitions", False),
    ("networking.istio.io/v1alpha3", "EnvoyFilter"): ("envoyfilters", True),
    ("networking.istio.io/v1", "VirtualService"): ("virtualservices", True),
    ("networking.istio.io/v1", "DestinationRule"): ("destinationrules", True),
    ("networking.istio.io/v1", "Gateway"): ("gateways", True),
    ("networking.istio.io/v1", "ServiceEntry"): ("serviceentries", True),
}


class ApiError(Exception):
    """An API request that failed (``code`` 0: the server could not be reached)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


class Backend(Protocol):
    def server_version(self) -> str: ...
    def apply(self, obj: Obj) -> None: ...
    def get(self, api_version: str, kind: str, name: str, ns: str | None = None
            ) -> Obj | None: ...
    def list(self, api_version: str, kind: str, ns: str | None = None,
             selector: str | None = None) -> list[Obj]: ...
    def delete(self, api_version: str, kind: str, name: str, ns: str | None = None) -> bool: ...


def _kind(api_version: str, kind: str) -> tuple[str, bool]:
    try:
        return KINDS[(api_version, kind)]
    except KeyError:
        raise ApiError(400, f"the embedded istioctl does not handle {kind} ({api_version})"
                       ) from None


def path_for(api_version: str, kind: str, name: str | None, ns: str | None) -> str:
    plural, namespaced = _kind(api_version, kind)
    root = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
    where = f"/namespaces/{ns}" if namespaced and ns else ""
    return f"{root}{where}/{plural}" + (f"/{name}" if name else "")


USER_AGENT = "istioctl/1.26.0 (linux/amd64)"


class RestBackend:
    """The Kubernetes API through the ``kubernetes`` client (no discovery, short timeouts)."""

    FIELD_MANAGER = "istio-operator"

    def __init__(self, kubeconfig: str | None, context: str | None,
                 timeout: float = 10.0) -> None:
        import urllib3
        from kubernetes import client as k8s_client
        from kubernetes import config as k8s_config

        cfg = k8s_client.Configuration()
        cfg.retries = urllib3.Retry(total=0, connect=0, read=0, redirect=3)
        try:
            self.api = k8s_config.new_client_from_config(
                kubeconfig, context, persist_config=False, client_configuration=cfg)
        except Exception as err:  # noqa: BLE001 - ConfigException, OSError, YAML
            where = kubeconfig or "$KUBECONFIG or ~/.kube/config"
            raise ApiError(0, f"cannot load kubeconfig {where}: {err}") from err
        self.host = self.api.configuration.host
        self.api.user_agent = USER_AGENT  # client-go's "<binary>/<version> (<os>/<arch>)"
        self.timeout = (3.0, timeout)

    def _call(self, method: str, path: str, query: list[tuple[str, str]] | None = None,
              body: Any = None, content_type: str = "application/json") -> Any:
        import urllib3

        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = content_type
        try:
            request = self.api.param_serialize(method, path, query_params=query or [],
                                               header_params=headers, body=body,
                                               auth_settings=["BearerToken"])
            response = self.api.call_api(*request, _request_timeout=self.timeout)
            data = response.read()
        except (urllib3.exceptions.HTTPError, OSError) as err:
            raise ApiError(0, f"the Kubernetes API server {self.host} cannot be reached: "
                           f"{_reason(err)}") from err
        text = data.decode("utf-8", errors="replace") if data else ""
        if not 200 <= response.status <= 299:
            try:
                message = json.loads(text).get("message") or text
            except ValueError:
                message = text
            raise ApiError(response.status, str(message))
        return json.loads(text) if text else {}

    def server_version(self) -> str:
        return str(self._call("GET", "/version").get("gitVersion", "unknown"))

    def apply(self, obj: Obj) -> None:
        meta = obj["metadata"]
        path = path_for(obj["apiVersion"], obj["kind"], meta["name"], meta.get("namespace"))
        self._call("PATCH", path, [("fieldManager", self.FIELD_MANAGER), ("force", "true")],
                   obj, "application/apply-patch+yaml")

    def get(self, api_version: str, kind: str, name: str, ns: str | None = None) -> Obj | None:
        try:
            return dict(self._call("GET", path_for(api_version, kind, name, ns)))
        except ApiError as err:
            if err.code == 404:
                return None
            raise

    def list(self, api_version: str, kind: str, ns: str | None = None,
             selector: str | None = None) -> list[Obj]:
        query = [("labelSelector", selector)] if selector else []
        try:
            result = self._call("GET", path_for(api_version, kind, None, ns), query)
        except ApiError as err:
            if err.code == 404:
                return []  # the type does not exist (yet): nothing to list
            raise
        items = result.get("items") or []
        for item in items:
            item.setdefault("apiVersion", api_version)
            item.setdefault("kind", kind)
        return list(items)

    def delete(self, api_version: str, kind: str, name: str, ns: str | None = None) -> bool:
        try:
            self._call("DELETE", path_for(api_version, kind, name, ns),
                       body={"propagationPolicy": "Foreground"})
        except ApiError as err:
            if err.code == 404:
                return False
            raise
        return True


def _reason(err: BaseException) -> str:
    reason = getattr(err, "reason", None)
    return str(reason or err)


class StoreBackend:
    """The same operations against an embedded Store (no API server involved)."""

    def __init__(self, store: Any) -> None:
        from ..store import StoreError

        self.store = store
        self._error = StoreError

    def server_version(self) -> str:
        return "v1.33.1"

    def _rt(self, api_version: str, kind: str) -> Any:
        return self.store.type_for(api_version, kind)

    def apply(self, obj: Obj) -> None:
        rt = self._rt(obj["apiVersion"], obj["kind"])
        if rt is None:
            raise ApiError(404, f"no kind {obj['kind']} is registered for {obj['apiVersion']}")
        meta = obj["metadata"]
        ns = meta.get("namespace") if rt.namespaced else None
        try:
            if self.store.try_get(rt, ns, meta["name"]) is None:
                self.store.create(rt, obj, ns)
            else:
                self.store.mutate(rt, ns, meta["name"], lambda cur: _overlay(cur, obj))
        except self._error as err:
            raise ApiError(err.code, err.message) from err

    def get(self, api_version: str, kind: str, name: str, ns: str | None = None) -> Obj | None:
        rt = self._rt(api_version, kind)
        return None if rt is None else self.store.try_get(rt, ns if rt.namespaced else None, name)

    def list(self, api_version: str, kind: str, ns: str | None = None,
             selector: str | None = None) -> list[Obj]:
        rt = self._rt(api_version, kind)
        return [] if rt is None else list(self.store.list(rt, ns, selector)[0])

    def delete(self, api_version: str, kind: str, name: str, ns: str | None = None) -> bool:
        rt = self._rt(api_version, kind)
        if rt is None:
            return False
        try:
            self.store.delete(rt, ns if rt.namespaced else None, name)
        except self._error:
            return False
        return True


def _overlay(current: Obj, applied: Obj) -> Obj:
    """What a forced server-side apply of a complete object leaves: its fields, plus the
    server-owned ones (metadata bookkeeping, status, allocated Service fields)."""
    new = json.loads(json.dumps(applied))
    meta = new.setdefault("metadata", {})
    for key, value in current.get("metadata", {}).items():
        meta.setdefault(key, value)
    if "status" in current:
        new["status"] = current["status"]
    if current.get("kind") == "Service":
        spec, old = new.setdefault("spec", {}), current.get("spec") or {}
        for key in ("clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"):
            if key in old:
                spec.setdefault(key, old[key])
        old_ports = {p.get("name"): p for p in old.get("ports") or []}
        for port in spec.get("ports") or []:
            prev = old_ports.get(port.get("name")) or {}
            if "nodePort" in prev:
                port.setdefault("nodePort", prev["nodePort"])
    return new
