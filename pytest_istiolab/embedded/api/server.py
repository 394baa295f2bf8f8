"""The embedded cluster's Kubernetes API server: aiohttp on 127.0.0.1 in a daemon thread.

``start()`` is synchronous and returns ``http://127.0.0.1:PORT`` once the socket listens;
``stop()`` ends watches, log follows and exec websockets, then stops the loop and thread.
All cluster state is read from and written to ``runtime.store``.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor

from aiohttp import web

from ..runtime import Runtime
from ..store import StoreError
from . import access, discovery, openapi, rest
from .context import CTX_KEY, ApiContext, ExecHandler, StdinReader, always_reads_stdin
from .responses import internal_error, status_response

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
START_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0


@web.middleware
async def status_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure becomes a Kubernetes ``Status`` with the matching HTTP code."""
    try:
        return await handler(request)
    except StoreError as exc:
        return status_response(exc)
    except web.HTTPException as exc:
        if exc.status in (404, 405):
            code, reason = exc.status, "NotFound" if exc.status == 404 else "MethodNotAllowed"
            return status_response(StoreError(code, reason, "the server could not find the "
                                              "requested resource" if code == 404 else exc.text
                                              or reason, {}))
        raise
    except (ConnectionResetError, asyncio.CancelledError):
        raise
    except Exception as exc:
        log.exception("embedded API server: %s %s failed", request.method, request.path)
        return status_response(internal_error(exc))


def build_app(ctx: ApiContext) -> web.Application:
    app = web.Application(middlewares=[status_errors], client_max_size=64 * 1024 * 1024)
    app[CTX_KEY] = ctx
    r = app.router
    r.add_get("/version", discovery.version)
    r.add_get("/version/", discovery.version)
    for path in ("/healthz", "/readyz", "/livez"):
        r.add_get(path, discovery.health)
        r.add_get(path + "/{check:.*}", discovery.health)
    r.add_get("/openapi/v2", openapi.v2)
    r.add_get("/openapi/v3", openapi.index)
    r.add_get("/openapi/v3/{tail:.+}", openapi.group_version)
    r.add_get("/api", discovery.core_versions)
    r.add_get("/api/", discovery.core_versions)
    r.add_get("/apis", discovery.group_list)
    r.add_get("/apis/", discovery.group_list)
    r.add_post("/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
               access.self_access_review)
    r.add_post("/apis/authorization.k8s.io/v1/selfsubjectrulesreviews", access.self_rules_review)
    r.add_post("/apis/authentication.k8s.io/v1/selfsubjectreviews", access.self_subject_review)
    r.add_route("*", "/api/{tail:.+}", rest.handle_core)
    r.add_route("*", "/apis/{tail:.+}", rest.handle_groups)
    return app


class ApiServer:
    """A Kubernetes API server for one embedded cluster."""

    def __init__(self, runtime: Runtime, exec_handler: ExecHandler, port: int = 0,
                 reads_stdin: StdinReader = always_reads_stdin) -> None:
        self.runtime = runtime
        self.exec_handler, self.reads_stdin = exec_handler, reads_stdin
        self.port = port
        self.url = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._ctx: ApiContext | None = None
        self._workers = ThreadPoolExecutor(max_workers=8, thread_name_prefix="istiolab-exec")

    def start(self) -> str:
        """Listen on 127.0.0.1 and return the server URL (blocks until it listens)."""
        if self._thread is not None:
            return self.url
        ready = threading.Event()
        failure: list[BaseException] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._serve, args=(ready, failure),
                                        name="istiolab-apiserver", daemon=True)
        self._thread.start()
        if not ready.wait(START_TIMEOUT):
            raise RuntimeError("embedded API server did not start within "
                               f"{START_TIMEOUT:.0f}s")
        if failure:
            self._thread = None
            self._workers.shutdown(wait=False)
            raise RuntimeError(f"embedded API server failed to start: {failure[0]}") from failure[0]
        return self.url

    def _serve(self, ready: threading.Event, failure: list[BaseException]) -> None:
        loop = self._loop
        assert loop is not None
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._listen())
        except BaseException as exc:  # report to start(), then leave the thread
            failure.append(exc)
            loop.close()
            ready.set()
            return
        ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _listen(self) -> None:
        assert self._loop is not None
        self._ctx = ApiContext(self.runtime, self.exec_handler, self._loop, self._workers,
                               self.reads_stdin)
        self._runner = web.AppRunner(build_app(self._ctx), handle_signals=False,
                                     access_log=None, shutdown_timeout=1.0,
                                     handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True)
        await site.start()
        sockets = self._runner.addresses
        self.port = int(sockets[0][1])
        self.url = f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        """End every stream, stop listening, stop the loop; safe to call twice."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if loop.is_running():
            future = asyncio.run_coroutine_threadsafe(self._shutdown(), loop)
            try:
                future.result(STOP_TIMEOUT)
            except Exception:
                log.warning("embedded API server: unclean shutdown", exc_info=True)
            loop.call_soon_threadsafe(loop.stop)
        thread.join(STOP_TIMEOUT)
        self._workers.shutdown(wait=False, cancel_futures=True)
        self._thread = None

    async def _shutdown(self) -> None:
        ctx = self._ctx
        if ctx is not None:
            ctx.closing.set()
            for ws in list(ctx.websockets):
                await ws.close(code=1001, message=b"server stopping")
        if self._runner is not None:
            await self._runner.cleanup()
        current = asyncio.current_task()
        pending = [t for t in asyncio.all_tasks() if t is not current and not t.done()]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
