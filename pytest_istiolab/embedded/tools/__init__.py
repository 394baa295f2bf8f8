"""Commands exec'd in containers (``kubectl exec``), interpreted from argv, never by a shell.

Scope and limitations
---------------------
Modelled commands: ``curl`` (see :mod:`.curl`; plain HTTP), ``fortio`` (:mod:`.fortio`, in
the fortio image), ``pilot-agent request GET stats`` (:mod:`.pilot_agent`, in istio-proxy),
``cat FILE`` (files the tools
wrote), ``echo``, ``hostname``, ``true``, ``false``, and ``sh -c``/``bash -c`` with one
simple command (no pipes, redirections, ``;``/``&&`` lists or substitutions: with
``kubectl exec ... -- curl ... | grep``, the pipe runs on the caller's host anyway).
A command the image does not ship fails as the container runtime reports it (exit 126);
a command the embedded cluster does not model fails with exit 127 and lists what is.
Not yet: ``openssl``, ``nslookup``.

:func:`reads_stdin` tells the API server whether a command reads its stdin (``cat`` without
files or with ``-``, curl with ``@-`` data): only those wait for the client to close stdin, so
``kubectl exec -it POD -- curl ...`` from a terminal answers at once.
"""

from __future__ import annotations

import shlex
from typing import Any

from ..podspec import image_of
from ..runtime import ExecResult, Runtime
from ..workloads.kinds import curl_version, workload_kind
from .curl import Curl
from .vfs import files_of

Obj = dict[str, Any]
MODELLED = ("curl", "fortio", "pilot-agent request", "cat", "echo", "hostname", "true", "false",
            "sh -c", "bash -c")
NO_SHELL_KINDS = {"go-httpbin", "fortio"}  # distroless / scratch images
SHELL_OPERATORS = ("|", ";", "&", ">", "<", "$(", "`")


def run_in_container(runtime: Runtime, pod: Obj, container: str, argv: list[str],
                     stdin: bytes = b"") -> ExecResult:
    """Run ``argv`` in ``container`` of ``pod`` as ``kubectl exec`` would."""
    if not argv:
        return ExecResult(126, b"", b"OCI runtime exec failed: exec failed: unable to start "
                                    b"container process: exec: no command: unknown\n")
    image = _image(pod, container)
    command = argv[0].rsplit("/", 1)[-1]
    if command in ("sh", "bash") and len(argv) >= 3 and argv[1] == "-c":
        return _shell(runtime, pod, container, image, command, argv[2], stdin)
    if command in ("sh", "bash") and not _has_shell(image):
        return _not_in_image(argv[0])
    return _command(runtime, pod, container, image, argv, stdin)


def reads_stdin(argv: list[str]) -> bool:
    """Whether ``argv`` reads stdin before it ends (so its exec must wait for stdin)."""
    if not argv:
        return False
    command = argv[0].rsplit("/", 1)[-1]
    if command in ("sh", "bash") and len(argv) >= 3 and argv[1] == "-c":
        try:
            return reads_stdin(shlex.split(argv[2]))
        except ValueError:
            return False
    if command == "cat":
        return not argv[1:] or "-" in argv[1:]
    if command == "curl":
        from .curl_args import UsageError, parse

        try:
            opts = parse(argv[1:])
        except UsageError:
            return False
        return any(_reads_stdin_data(kind, value) for kind, value in opts.data)
    return False


def _reads_stdin_data(kind: str, value: str) -> bool:
    if kind == "data_urlencode":  # "@-" or "name@-"
        return value.endswith("@-") and "=" not in value.partition("@")[0]
    return kind != "data_raw" and value == "@-"


def _command(runtime: Runtime, pod: Obj, container: str, image: str, argv: list[str],
             stdin: bytes) -> ExecResult:
    command = argv[0].rsplit("/", 1)[-1]
    if command == "curl":
        version = curl_version(image)
        if version is None:
            return _not_in_image(argv[0])
        return Curl(runtime, pod, container, version, stdin).run(argv)
    if command == "fortio":
        if workload_kind(image) != "fortio":
            return _not_in_image(argv[0])
        from .fortio import Fortio

        return Fortio(runtime, pod, container).run(argv)
    if command == "pilot-agent":
        if workload_kind(image) != "proxyv2":
            return _not_in_image(argv[0])
        from . import pilot_agent

        return pilot_agent.run(runtime, pod, argv)
    if command in ("cat", "echo", "hostname", "true", "false"):
        if not _has_shell(image):
            return _not_in_image(argv[0])
        return _coreutil(runtime, pod, container, command, argv[1:], stdin)
    listed = ", ".join(MODELLED)
    return ExecResult(127, b"", f"{command}: command not found (the embedded cluster models: "
                                f"{listed})\n".encode())


def _coreutil(runtime: Runtime, pod: Obj, container: str, command: str, args: list[str],
              stdin: bytes) -> ExecResult:
    if command == "true":
        return ExecResult(0)
    if command == "false":
        return ExecResult(1)
    if command == "hostname":
        return ExecResult(0, f"{pod['metadata']['name']}\n".encode())
    if command == "echo":
        newline = not (args and args[0] == "-n")
        words = args[1:] if not newline else args
        return ExecResult(0, (" ".join(words) + ("\n" if newline else "")).encode())
    files = files_of(runtime, pod, container)
    out, err, code = bytearray(), bytearray(), 0
    for name in args or ["-"]:
        content = stdin if name == "-" else files.read(name)
        if content is None:
            err += f"cat: can't open '{name}': No such file or directory\n".encode()
            code = 1
        else:
            out += content
    return ExecResult(code, bytes(out), bytes(err))


def _shell(runtime: Runtime, pod: Obj, container: str, image: str, shell: str, script: str,
           stdin: bytes) -> ExecResult:
    if not _has_shell(image):
        return _not_in_image(shell)
    if any(op in script for op in SHELL_OPERATORS):
        return ExecResult(2, b"", f"{shell}: the embedded cluster runs one simple command in "
                                  f"'{shell} -c', not pipes, redirections, lists or "
                                  "substitutions\n".encode())
    try:
        words = shlex.split(script)
    except ValueError as problem:
        return ExecResult(2, b"", f"{shell}: syntax error: {problem}\n".encode())
    if not words:
        return ExecResult(0)
    result = _command(runtime, pod, container, image, words, stdin)
    if result.exit_code == 127:
        return ExecResult(127, b"", f"{shell}: {words[0]}: not found\n".encode())
    return result


def _image(pod: Obj, container: str) -> str:
    return image_of(pod, container)


def _has_shell(image: str) -> bool:
    return workload_kind(image) not in NO_SHELL_KINDS


def _not_in_image(command: str) -> ExecResult:
    message = (f'OCI runtime exec failed: exec failed: unable to start container process: '
               f'exec: "{command}": executable file not found in $PATH: unknown\n')
    return ExecResult(126, b"", message.encode())


__all__ = ["reads_stdin", "run_in_container"]
