"""The only way pytest-istiolab talks to a cluster: a small wrapper over the kubernetes client.

Works the same against the embedded cluster, kind and an existing cluster. Design points:

* Objects are plain JSON dicts. Everything goes through the DynamicClient (found by apiVersion and
  kind via discovery, cached in a private file) or raw API paths: typed models are strict and
  would reject Istio resources and newer fields.
* ``apply`` is server-side apply (``fieldManager=pytest-istiolab``, ``force=true``), so applying
  the same manifest twice is harmless and a manifest's fields win over earlier ones.
* Every request has a timeout (``Timeouts.api_request``) and connections are retried at most
  once, so an unreachable server fails in seconds with the context and server named. A 429
  is retried after its ``Retry-After``, a 500 on a write after a short back-off
  (:func:`retry_throttled`), on every request of the client, the DynamicClient's too; not
  the 500 that server-side apply answers for a field the schema does not declare (the same
  body fails the same way every time).
* ``exec`` uses a dedicated ApiClient: ``kubernetes.stream`` patches ``call_api`` of the client
  it is given while connecting, which would break other threads' requests on a shared one.
* Every apply, delete and exec is reported to ``on_command`` (description, output) so failure
  reports can show what was run and what it printed.

Mixed in here: waiting for readiness (``wait``), exec (``podexec``), namespaces, pods, events and
logs (``pods``); status reading lives in ``status``, object references in ``refs``.
"""

from __future__ import annotations

import copy
import json
import logging
import shutil
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from functools import cached_property
from pathlib import Path
from typing import Any

import urllib3
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config
from kubernetes.client.rest import ApiException
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import ResourceNotFoundError, ResourceNotUniqueError

from pytest_istiolab.constants import FIELD_MANAGER
from pytest_istiolab.errors import ClusterError
from pytest_istiolab.kube.podexec import ExecMixin, ExecResult
from pytest_istiolab.kube.pods import PodsMixin
from pytest_istiolab.kube.refs import ObjectRef, RefList, status_message
from pytest_istiolab.kube.wait import WaitMixin
from pytest_istiolab.timeouts import Timeouts
from pytest_istiolab.waiting import poll_until

__all__ = ["ExecResult", "Kube", "ObjectRef", "status_message"]

Obj = dict[str, Any]
ObjList = list[Obj]
CommandHook = Callable[[str, str], None]
_TRANSPORT_ERRORS = (urllib3.exceptions.HTTPError, OSError)
log = logging.getLogger(__name__)


