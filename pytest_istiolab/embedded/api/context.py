"""What every request handler of the embedded API server shares.

One :class:`ApiContext` per server: the runtime (whose store holds all cluster state), the
exec handler, the event loop, and the bookkeeping needed to end long-running streams
(watches, ``logs -f``, exec websockets) when the server stops.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiohttp import web

from ..runtime import ExecResult, Runtime
from ..store import Store

ExecHandler = Callable[[Runtime, dict, str, list[str], bytes], ExecResult]
StdinReader = Callable[[list[str]], bool]


def always_reads_stdin(argv: list[str]) -> bool:
    return True


T = TypeVar("T")
CTX_KEY: web.AppKey[ApiContext] = web.AppKey("istiolab_api_context")


@dataclass
class ApiContext:
    runtime: Runtime
    exec_handler: ExecHandler
    loop: asyncio.AbstractEventLoop
    workers: ThreadPoolExecutor
    reads_stdin: StdinReader = always_reads_stdin  # does this argv read stdin before it ends?
    closing: asyncio.Event = field(default_factory=asyncio.Event)
    websockets: set[web.WebSocketResponse] = field(default_factory=set)
    # server-side apply: what each field manager last applied, keyed by object uid
    applied: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)

    @property
    def store(self) -> Store:
        return self.runtime.store

    async def until_closing(self, aw: Awaitable[T], timeout: float | None) -> T | None:
        """Await ``aw`` unless the server starts closing or ``timeout`` passes (then ``None``)."""
        task = asyncio.ensure_future(aw)
        closer = asyncio.ensure_future(self.closing.wait())
        try:
            done, _ = await asyncio.wait({task, closer}, timeout=timeout,
                                         return_when=asyncio.FIRST_COMPLETED)
        finally:
            closer.cancel()
            if not task.done():
                task.cancel()
        return task.result() if task in done and not task.cancelled() else None

    async def in_worker(self, fn: Callable[..., T], *args: Any) -> T:
        """Run blocking work (an exec command) off the event loop."""
        return await self.loop.run_in_executor(self.workers, fn, *args)


def context_of(request: web.Request) -> ApiContext:
    return request.app[CTX_KEY]
