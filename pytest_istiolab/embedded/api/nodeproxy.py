"""``/api/v1/nodes/{node}/proxy/{path}``: the API server's proxy to a node's kubelet.

Scope and limitations
---------------------
Only ``GET …/proxy/metrics/cadvisor`` is modelled: the kubelet's cAdvisor endpoint, in the
Prometheus text format (``text/plain; version=0.0.4``), with the series of
:mod:`..workloads.cadvisor` at the cluster's clock, each with cAdvisor's labels and a
millisecond timestamp, as the kubelet writes them. Every other kubelet path (``/metrics``,
``/metrics/resource``, ``/stats/summary``, ``/pods``, logs, exec) and every other method is
answered 501, saying it is not modelled; an unknown node is 404 NotFound.
"""

from __future__ import annotations

from aiohttp import web

from ..workloads import cadvisor
from ..workloads.prometheus import format_value
from .context import ApiContext
from .responses import not_modelled

HELP = {"container_cpu_usage_seconds_total": ("counter", "Cumulative cpu time consumed in "
                                                         "seconds."),
        "container_memory_working_set_bytes": ("gauge", "Current working set in bytes.")}


def exposition(runtime, node: dict, now: float) -> str:  # noqa: ANN001 - Runtime
    by_name: dict[str, list[str]] = {}
    stamp = int(now * 1000)
    for labels, series in cadvisor.series(runtime, node, {}):
        value = series.at(now)
        if value is None:
            continue
        name = labels.pop("__name__")
        text = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(labels.items()))
        by_name.setdefault(name, []).append(f"{name}{{{text}}} {format_value(value)} {stamp}")
    out = []
    for name in sorted(by_name):
        kind, help_text = HELP[name]
        out += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}", *by_name[name]]
    return "\n".join(out) + "\n"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


async def serve(request: web.Request, ctx: ApiContext, name: str, path: str) -> web.Response:
    rt = ctx.store.resource_type("", "nodes")
    node = ctx.store.get(rt, None, name)  # 404 NotFound for an unknown node
    if path != "metrics/cadvisor" or request.method != "GET":
        raise not_modelled(f"{request.method} nodes/proxy/{path} (the kubelet's endpoints "
                           "other than GET metrics/cadvisor)")
    body = exposition(ctx.runtime, node, ctx.runtime.clock.now())
    return web.Response(body=body.encode(), headers={
        "Content-Type": "text/plain; version=0.0.4; charset=utf-8"})