class Kube(WaitMixin, ExecMixin, PodsMixin):
    """One cluster (kubeconfig + context): apply, get, list, delete, wait, exec, logs, events."""

    def __init__(self, kubeconfig: Path | str | None, context: str | None = None,
                 timeouts: Timeouts | None = None) -> None:
        self.timeouts = timeouts or Timeouts()
        self.kubeconfig = Path(kubeconfig) if kubeconfig else None
        self.on_command: CommandHook | None = None
        self.api_client = self._new_client(context)
        self._exec_client = self._new_client(context)
        self._exec_lock = threading.Lock()
        self._discovery_lock = threading.RLock()
        self._resources: dict[tuple[str, str], Any] = {}
        self._cache_dir: str | None = None
        self._cleanup: weakref.finalize | None = None  # removes the discovery cache
        self.context_name = context or self._current_context()
        self.server = self.api_client.configuration.host

    # ------------------------------------------------------------------ connection
    def new_api_client(self) -> k8s_client.ApiClient:
        """A dedicated ApiClient for this cluster (streams patch the client they are given)."""
        return self._new_client(self.context_name)

    def _new_client(self, context: str | None) -> k8s_client.ApiClient:
        cfg = k8s_client.Configuration()
        # 429/500 are retried by retry_throttled (urllib3 would raise on a Retry-After instead)
        cfg.retries = urllib3.Retry(total=1, connect=1, read=0, status=0, redirect=3,
                                    respect_retry_after_header=False)
        path = str(self.kubeconfig) if self.kubeconfig else None
        try:
            api = k8s_config.new_client_from_config(path, context, persist_config=False,
                                                    client_configuration=cfg)
        except Exception as err:  # ConfigException, OSError, YAML errors
            where = path or "the default kubeconfig ($KUBECONFIG or ~/.kube/config)"
            raise ClusterError(f"cannot load kubeconfig {where} (context {context or 'current'})"
                               f": {err}", "point --istio-kubeconfig/--istio-context at a "
                               "valid kubeconfig and context") from err
        _default_request_timeout(api, self._timeout())
        return api

    def _current_context(self) -> str:
        try:
            _, current = k8s_config.list_kube_config_contexts(
                str(self.kubeconfig) if self.kubeconfig else None)
            return str(current["name"])
        except Exception:  # noqa: BLE001 - only used for messages
            return "(current)"

    def _timeout(self, read: float | None = None) -> tuple[float, float]:
        """(connect, read) timeouts: with one connect retry the total stays under api_request."""
        api = self.timeouts.api_request
        return (api / 4, read if read is not None else api / 2)

    def _unreachable(self, err: BaseException) -> ClusterError:
        return ClusterError(
            f"cannot reach the Kubernetes API server {self.server} (context {self.context_name})"
            f": {type(err).__name__}: {err}",
            f"check that the cluster is running and reachable: kubectl --context "
            f"{self.context_name} version")

    def ping(self) -> str:
        """The server's version (``v1.33.1``); ClusterError naming context and server if not."""
        try:
            version = self._call("GET", "/version")
        except ApiException as err:
            raise ClusterError(f"the API server {self.server} (context {self.context_name}) "
                               f"answered /version with {status_message(err)}",
                               "check the credentials in the kubeconfig") from err
        return str(version.get("gitVersion", "unknown"))

    def _call(self, method: str, path: str, *, query: Iterable[tuple[str, Any]] = (),
              body: Any = None, content_type: str | None = None,
              accept: str = "application/json", raw: bool = False,
              timeout: tuple[float, float] | None = None) -> Any:
        """One API request on ``api_client``; JSON (or text with ``raw``), ApiException on >=300."""
        headers = {"Accept": accept}
        if body is not None:
            headers["Content-Type"] = content_type or "application/json"
        try:
            request = self.api_client.param_serialize(
                method, path, query_params=list(query), header_params=headers, body=body,
                auth_settings=["BearerToken"])
            response = self.api_client.call_api(*request, _request_timeout=timeout)
            data = response.read()
        except _TRANSPORT_ERRORS as err:
            raise self._unreachable(err) from err
        if not 200 <= response.status <= 299:
            raise ApiException(http_resp=response)
        text = data.decode("utf-8", errors="replace") if data else ""
        return text if raw else (json.loads(text) if text else {})

    def raw_get(self, path: str, query: Iterable[tuple[str, Any]] = ()) -> Obj:
        """GET any API path (``/apis``, ``/api/v1``) as JSON."""
        return self._call("GET", path, query=query)

    @cached_property
    def dynamic(self) -> DynamicClient:
        """The DynamicClient (discovery cached in a private temp file, never shared)."""
        self._cache_dir = tempfile.mkdtemp(prefix="istiolab-discovery-")
        self._cleanup = weakref.finalize(self, shutil.rmtree, self._cache_dir, True)
        try:
            return DynamicClient(self.api_client,
                                 cache_file=str(Path(self._cache_dir) / "discovery.json"))
        except _TRANSPORT_ERRORS as err:
            raise self._unreachable(err) from err

    def close(self) -> None:
        """Release connections and the discovery cache."""
        for api in (self.api_client, self._exec_client):
            api.close()
        if self._cleanup is not None:
            self._cleanup()

    def _record(self, description: str, output: str) -> None:
        if self.on_command is not None:
            self.on_command(description, output)

    # ------------------------------------------------------------------ discovery
    def resource(self, api_version: str, kind: str) -> Any:
        """The discovered API resource for ``api_version``/``kind`` (retried once for new CRDs)."""
        key = (api_version, kind)
        with self._discovery_lock:
            if key in self._resources:
                return self._resources[key]
            found = self._discover(api_version, kind)
            if found is None and self._crd_exists(api_version, kind):
                poll_until(lambda: self._discover(api_version, kind) is not None,
                           timeout=self.timeouts.api_request,
                           interval=self.timeouts.poll_interval)
                found = self._discover(api_version, kind)
            if found is None:
                raise ClusterError(
                    f"the cluster does not serve kind {kind} in {api_version}: "
                    "is the CRD installed?",
                    "install what defines it (Istio kinds come with the Istio installation), "
                    "or correct apiVersion/kind in the manifest")
            self._resources[key] = found
            return found

    def _discover(self, api_version: str, kind: str) -> Any:
        try:
            return self.dynamic.resources.get(api_version=api_version, kind=kind)
        except (ResourceNotFoundError, ResourceNotUniqueError):
            return None
        except _TRANSPORT_ERRORS as err:
            raise self._unreachable(err) from err

    def _crd_exists(self, api_version: str, kind: str) -> bool:
        group = api_version.rpartition("/")[0]
        if not group:
            return False
        crds = self._call("GET", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions")
        return any(c.get("spec", {}).get("group") == group
                   and c.get("spec", {}).get("names", {}).get("kind") == kind
                   for c in crds.get("items") or [])

    def _path(self, api_version: str, kind: str, name: str | None = None,
              namespace: str | None = None) -> str:
        res = self.resource(api_version, kind)
        return str(res.path(name=name, namespace=namespace if res.namespaced else None))

    def table(self, api_version: str, kind: str, namespace: str | None = None) -> Obj:
        """The server's printed columns for a list (what ``kubectl get`` shows), as a Table.

        ``namespace`` None lists every namespace (``kubectl get -A``).
        """
        path = self._path(api_version, kind, namespace=namespace)
        try:
            return dict(self._call("GET", path,
                                   accept="application/json;as=Table;v=v1;g=meta.k8s.io"))
        except ApiException as err:
            raise self._api_error(f"list {kind}", err) from err

    def ref_for(self, doc: Obj, namespace: str | None = None) -> ObjectRef:
        """The reference of a manifest document (namespace filled in for namespaced kinds)."""
        api_version, kind, name = _identity(doc)
        doc_ns = (doc.get("metadata") or {}).get("namespace")
        try:
            namespaced = self.resource(api_version, kind).namespaced
        except ClusterError:
            namespaced = bool(doc_ns or namespace)
        ns = (doc_ns or namespace or "default") if namespaced else None
        return ObjectRef(api_version, kind, name, ns)

    # ------------------------------------------------------------------ objects
    def apply(self, docs: ObjList, namespace: str | None = None) -> RefList:
        """Server-side apply each document; the references, in order."""
        return [self._apply_one(doc, namespace) for doc in docs]

    def _apply_one(self, doc: Obj, namespace: str | None) -> ObjectRef:
        ref = self.ref_for(doc, namespace)
        body = copy.deepcopy(doc)
        if ref.namespace:
            body.setdefault("metadata", {})["namespace"] = ref.namespace
        path = self._path(ref.api_version, ref.kind, ref.name, ref.namespace)
        try:
            self._call("PATCH", path, body=body, content_type="application/apply-patch+yaml",
                       query=[("fieldManager", FIELD_MANAGER), ("force", "true")])
        except ApiException as err:
            self._record(f"apply {ref}", f"error: {status_message(err)}")
            raise ClusterError(f"apply {ref} failed: {status_message(err)}",
                               "correct the manifest (the API server's message says what it "
                               "rejected)") from err
        self._record(f"apply {ref}", "serverside-applied")
        return ref

    def get(self, api_version: str, kind: str, name: str,
            namespace: str | None = None) -> Obj | None:
        """The object, or None when it does not exist (namespaced kinds default to ``default``)."""
        try:
            return self._call("GET", self._path(api_version, kind, name, namespace or "default"))
        except ApiException as err:
            if err.status == 404:
                return None
            raise self._api_error(f"get {ObjectRef(api_version, kind, name, namespace)}",
                                  err) from err

    def merge_patch(self, api_version: str, kind: str, name: str, namespace: str | None,
                    patch: Obj) -> Obj:
        """``kubectl patch --type merge -p PATCH``: the object as patched."""
        ref = ObjectRef(api_version, kind, name, namespace)
        try:
            result = self._call("PATCH", self._path(api_version, kind, name, namespace),
                                body=patch, content_type="application/merge-patch+json")
        except ApiException as err:
            self._record(f"patch {ref}", f"error: {status_message(err)}")
            raise self._api_error(f"patch {ref}", err) from err
        self._record(f"patch {ref}", "patched")
        return result

    def list(self, api_version: str, kind: str, namespace: str | None = None,
             label_selector: str | None = None) -> ObjList:
        """Objects of a kind (all namespaces when ``namespace`` is None), items completed with
        ``apiVersion`` and ``kind``."""
        return self._list(api_version, kind, namespace, label_selector)[0]

    def _list(self, api_version: str, kind: str, namespace: str | None,
              label_selector: str | None) -> tuple[ObjList, str]:
        query = [("labelSelector", label_selector)] if label_selector else []
        try:
            result = self._call("GET", self._path(api_version, kind, None, namespace),
                                query=query)
        except ApiException as err:
            raise self._api_error(f"list {kind} in {namespace or 'all namespaces'}",
                                  err) from err
        items = result.get("items") or []
        for item in items:
            item.setdefault("apiVersion", api_version)
            item.setdefault("kind", kind)
        return items, str((result.get("metadata") or {}).get("resourceVersion", ""))

    def delete(self, ref: ObjectRef, wait: bool = True) -> None:
        """Delete ``ref`` (already gone is fine); with ``wait``, until it no longer exists."""
        if self._delete_request(ref) and wait:
            self._wait_deleted([ref])

    def delete_all(self, refs: Iterable[ObjectRef], wait: bool = True) -> None:
        """Delete every ref, last first (reverse of apply order), then wait for all to go."""
        ordered = [*reversed([*refs])]
        present = [ref for ref in ordered if self._delete_request(ref)]
        if wait:
            self._wait_deleted(present)

    def _delete_request(self, ref: ObjectRef) -> bool:
        """True when a delete was issued, False when the object (or its kind) was already gone."""
        try:
            path = self._path(ref.api_version, ref.kind, ref.name, ref.namespace)
        except ClusterError:
            self._record(f"delete {ref}", "kind not served: nothing to delete")
            return False
        try:
            self._call("DELETE", path, query=[("propagationPolicy", "Background")])
        except ApiException as err:
            if err.status == 404:
                self._record(f"delete {ref}", "not found")
                return False
            self._record(f"delete {ref}", f"error: {status_message(err)}")
            raise self._api_error(f"delete {ref}", err) from err
        self._record(f"delete {ref}", "deleted")
        return True

    def _wait_deleted(self, refs: RefList) -> None:
        remaining: RefList = [*refs]

        def gone() -> bool:
            remaining[:] = [r for r in remaining
                            if self.get(r.api_version, r.kind, r.name, r.namespace) is not None]
            return not remaining

        if not poll_until(gone, timeout=self.timeouts.delete,
                          interval=self.timeouts.poll_interval):
            details = []
            for ref in remaining:
                obj = self.get(ref.api_version, ref.kind, ref.name, ref.namespace) or {}
                finalizers = (obj.get("metadata") or {}).get("finalizers") or []
                details.append(f"{ref} (finalizers: {', '.join(finalizers) or 'none'})")
            raise ClusterError(f"still present {self.timeouts.delete:g} s after delete: "
                               + "; ".join(details),
                               "look for finalizers or controllers that recreate them")

    def _api_error(self, what: str, err: ApiException) -> ClusterError:
        return ClusterError(f"{what} failed: {status_message(err)}",
                            "check the object and your permissions on the cluster")


def _identity(doc: Obj) -> tuple[str, str, str]:
    api_version, kind = doc.get("apiVersion"), doc.get("kind")
    name = (doc.get("metadata") or {}).get("name")
    if not (api_version and kind and name):
        summary = json.dumps(doc)[:200]
        raise ClusterError(f"a manifest document lacks apiVersion, kind or metadata.name: "
                           f"{summary}", "give every document apiVersion, kind and metadata.name")
    return str(api_version), str(kind), str(name)


def _default_request_timeout(api: k8s_client.ApiClient, timeout: tuple[float, float]) -> None:
    """Give every request on ``api`` a (connect, read) timeout unless it brings its own.

    The DynamicClient's discovery requests carry none, and urllib3 would then wait forever
    on a server that accepts connections but never answers.
    """
    rest = api.rest_client
    original = rest.request

    def request(method: str, url: str, headers: Any = None, body: Any = None,
                post_params: Any = None, _request_timeout: Any = None) -> Any:
        def send() -> Any:
            return original(method, url, headers=headers, body=body, post_params=post_params,
                            _request_timeout=_request_timeout or timeout)
        return retry_throttled(method, send)

    rest.request = request  # type: ignore[method-assign]


THROTTLE_ATTEMPTS = 6      # 429s (any request) and 500s (writes) retried, as client-go does 10
MAX_RETRY_AFTER = 10.0     # a longer Retry-After is capped (the wait's own timeout still rules)
_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def retry_throttled(method: str, send: Callable[[], Any], *,
                    sleep: Callable[[float], None] = time.sleep) -> Any:
    """``send()`` again after a 429 (waiting its ``Retry-After``) or, for a write, a 500.

    API priority and fairness answers 429 with ``Retry-After`` under load, and an apiserver
    whose etcd is slow answers a write with 500 "etcdserver: request timed out"; client-go
    retries the first by itself, and the suite must not fail a check for either. The last
    response is returned as it is, so its error still surfaces after the attempts run out.
    A 500 that rejects the request's own body (:data:`BODY_REJECTED_500`) is returned at once:
    retrying it only spends the attempts, and a throttled last attempt would hide the
    message that names the mistake.
    """
    response = send()
    for attempt in range(1, THROTTLE_ATTEMPTS):
        status = getattr(response, "status", 200)
        if status == 429:
            delay = _retry_after(response)
        elif status == 500 and method.upper() in _WRITES and not _rejects_the_body(response):
            delay = min(0.1 * 2 ** attempt, 2.0)
        else:
            return response
        log.info("kube: %s answered %s, retrying in %.1f s (attempt %d of %d)", method, status,
                 delay, attempt + 1, THROTTLE_ATTEMPTS)
        sleep(delay)
        response = send()
    return response


# kube-apiserver answers server-side apply's schema rejection ("failed to create typed patch
# object (...): .spec.hosst: field not declared in schema") with a reason-less 500, as it does
# an etcd timeout (kubernetes/kubernetes#122480, #139253); only the message tells them apart.
BODY_REJECTED_500 = ("failed to create typed patch object",)


def _rejects_the_body(response: Any) -> bool:
    """Whether a 500's Status message says the request body itself is wrong."""
    read = getattr(response, "read", None)
    try:
        message = json.loads(read() or b"{}").get("message", "") if read else ""
    except (ValueError, AttributeError):
        return False
    return isinstance(message, str) and message.startswith(BODY_REJECTED_500)


def _retry_after(response: Any) -> float:
    try:
        value = float(response.getheader("Retry-After") or 1)
    except (TypeError, ValueError):
        value = 1.0
    return max(0.0, min(value, MAX_RETRY_AFTER))
