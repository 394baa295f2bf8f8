"""Waiting for pods and Deployments to become ready: list, then watch, then explain.

Each wait lists the objects, and while the condition does not hold, watches from the list's
resourceVersion with ``timeoutSeconds`` (so the server ends the stream, and no request outlives
the wait). A watch that expires (410) or fails is followed by a fresh list, so a server without
watch support degrades to polling. A stream the server ends is resumed from the last
resourceVersion it delivered (events and bookmarks), as informers do. When time runs out,
:class:`ReadinessError` names every object that is not ready, with its phase, container states
and recent events.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import urllib3
from kubernetes.client.rest import ApiException

from pytest_istiolab.errors import ReadinessError
from pytest_istiolab.kube.status import (
    deployment_problem,
    describe_pods,
    is_pod_ready,
    live_pods,
    old_pods_serving,
    pods_ready,
    selector_string,
)

if TYPE_CHECKING:
    from kubernetes import client as k8s_client

    from pytest_istiolab.timeouts import Timeouts

Obj = dict[str, Any]
State = dict[str, Obj]
_WATCH_ERRORS = (ApiException, urllib3.exceptions.HTTPError, OSError, ValueError)
FIX = ("look at the events above; image pulls, crash loops, missing secrets and "
       "unschedulable pods are the usual causes (kubectl -n {ns} describe pods)")


class WaitMixin:
    """``Kube.wait_for_*``; uses ``_list``, ``_path``, ``_timeout``, ``api_client``, ``events``."""

    timeouts: Timeouts
    api_client: k8s_client.ApiClient
    _list: Callable[..., tuple[list[Obj], str]]
    _path: Callable[..., str]
    _timeout: Callable[..., tuple[float, float]]
    events: Callable[..., list[Obj]]

    def wait_for_pods_ready(self, namespace: str, label_selector: str | None = None,
                            count: int | None = None, timeout: float | None = None) -> list[Obj]:
        """Wait until every live matching pod is Ready (at least ``count``, or one); them."""
        limit = timeout if timeout is not None else self.timeouts.ready
        state = self.watch_until("v1", "Pod", namespace, label_selector,
                                 lambda s: pods_ready(s.values(), count), limit)
        if state is None:
            raise self._pods_not_ready(namespace, label_selector, count, limit)
        return [p for p in live_pods(state.values()) if is_pod_ready(p)]

    def wait_for_deployments(self, namespace: str, names: list[str] | None = None,
                             timeout: float | None = None) -> list[Obj]:
        """Wait until the Deployments (all in the namespace by default) are rolled out."""
        limit = timeout if timeout is not None else self.timeouts.ready

        def done(state: State) -> bool:
            wanted = [state.get(n) for n in names] if names else list(state.values())
            return all(d is not None and deployment_problem(d) is None for d in wanted)

        state = self.watch_until("apps/v1", "Deployment", namespace, None, done, limit)
        if state is None:
            raise self._deployments_not_ready(namespace, names, limit)
        return [state[n] for n in names] if names else list(state.values())

    def wait_for_rollouts(self, namespace: str, timeout: float | None = None) -> None:
        """Wait until every Deployment has rolled out (as :meth:`wait_for_deployments`) and no
        pod of an older template is left serving: none is live, and no Endpoints address
        names one (or a pod that is gone or terminating). After ``istioctl install`` changed
        a pod template, old pods may drain for a while after the new ones are Ready."""
        limit = timeout if timeout is not None else self.timeouts.ready
        deadline = time.monotonic() + limit
        self.wait_for_deployments(namespace, timeout=limit)
        while True:
            left = old_pods_serving(self._list("apps/v1", "Deployment", namespace, None)[0],
                                    self._list("apps/v1", "ReplicaSet", namespace, None)[0],
                                    self._list("v1", "Pod", namespace, None)[0],
                                    self._list("v1", "Endpoints", namespace, None)[0])
            if not left:
                return
            if time.monotonic() >= deadline:
                raise ReadinessError(
                    f"the rollouts in namespace {namespace} left old pods serving after "
                    f"{limit:g} s: {'; '.join(left)}", FIX.format(ns=namespace))
            time.sleep(self.timeouts.poll_interval)

    def wait_for_statefulsets(self, namespace: str, timeout: float | None = None) -> None:
        """Wait until every StatefulSet's pods exist and are Ready (e.g. ``loki-0``)."""
        for sts in self._list("apps/v1", "StatefulSet", namespace, None)[0]:
            selector = (sts.get("spec") or {}).get("selector", {}).get("matchLabels") or {}
            self.wait_for_pods_ready(namespace, ",".join(f"{k}={v}" for k, v in selector.items()),
                                     count=int(sts["spec"].get("replicas", 1)), timeout=timeout)

    # ------------------------------------------------------------------ list + watch
    def watch_until(self, api_version: str, kind: str, namespace: str | None,
                    label_selector: str | None, done: Callable[[State], bool],
                    timeout: float) -> State | None:
        """The objects (by name) once ``done`` holds for them; None when time runs out."""
        deadline = time.monotonic() + timeout
        while True:
            items, rv = self._list(api_version, kind, namespace, label_selector)
            state = {obj["metadata"]["name"]: obj for obj in items}
            if done(state):
                return state
            while (remaining := deadline - time.monotonic()) > 0:
                began = time.monotonic()
                try:
                    for event in self._watch(api_version, kind, namespace, label_selector, rv,
                                             remaining):
                        rv = _event_rv(event) or rv
                        if _apply_event(state, event) and done(state):
                            return state
                        if time.monotonic() >= deadline:
                            break
                except _WATCH_ERRORS:
                    # expired (410) or no (working) watch: a fresh list, polling at worst
                    time.sleep(min(self.timeouts.poll_interval, max(0.0, remaining)))
                    break
                # the server ended the stream (timeoutSeconds, a restart, a load balancer):
                # resume from the last resourceVersion seen, as informers do (not in a busy
                # loop when a server ends every stream at once)
                if time.monotonic() - began < self.timeouts.poll_interval:
                    time.sleep(min(self.timeouts.poll_interval, max(0.0, remaining)))
            if deadline - time.monotonic() <= 0:
                return None

    def _watch(self, api_version: str, kind: str, namespace: str | None,
               label_selector: str | None, resource_version: str,
               remaining: float) -> Iterator[Obj]:
        query: list[tuple[str, Any]] = [("watch", "true"), ("allowWatchBookmarks", "true"),
                                        ("timeoutSeconds", max(1, math.ceil(remaining)))]
        if resource_version:
            query.append(("resourceVersion", resource_version))
        if label_selector:
            query.append(("labelSelector", label_selector))
        path = self._path(api_version, kind, None, namespace)
        request = self.api_client.param_serialize(
            "GET", path, query_params=query, header_params={"Accept": "application/json"},
            auth_settings=["BearerToken"])
        # the server ends the stream after whole seconds; the read timeout ends it on time
        connect, _ = self._timeout()
        response = self.api_client.call_api(*request, _request_timeout=(connect,
                                                                          remaining + 0.2))
        if not 200 <= response.status <= 299:
            response.read()
            raise ApiException(http_resp=response)
        raw = response.response
        try:
            yield from _json_lines(raw)
        finally:
            raw.close()
            raw.release_conn()

    # ------------------------------------------------------------------ diagnostics
    def _pods_not_ready(self, namespace: str, selector: str | None, count: int | None,
                        limit: float) -> ReadinessError:
        items, _ = self._list("v1", "Pod", namespace, selector)
        live = live_pods(items)
        wanted = f"{count}" if count is not None else "at least 1"
        head = (f"pods {selector or '(all)'} in namespace {namespace} not ready after "
                f"{limit:g} s: wanted {wanted} ready, {sum(map(is_pod_ready, live))} of "
                f"{len(live)} are")
        lines = describe_pods(live, self._events_or_empty(namespace)) if live else \
            ["  no matching pods exist"]
        return ReadinessError("\n".join([head, *lines]), FIX.format(ns=namespace))

    def _deployments_not_ready(self, namespace: str, names: list[str] | None,
                               limit: float) -> ReadinessError:
        deployments = {d["metadata"]["name"]: d
                       for d in self._list("apps/v1", "Deployment", namespace, None)[0]}
        events = self._events_or_empty(namespace)
        lines = []
        for name in names or sorted(deployments):
            dep = deployments.get(name)
            if dep is None:
                lines.append(f"  deployment {name}: does not exist")
                continue
            problem = deployment_problem(dep)
            if problem is None:
                continue
            lines.append(f"  deployment {name}: {problem}")
            selector = selector_string((dep.get("spec") or {}).get("selector"))
            pods = self._list("v1", "Pod", namespace, selector or None)[0] if selector else []
            lines.extend("  " + line for line in describe_pods(live_pods(pods), events))
        head = f"deployments in namespace {namespace} not ready after {limit:g} s:"
        return ReadinessError("\n".join([head, *lines]), FIX.format(ns=namespace))

    def _events_or_empty(self, namespace: str) -> list[Obj]:
        try:
            return self.events(namespace)
        except Exception:  # noqa: BLE001 - diagnostics must not hide the readiness failure
            return []


def _apply_event(state: State, event: Obj) -> bool:
    """Update ``state`` from a watch event; False for events that change nothing."""
    kind, obj = event.get("type"), event.get("object") or {}
    if kind == "ERROR":
        raise ValueError(f"watch error: {obj.get('message', obj)}")
    name = (obj.get("metadata") or {}).get("name")
    if kind not in ("ADDED", "MODIFIED", "DELETED") or not name:
        return False
    if kind == "DELETED":
        state.pop(name, None)
    else:
        state[name] = obj
    return True


def _event_rv(event: Obj) -> str:
    """The resourceVersion an event (BOOKMARK included) brings the watch to; '' for ERROR."""
    if event.get("type") not in ("ADDED", "MODIFIED", "DELETED", "BOOKMARK"):
        return ""
    return str(((event.get("object") or {}).get("metadata") or {}).get("resourceVersion") or "")


def _json_lines(raw: Any) -> Iterator[Obj]:
    buffer = b""
    for chunk in raw.stream(amt=None, decode_content=False):
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            if line.strip():
                yield json.loads(line)
    if buffer.strip():
        yield json.loads(buffer)
