"""Watch: ``GET ...?watch=true`` as a chunked stream of JSON events, one per line.

* no ``resourceVersion`` (or ``"0"``): synthetic ADDED events for the current state, then live;
* ``resourceVersion=N``: the store's events after N, then live; an expired N gives one
  ERROR event carrying a 410 ``Expired`` Status, then the stream ends;
* ``sendInitialEvents=true`` (WatchList, kubectl >= 1.35 ``wait``/``rollout status``): the
  current state as ADDED, then a BOOKMARK annotated ``k8s.io/initial-events-end: "true"``;
* ``allowWatchBookmarks=true``: a BOOKMARK every :data:`BOOKMARK_SECONDS`;
* ``labelSelector``/``fieldSelector``: an object that stops (starts) matching is sent as
  DELETED (ADDED), as kube-apiserver does;
* ``timeoutSeconds`` ends the stream; so does the server stopping, and under the realism
  profile a seeded lifetime of its own (clients resume from their last resourceVersion).

Store callbacks arrive on whatever thread wrote; they are handed to the event loop with
``call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from typing import Any

from aiohttp import web

from ..store import (
    Event,
    StoreError,
    match_fields,
    match_labels,
    parse_field_selector,
    parse_label_selector,
)
from . import tables
from .context import ApiContext
from .params import flag, int_param, wants_table
from .paths import Target

Obj = dict[str, Any]
BOOKMARK_SECONDS = 30.0
MAX_WATCH_SECONDS = 1800.0
_SERIALS = itertools.count(1)  # watch numbers, for the realism profile's seeded lifetimes


class _Stream:
    """One watch connection: filtering, type translation and writing."""

    def __init__(self, request: web.Request, ctx: ApiContext, t: Target) -> None:
        self.request, self.ctx, self.t = request, ctx, t
        self.labels = parse_label_selector(request.query.get("labelSelector"))
        self.fields = parse_field_selector(request.query.get("fieldSelector"))
        self.filtered = bool(self.labels or self.fields)
        self.visible: set[tuple[str, str]] = set()
        self.table = wants_table(request)
        self.last_rv = 0
        self.response = web.StreamResponse(status=200,
                                           headers={"Content-Type": "application/json"})
        self.response.enable_chunked_encoding()

    def matches(self, obj: Obj) -> bool:
        return match_labels(self.labels, obj) and match_fields(self.fields, obj)

    def in_scope(self, ev: Event) -> bool:
        if ev.rtype.key != self.t.rt.key:
            return False
        return self.t.namespace is None or ev.obj["metadata"].get("namespace") == self.t.namespace

    def translate(self, ev: Event) -> str | None:
        """The event type this client sees for ``ev`` (``None``: not for it)."""
        meta = ev.obj["metadata"]
        key = (meta.get("namespace") or "", meta.get("name") or "")
        if not self.filtered:
            return ev.type
        was, now = key in self.visible, self.matches(ev.obj)
        if ev.type == "DELETED" or not now:
            self.visible.discard(key)
            return "DELETED" if was or (ev.type == "DELETED" and now) else None
        self.visible.add(key)
        return "MODIFIED" if was and ev.type != "ADDED" else "ADDED"

    async def send(self, etype: str, obj: Obj) -> None:
        if etype not in ("ERROR", "BOOKMARK"):
            obj = self.t.present(dict(obj))
            if self.table:
                obj = tables.table(self.ctx, self.request, self.t, [obj],
                                   {"resourceVersion": obj["metadata"].get("resourceVersion")})
        line = json.dumps({"type": etype, "object": obj}, separators=(",", ":")) + "\n"
        await self.response.write(line.encode())

    async def bookmark(self, initial_end: bool = False) -> None:
        meta: Obj = {"resourceVersion": str(self.last_rv)}
        if initial_end:
            meta["annotations"] = {"k8s.io/initial-events-end": "true"}
        await self.send("BOOKMARK", {"kind": self.t.rt.kind, "apiVersion": self.t.api_version,
                                     "metadata": meta})


async def serve(request: web.Request, ctx: ApiContext, t: Target) -> web.StreamResponse:
    stream = _Stream(request, ctx, t)
    queue: asyncio.Queue[Event] = asyncio.Queue()
    loop = ctx.loop

    def on_event(ev: Event) -> None:
        if stream.in_scope(ev):
            loop.call_soon_threadsafe(queue.put_nowait, ev)

    unsubscribe = ctx.store.subscribe(on_event)
    try:
        return await _run(stream, queue)
    finally:
        unsubscribe()


async def _run(stream: _Stream, queue: asyncio.Queue[Event]) -> web.StreamResponse:
    request, ctx, t = stream.request, stream.ctx, stream.t
    rv_param = request.query.get("resourceVersion", "")
    initial = flag(request, "sendInitialEvents")
    timeout = int_param(request, "timeoutSeconds")
    await stream.response.prepare(request)
    if initial or rv_param in ("", "0"):
        items, rv = ctx.store.list(t.rt, t.namespace, request.query.get("labelSelector"),
                                   request.query.get("fieldSelector"))
        stream.last_rv = rv
        for obj in items:
            stream.visible.add((obj["metadata"].get("namespace") or "", obj["metadata"]["name"]))
            await stream.send("ADDED", obj)
        if initial:
            await stream.bookmark(initial_end=True)
    elif not await _replay(stream, rv_param):
        return stream.response
    await _live(stream, queue, timeout)
    return stream.response


async def _replay(stream: _Stream, rv_param: str) -> bool:
    ctx, t = stream.ctx, stream.t
    try:
        since = int(rv_param)
        events = ctx.store.events_since(since)
    except ValueError:
        await stream.send("ERROR", StoreError(400, "BadRequest", f"invalid resource version "
                                                                  f"{rv_param!r}").status())
        return False
    except StoreError as exc:
        await stream.send("ERROR", exc.status())
        return False
    if stream.filtered:
        items, _ = ctx.store.list(t.rt, t.namespace, stream.request.query.get("labelSelector"),
                                  stream.request.query.get("fieldSelector"))
        stream.visible = {(o["metadata"].get("namespace") or "", o["metadata"]["name"])
                          for o in items}
    stream.last_rv = since
    for ev in events:
        stream.last_rv = max(stream.last_rv, ev.rv)
        await _deliver(stream, ev)
    return True


async def _deliver(stream: _Stream, ev: Event) -> None:
    if not stream.in_scope(ev):
        return
    etype = stream.translate(ev)
    if etype is not None:
        await stream.send(etype, ev.obj)


async def _live(stream: _Stream, queue: asyncio.Queue[Event], timeout: int | None) -> None:
    loop = stream.ctx.loop
    deadline = loop.time() + (timeout if timeout and timeout > 0 else MAX_WATCH_SECONDS)
    realism = stream.ctx.runtime.realism
    if realism is not None:  # the realism profile ends watches early, as load balancers do
        deadline = min(deadline, loop.time() + realism.watch_lifetime_of(next(_SERIALS)))
    bookmarks = flag(stream.request, "allowWatchBookmarks")
    next_bookmark = loop.time() + BOOKMARK_SECONDS
    while not stream.ctx.closing.is_set():
        now = loop.time()
        if now >= deadline:
            return
        wait = min(deadline, next_bookmark) - now if bookmarks else deadline - now
        ev = await stream.ctx.until_closing(queue.get(), max(wait, 0.0))
        if ev is None:
            if bookmarks and loop.time() >= next_bookmark:
                next_bookmark = loop.time() + BOOKMARK_SECONDS
                await stream.bookmark()
            continue
        if ev.rv <= stream.last_rv:
            continue
        stream.last_rv = ev.rv
        await _deliver(stream, ev)
