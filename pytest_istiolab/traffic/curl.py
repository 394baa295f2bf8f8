"""curl command lines for a client pod and the parsed output of real curl.

Nothing here talks to a cluster. The command lines are run in a client pod by ``Kube.exec``
(``curl`` from the sleep pod, as the manual does); the parsers read what real curl prints,
so the same code works against a real mesh and the embedded one.

Sending N requests costs one exec: ``batch_argv`` puts N URLs in one curl invocation and curl
prints one ``-w`` line per transfer (it carries on after a failed transfer).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

STATUS_TIME_FORMAT = "%{http_code} %{time_total} %{exitcode}\n"
# With bodies on stdout, every transfer ends with this line (the leading \n ends a body that has
# no final newline; the parser removes it again).
TRANSFER_MARK = "--istiolab-transfer--"
BODY_STATUS_FORMAT = "\n" + TRANSFER_MARK + " %{http_code} %{time_total} %{exitcode}\n"


# ------------------------------------------------------------------ curl command lines
def curl_argv(
    url: str,
    *,
    method: str | None = None,
    headers: dict[str, str] | None = None,
    data: str | None = None,
    write_out: str | None = None,
    output: str | None = "/dev/null",
    include_headers: bool = False,
    max_time: float | None = None,
    resolve: str | None = None,
    cookie_jar: str | None = None,
    cookie_file: str | None = None,
    insecure: bool = False,
    extra: Sequence[str] = (),
) -> list[str]:
    """``curl -s ...`` for one URL; ``output=None`` sends the body to stdout."""
    argv = ["curl", "-s", *_options(method, headers, data, write_out, include_headers,
                                    max_time, resolve, cookie_jar, cookie_file, insecure, extra)]
    if output is not None:
        argv += ["-o", output]
    return [*argv, url]


def batch_argv(
    urls: Sequence[str],
    *,
    method: str | None = None,
    headers: dict[str, str] | None = None,
    data: str | None = None,
    write_out: str | None = None,
    output: str | None = "/dev/null",
    include_headers: bool = False,
    max_time: float | None = None,
    resolve: str | None = None,
    cookie_jar: str | None = None,
    cookie_file: str | None = None,
    insecure: bool = False,
    extra: Sequence[str] = (),
) -> list[str]:
    """One curl invocation for N requests; ``parse_batch`` reads its stdout.

    With ``output`` set (default ``/dev/null``) each transfer prints ``STATUS_TIME_FORMAT``;
    with ``output=None`` the bodies go to stdout, each followed by a ``TRANSFER_MARK`` line.
    """
    if not urls:
        raise ValueError("batch_argv needs at least one URL")
    if write_out is None:
        write_out = STATUS_TIME_FORMAT if output is not None else BODY_STATUS_FORMAT
    argv = ["curl", "-s", *_options(method, headers, data, write_out, include_headers,
                                    max_time, resolve, cookie_jar, cookie_file, insecure, extra)]
    for url in urls:
        argv += (["-o", output, url] if output is not None else [url])
    return argv


def _options(method: str | None, headers: dict[str, str] | None, data: str | None,
             write_out: str | None, include_headers: bool, max_time: float | None,
             resolve: str | None, cookie_jar: str | None, cookie_file: str | None,
             insecure: bool, extra: Sequence[str]) -> list[str]:
    opts: list[str] = []
    if method:
        opts += ["-X", method]
    for name, value in (headers or {}).items():
        opts += ["-H", f"{name}: {value}"]
    if data is not None:
        opts += ["--data-raw" if data.startswith("@") else "-d", data]
    if include_headers:
        opts.append("-i")
    if write_out is not None:
        opts += ["-w", write_out]
    if max_time is not None:
        opts += ["--max-time", f"{max_time:g}"]
    if resolve:
        opts += ["--resolve", resolve]
    if cookie_jar:
        opts += ["-c", cookie_jar]
    if cookie_file:
        opts += ["-b", cookie_file]
    if insecure:
        opts.append("-k")
    return [*opts, *extra]


# ------------------------------------------------------------------ curl output
@dataclass
class CurlResult:
    """One transfer: ``status`` 0 when no HTTP response came back (curl prints ``000``)."""

    status: int
    time_total: float
    exit_code: int
    body: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


def parse_status_line(line: str, body: str | None = None) -> CurlResult:
    """``"200 0.012 0"`` (``STATUS_TIME_FORMAT``) as a :class:`CurlResult`."""
    parts = line.split()
    if len(parts) != 3:
        raise ValueError(f"not a curl status line ('%{{http_code}} %{{time_total}} "
                         f"%{{exitcode}}'): {line!r}")
    try:
        status, seconds, code = int(parts[0]), float(parts[1]), int(parts[2])
    except ValueError as err:
        raise ValueError(f"not a curl status line: {line!r}") from err
    headers: dict[str, str] = {}
    if body is not None and body.startswith("HTTP/"):
        headers, body = split_head(body)
    return CurlResult(status, seconds, code, body, headers)


def parse_batch(stdout: str) -> list[CurlResult]:
    """Every transfer of a ``batch_argv`` run, in order (either output layout)."""
    if TRANSFER_MARK in stdout:
        return _parse_marked(stdout)
    return [parse_status_line(line) for line in stdout.splitlines() if line.strip()]


def _parse_marked(stdout: str) -> list[CurlResult]:
    results = []
    chunks = stdout.split("\n" + TRANSFER_MARK + " ")
    body = chunks[0]
    for chunk in chunks[1:]:
        status_line, _, rest = chunk.partition("\n")
        results.append(parse_status_line(status_line, body))
        body = rest
    return results


def split_head(text: str) -> tuple[dict[str, str], str]:
    """Headers (lower-cased names; the last head after redirects/100s) and the body of ``-i``."""
    headers: dict[str, str] = {}
    rest = text
    while rest.startswith("HTTP/"):
        head, sep, rest = _split_blank_line(rest)
        headers = {}
        for line in head.splitlines()[1:]:
            name, _, value = line.partition(":")
            if name:
                headers[name.strip().lower()] = value.strip()
        if not sep:
            break
    return headers, rest


def _split_blank_line(text: str) -> tuple[str, str, str]:
    for sep in ("\r\n\r\n", "\n\n"):
        if sep in text:
            return text.partition(sep)
    return text, "", ""
