"""``kubectl exec`` through the kubernetes client's websocket stream, with exit codes.

Facts this relies on (``reference/kubernetes-wire.md``): only ``_preload_content=False`` gives
access to the status channel (3), which carries the exit code; stdout (1) and stderr (2) are
read from their own channels, never concatenated; ``stream()`` swaps ``call_api`` on the
ApiClient it is given while the websocket connects, so a dedicated ApiClient is used and the
connect is serialized by a lock (reading the streams afterwards runs in parallel); an exec on
a missing pod surfaces as ``ApiException(status=0, "Handshake status 404 ...")``.

stdin is written and then closed with the v5 protocol's close frame; a server that only speaks
v4 cannot be told about end of input, so a command that reads stdin to the end would run into
the timeout there.
"""

from __future__ import annotations

import json
import shlex
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import yaml
from kubernetes import client as k8s_client
from kubernetes.client.rest import ApiException
from kubernetes.stream import stream
from websocket import WebSocketException

from pytest_istiolab.errors import ExecError

if TYPE_CHECKING:
    from pytest_istiolab.timeouts import Timeouts

STDOUT, STDERR, STATUS = 1, 2, 3
RECORD_LIMIT = 4000


@dataclass
class ExecResult:
    """What a command run in a pod printed and how it exited."""

    exit_code: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


class ExecMixin:
    """``Kube.exec``; expects ``_exec_client``, ``_exec_lock``, ``timeouts`` and ``_record``."""

    _exec_client: k8s_client.ApiClient
    _exec_lock: threading.Lock
    timeouts: Timeouts

    def _record(self, description: str, output: str) -> None:  # pragma: no cover - Kube's
        raise NotImplementedError

    def exec(self, namespace: str, pod: str, argv: list[str], container: str | None = None,
             stdin: str | bytes | None = None, timeout: float | None = None) -> ExecResult:
        """Run ``argv`` (no shell) in a container; a non-zero exit is a result, not an error."""
        limit = timeout if timeout is not None else self.timeouts.exec
        where = f"{namespace}/{pod}" + (f" -c {container}" if container else "")
        description = f"exec {where} -- {shlex.join(argv)}"
        ws = self._open_exec(namespace, pod, argv, container, stdin is not None)
        finished = False
        try:
            if stdin is not None:
                ws.write_stdin(stdin.encode() if isinstance(stdin, str) else stdin)
                ws.close_channel(0)
            finished = _drain(ws, limit)
            out, err = _text(ws.read_channel(STDOUT)), _text(ws.read_channel(STDERR))
            if not finished:
                self._record(description, f"(no exit after {limit:g} s)\n{out}{err}")
                raise ExecError(f"{description} did not finish within {limit:g} s; "
                                f"output so far: {_clip(out + err, 500)!r}",
                                "make the command end by itself (e.g. curl --max-time)")
            code = _exit_code(_text(ws.read_channel(STATUS)), description)
        finally:
            # a command still running would not answer the close handshake: do not wait for it
            ws.close(timeout=1.0 if finished else 0)
        self._record(description, f"exit code {code}\n{_clip(out, RECORD_LIMIT)}"
                                  f"{_clip(err, RECORD_LIMIT)}")
        return ExecResult(code, out, err)

    def _open_exec(self, namespace: str, pod: str, argv: list[str], container: str | None,
                   with_stdin: bool) -> Any:
        core = k8s_client.CoreV1Api(self._exec_client)
        with self._exec_lock:
            try:
                return stream(core.connect_get_namespaced_pod_exec, pod, namespace,
                              command=argv, container=container, stdin=with_stdin,
                              stdout=True, stderr=True, tty=False,
                              _preload_content=False, binary=True)
            except ApiException as err:
                raise _open_error(namespace, pod, container, err) from err


def _open_error(namespace: str, pod: str, container: str | None,
                err: ApiException) -> ExecError:
    reason = str(err.reason or err)
    if "404" in reason:
        return ExecError(f"cannot exec in pod {pod}: it does not exist in namespace {namespace}",
                         "check the pod name (pods are renamed when a Deployment rolls out)")
    target = f"pod {namespace}/{pod}" + (f" container {container}" if container else "")
    return ExecError(f"cannot exec in {target}: {_handshake_message(reason)}",
                     "check that the pod is running and the container name is right")


def _handshake_message(reason: str) -> str:
    """The Status message inside a failed websocket handshake's text, else the text."""
    start = reason.find('{"kind":"Status"')
    if start >= 0:
        try:
            status = json.loads(reason[start:reason.rindex("}") + 1])
            return str(status.get("message") or reason)
        except ValueError:
            pass
    return reason


def _drain(ws: Any, limit: float) -> bool:
    """Buffer everything until the server closes the stream (True) or time runs out (False)."""
    deadline = time.monotonic() + limit
    while ws.is_open():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        try:
            ws.update(timeout=min(remaining, 1.0))
        except (WebSocketException, OSError):
            return True  # connection dropped: the status channel tells whether that was the end
    return True


def _exit_code(status_text: str, description: str) -> int:
    """The exit code from the status channel's Status object."""
    try:
        status = yaml.safe_load(status_text) if status_text.strip() else None
    except yaml.YAMLError:
        status = None
    if not isinstance(status, dict):
        raise ExecError(f"{description}: the exec stream ended without an exit status",
                        "the API server or the connection failed; try again")
    if status.get("status") == "Success":
        return 0
    for cause in (status.get("details") or {}).get("causes") or []:
        if cause.get("reason") == "ExitCode":
            try:
                return int(cause.get("message"))
            except (TypeError, ValueError):
                break
    raise ExecError(f"{description}: {status.get('message') or json.dumps(status)}",
                    "check that the command exists in the container image")


def _text(data: str | bytes) -> str:
    return data.decode("utf-8", errors="replace") if isinstance(data, bytes) else data


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + f"... ({len(text) - limit} more)"
