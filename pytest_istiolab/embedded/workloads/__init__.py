"""Behaviour of the sample applications, chosen by container image.

Scope and limitations
---------------------
Modelled: Bookinfo 1.20.x (productpage with its Tailwind UI, login session and API;
details; reviews v1/v2/v3 with their ratings calls and timeouts; ratings), go-httpbin
v2.15 (``/get``, ``/headers``, ``/ip``, ``/user-agent``, ``/status/N``, ``/delay/N``,
``/anything``, ``/post`` …, header values as JSON arrays), the Python httpbin on gunicorn
(Labs 5.2 and 6, :mod:`.python_httpbin`), fortio's echo server (:mod:`.fortio_server`),
Istio's helloworld (:mod:`.helloworld`) and the public ``httpbin.org``. ``curlimages/curl``
(sleep) serves nothing; of the addons, Prometheus's HTTP API (:mod:`.prometheus`), Grafana's
(:mod:`.grafana`), Kiali's (:mod:`.kiali`) and Jaeger's query API (:mod:`.jaeger`). Not yet:
Loki; a pod whose image has no model refuses connections on every port, and an exec into it
says what is missing.

Registration: ``register(kind, factory)`` where ``factory(pod, container) -> Workload``;
:func:`app_for` finds the container serving a port. ``register_startup(kind, fn)`` makes
``fn(runtime, pod, container, when)`` run when the kubelet starts such a container (start-up
log lines); the controllers call :func:`container_started`. Images are classified by
``embedded.images.workload_kind`` (one list for the controllers and the models).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..images import workload_kind
from ..runtime import Runtime
from .base import AppContext, AppRequest, AppResponse, Workload
from .kinds import DEFAULT_PORTS

Obj = dict[str, Any]
Factory = Callable[[Obj, Obj], Workload]
_REGISTRY: dict[str, Factory] = {}
Startup = Callable[[Runtime, Obj, Obj, float], None]
_STARTUP: dict[str, Startup] = {}


def register(kind: str, factory: Factory) -> None:
    """Make containers of ``kind`` behave as ``factory(pod, container)`` says."""
    _REGISTRY[kind] = factory


def register_startup(kind: str, hook: Startup) -> None:
    """Run ``hook(runtime, pod, container, when)`` when a container of ``kind`` starts."""
    _STARTUP[kind] = hook


def container_started(runtime: Runtime, pod: Obj, container: Obj, when: float) -> None:
    """The kubelet started ``container`` of ``pod`` at virtual time ``when``."""
    hook = _STARTUP.get(workload_kind(str(container.get("image", ""))) or "")
    if hook is not None:
        hook(runtime, pod, container, when)


def app_for(pod: Obj, port: int) -> tuple[str, Workload] | None:
    """(container name, behaviour) of the container listening on ``port``, if one is modelled."""
    containers = [c for c in (pod.get("spec") or {}).get("containers") or []
                  if c.get("name") != "istio-proxy"]
    for container in containers:
        kind = workload_kind(str(container.get("image", "")))
        if kind in _REGISTRY and listen_port(kind, container) == port:
            return str(container["name"]), _REGISTRY[kind](pod, container)
    return None


def listen_port(kind: str | None, container: Obj) -> int | None:
    """The port the application really listens on (declared containerPorts are only labels)."""
    if kind == "go-httpbin":  # go-httpbin reads $PORT
        for env in container.get("env") or []:
            if env.get("name") == "PORT" and str(env.get("value", "")).isdigit():
                return int(env["value"])
    if kind == "httpbin":  # gunicorn's -b/--bind
        from .python_httpbin import listen_port as gunicorn_port

        return gunicorn_port(container)
    return DEFAULT_PORTS.get(kind or "")


def _register_builtin() -> None:
    from . import (
        bookinfo,
        fortio_server,
        grafana,
        helloworld,
        httpbin,
        jaeger,
        kiali,
        productpage,
        prometheus,
        python_httpbin,
    )

    register("bookinfo-productpage", productpage.Productpage)
    register("bookinfo-details", bookinfo.Details)
    register("bookinfo-reviews", bookinfo.Reviews)
    register("bookinfo-ratings", bookinfo.Ratings)
    register("go-httpbin", httpbin.GoHttpbin)
    register("httpbin", python_httpbin.PythonHttpbin)
    register_startup("httpbin", python_httpbin.started)
    register("fortio", fortio_server.FortioServer)
    register("helloworld", helloworld.Helloworld)
    register("jaeger", jaeger.Jaeger)
    register("prometheus", prometheus.Prometheus)
    register("grafana", grafana.Grafana)
    register("kiali", kiali.Kiali)


_register_builtin()

__all__ = ["AppContext", "AppRequest", "AppResponse", "Workload", "app_for",
           "container_started", "listen_port", "register", "register_startup", "workload_kind"]
