"""``pods/log``: container logs from the runtime's LogBook as ``text/plain``.

Honours ``container``, ``sinceSeconds``, ``sinceTime``, ``tailLines``, ``timestamps``,
``limitBytes`` and ``follow``. With ``follow=true`` the current content is sent, then new
lines as they are appended, until the client goes away, the pod is deleted, the server
stops, or :data:`FOLLOW_MAX_SECONDS` pass. ``previous=true`` is not modelled (containers
never restart here): it answers 400 as a real server does for a container that has not
restarted.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from ..runtime import LogLine, rfc3339_nano
from .context import ApiContext
from .params import flag, int_param
from .paths import Target
from .pods import choose_container, container_state
from .responses import bad_request
from .timefmt import parse_rfc3339

Obj = dict[str, Any]
FOLLOW_MAX_SECONDS = 600.0
FOLLOW_POLL_SECONDS = 0.1


async def serve(request: web.Request, ctx: ApiContext, t: Target) -> web.StreamResponse:
    name = str(t.name)
    pod = ctx.store.get(t.rt, t.namespace, name)
    container = choose_container(pod, request.query.get("container"))
    waiting = container_state(pod, container).get("waiting")
    if isinstance(waiting, dict):
        raise bad_request(f'container "{container}" in pod "{name}" is waiting to start: '
                          f"{waiting.get('reason') or 'ContainerCreating'}")
    if flag(request, "previous"):
        raise bad_request(f'previous terminated container "{container}" in pod "{name}" '
                          "not found")
    lines = ctx.runtime.logs.lines(str(t.namespace), name, container)
    text = _render(request, ctx, lines)
    limit = int_param(request, "limitBytes")
    if not flag(request, "follow"):
        body = text.encode()
        return web.Response(body=body[:limit] if limit else body,
                            headers={"Content-Type": "text/plain"})
    return await _follow(request, ctx, t, container, text, len(lines))


def _render(request: web.Request, ctx: ApiContext, lines: list[LogLine]) -> str:
    """The selected lines (``sinceSeconds``/``sinceTime``/``tailLines``) as the kubelet writes
    them, optionally prefixed with RFC 3339 nanosecond timestamps."""
    since_time = request.query.get("sinceTime")
    since = parse_rfc3339(since_time) if since_time else None
    if since_time and since is None:
        raise bad_request(f"invalid sinceTime {since_time!r}")
    since_seconds = int_param(request, "sinceSeconds")
    if since_seconds is not None:
        cutoff = ctx.runtime.clock.now() - since_seconds
        since = cutoff if since is None else max(since, cutoff)
    if since is not None:
        lines = [ln for ln in lines if ln.when >= since]
    tail = int_param(request, "tailLines")
    if tail is not None:
        lines = lines[-tail:] if tail > 0 else []
    stamps = flag(request, "timestamps")
    return "".join(_format(ln.when, ln.text, stamps) for ln in lines)


async def _follow(request: web.Request, ctx: ApiContext, t: Target, container: str,
                  first: str, sent: int) -> web.StreamResponse:
    ns, name = str(t.namespace), str(t.name)
    response = web.StreamResponse(status=200, headers={"Content-Type": "text/plain"})
    response.enable_chunked_encoding()
    await response.prepare(request)
    await response.write(first.encode())
    stamps = flag(request, "timestamps")
    deadline = ctx.loop.time() + FOLLOW_MAX_SECONDS
    while not ctx.closing.is_set() and ctx.loop.time() < deadline:
        await ctx.until_closing(asyncio.sleep(FOLLOW_POLL_SECONDS), None)
        lines = ctx.runtime.logs.lines(ns, name, container)
        if len(lines) > sent:
            fresh = "".join(_format(ln.when, ln.text, stamps) for ln in lines[sent:])
            sent = len(lines)
            await response.write(fresh.encode())
        elif ctx.store.try_get(t.rt, t.namespace, name) is None:
            break
    return response


def _format(when: float, text: str, stamps: bool) -> str:
    return (rfc3339_nano(when) + " " if stamps else "") + text + "\n"
