"""``pods/exec`` over a websocket (``v5.channel.k8s.io``, ``v4.channel.k8s.io``).

Before the upgrade the request is checked like kube-apiserver checks it, and failures are
plain HTTP errors (a websocket client sees ``Handshake status 404``): missing pod 404,
unknown container 400, pod not running 400. A command that reads stdin (the context's
``reads_stdin``) gets it first (channel 0, read until the client closes channel 0 with
``[255, 0]`` on v5 or the socket ends); any other command runs at once, so ``kubectl exec
-it POD -- curl ...`` from a terminal does not wait for the terminal to close. It runs in a
worker thread through the exec handler, and its writes go out in the order it made them,
stdout on channel 1 and stderr on channel 2 (both on 1, with CRLF line ends, under ``tty``),
before the channel 3 status (``Success``, or ``Failure``/``NonZeroExitCode`` with the exit
code as the first cause).

Not modelled: interactive streaming (stdin is collected before the command runs), resize
(under ``tty`` the first channel 4 frame is awaited, the rest are ignored), SPDY
(``kubectl`` < 1.30), and end of stdin on v4, which has no close signal: there, stdin
ends after :data:`V4_STDIN_IDLE_SECONDS` without data.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import WSMsgType, web

from ..runtime import ExecResult
from .context import ApiContext
from .params import flag
from .paths import Target
from .pods import choose_container, container_state
from .responses import bad_request

Obj = dict[str, Any]
V5, V4 = "v5.channel.k8s.io", "v4.channel.k8s.io"
PROTOCOLS = (V5, V4)
STDIN, STDOUT, STDERR, STATUS, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255
V4_STDIN_IDLE_SECONDS = 1.0
STDIN_MAX_SECONDS = 300.0
EXEC_MAX_SECONDS = 600.0
CHANNEL_SWITCH_GAP = 0.01  # seconds between a stdout and a stderr write, so 2>&1 keeps order
TTY_SIZE_WAIT_SECONDS = 1.0  # kubectl sends the terminal size first; a kubelet reads it first


def check_exec(pod: Obj, container: str) -> None:
    """400 unless ``container`` of ``pod`` is running, worded as the kubelet/apiserver do."""
    phase = (pod.get("status") or {}).get("phase")
    if phase in ("Succeeded", "Failed"):
        raise bad_request("cannot exec into a container in a completed pod; current phase is "
                          f"{phase}")
    state = container_state(pod, container)
    if phase != "Running" or "waiting" in state or "terminated" in state:
        raise bad_request(f'container not found ("{container}")')


async def serve(request: web.Request, ctx: ApiContext, t: Target) -> web.StreamResponse:
    pod = ctx.store.get(t.rt, t.namespace, str(t.name))
    container = choose_container(pod, request.query.get("container"))
    check_exec(pod, container)
    argv = request.query.getall("command", [])
    if not argv:
        raise bad_request("you must specify at least 1 command")
    if request.headers.get("Upgrade", "").lower() != "websocket":
        raise bad_request("exec needs a websocket upgrade (v5/v4.channel.k8s.io); SPDY is not "
                          "modelled by the embedded cluster: use kubectl >= 1.30")
    ws = web.WebSocketResponse(protocols=PROTOCOLS, max_msg_size=0, autoping=True)
    await ws.prepare(request)
    ctx.websockets.add(ws)
    try:
        await _session(ws, request, ctx, pod, container, argv)
    finally:
        ctx.websockets.discard(ws)
        if not ws.closed:
            await ws.close()
    return ws


async def _session(ws: web.WebSocketResponse, request: web.Request, ctx: ApiContext, pod: Obj,
                   container: str, argv: list[str]) -> None:
    stdin = b""
    if flag(request, "stdin") and ctx.reads_stdin(argv):
        got = await ctx.until_closing(_read_stdin(ws, ws.ws_protocol == V5), STDIN_MAX_SECONDS)
        if got is None or ws.closed:
            return
        stdin = got
    elif flag(request, "tty"):
        await ctx.until_closing(_first_resize(ws), TTY_SIZE_WAIT_SECONDS)
    result = await ctx.until_closing(_run(ctx, pod, container, argv, stdin), EXEC_MAX_SECONDS)
    if result is None or ws.closed:
        return
    previous = STDOUT
    for channel, data in output_frames(result, tty=flag(request, "tty"),
                                       stdout=flag(request, "stdout"),
                                       stderr=flag(request, "stderr")):
        if channel != previous:  # kubectl copies each channel on its own goroutine:
            await asyncio.sleep(CHANNEL_SWITCH_GAP)  # a real process's writes are apart too
        previous = channel
        await ws.send_bytes(bytes([channel]) + data)
    await ws.send_bytes(bytes([STATUS]) + json.dumps(exit_status(argv, result.exit_code)).encode())


def output_frames(result: ExecResult, *, tty: bool, stdout: bool, stderr: bool
                  ) -> list[tuple[int, bytes]]:
    """The command's writes as channel frames, in the order it wrote them.

    With a tty both streams are the terminal (channel 1), and the terminal's ``onlcr`` turns
    each ``\\n`` into ``\\r\\n`` as a container's pty does.
    """
    frames: list[tuple[int, bytes]] = []
    for fd, data in result.writes():
        if tty:
            frames.append((STDOUT, data.replace(b"\n", b"\r\n")))
        elif fd == 1 and stdout:
            frames.append((STDOUT, data))
        elif fd == 2 and stderr:
            frames.append((STDERR, data))
    return frames


async def _run(ctx: ApiContext, pod: Obj, container: str, argv: list[str], stdin: bytes
               ) -> ExecResult:
    try:
        return await ctx.in_worker(ctx.exec_handler, ctx.runtime, pod, container, argv, stdin)
    except Exception as exc:  # the handler's bug or gap must reach the user, not vanish
        msg = f"embedded cluster: exec of {argv!r} in container {container!r} failed: {exc}\n"
        return ExecResult(126, b"", msg.encode())


def exit_status(argv: list[str], code: int) -> Obj:
    if code == 0:
        return {"metadata": {}, "status": "Success"}
    return {"metadata": {}, "status": "Failure",
            "message": f"command terminated with non-zero exit code: error executing command "
                       f"[{' '.join(argv)}], exit code {code}",
            "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]}}


async def _first_resize(ws: web.WebSocketResponse) -> None:
    """Wait for the client's terminal size (channel 4), as a container's tty is sized first.

    Closing before kubectl has sent it makes kubectl log ``Encoding terminal size failed``.
    """
    while True:
        msg = await ws.receive()
        if msg.type not in (WSMsgType.BINARY, WSMsgType.TEXT):
            return
        frame = msg.data if isinstance(msg.data, bytes) else str(msg.data).encode("utf-8")
        if frame[:1] == bytes([RESIZE]):
            return


async def _read_stdin(ws: web.WebSocketResponse, v5: bool) -> bytes:
    data = bytearray()
    while True:
        timeout = None if v5 else V4_STDIN_IDLE_SECONDS
        try:
            msg = await ws.receive(timeout=timeout)
        except TimeoutError:
            return bytes(data)
        if msg.type == WSMsgType.BINARY:
            frame = bytes(msg.data)
        elif msg.type == WSMsgType.TEXT:
            frame = str(msg.data).encode("utf-8")
        else:  # close or error: nothing more will come
            return bytes(data)
        if not frame:
            continue
        if v5 and frame[0] == CLOSE and frame[1:2] == bytes([STDIN]):
            return bytes(data)
        if frame[0] == STDIN:
            data += frame[1:]
