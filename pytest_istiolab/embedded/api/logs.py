"""``pods/log``: container logs from the runtime's LogBook as ``text/plain``.

Honours ``container``, ``sinceSeconds``, ``sinceTime``, ``tailLines``, ``timestamps``,
``limitBytes`` and ``follow``. With ``follow=true`` the current content is sent, then new
lines as they are appended, until the client goes away, the pod is deleted, the server
stops, or :data:`FOLLOW_MAX_SECONDS` pass. ``previous=true`` is not modelled (containers
never restart here): it answers 400 as a real server does for a container that has not
restarted.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

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
    text = _read(request, ctx, str(t.namespace), name, container)
    limit = int_param(request, "limitBytes")
    if not flag(request, "follow"):
        body = text.encode()
        return web.Response(body=body[:limit] if limit else body,
                            headers={"Content-Type": "text/plain"})
    return await _follow(request, ctx, t, container, text)


def _read(request: web.Request, ctx: ApiContext, ns: str, pod: str, container: str) -> str:
    since_time = request.query.get("sinceTime")
    since = parse_rfc3339(since_time) if since_time else None
    if since_time and since is None:
        raise bad_request(f"invalid sinceTime {since_time!r}")
    return ctx.runtime.logs.read(
        ns, pod, container, since_seconds=int_param(request, "sinceSeconds"),
        since_time=since, tail_lines=int_param(request, "tailLines"),
        timestamps=flag(request, "timestamps"), now=ctx.runtime.clock.now())


async def _follow(request: web.Request, ctx: ApiContext, t: Target, container: str,
                  first: str) -> web.StreamResponse:
    ns, name = str(t.namespace), str(t.name)
    response = web.StreamResponse(status=200, headers={"Content-Type": "text/plain"})
    response.enable_chunked_encoding()
    await response.prepare(request)
    await response.write(first.encode())
    sent = len(ctx.runtime.logs.lines(ns, name, container))
    stamps = flag(request, "timestamps")
    deadline = ctx.loop.time() + FOLLOW_MAX_SECONDS
    while not ctx.closing.is_set() and ctx.loop.time() < deadline:
        await ctx.until_closing(_sleep(), None)
        lines = ctx.runtime.logs.lines(ns, name, container)
        if len(lines) > sent:
            fresh = "".join(_format(ln.when, ln.text, stamps) for ln in lines[sent:])
            sent = len(lines)
            await response.write(fresh.encode())
        elif ctx.store.try_get(t.rt, t.namespace, name) is None:
            break
    return response


async def _sleep() -> None:
    import asyncio

    await asyncio.sleep(FOLLOW_POLL_SECONDS)


def _format(when: float, text: str, stamps: bool) -> str:
    from ..runtime import rfc3339_nano

    return (rfc3339_nano(when) + " " if stamps else "") + text + "\n"
