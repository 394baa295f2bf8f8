"""What curl 8 prints: ``-w`` variables, ``-i``/``-I`` heads, ``-v`` traces, the progress meter."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..mesh.headers import Headers
from ..mesh.model import Response, reason_phrase

ERROR_MESSAGES = {
    1: 'Protocol "{scheme}" not supported',
    3: "URL rejected: {detail}",
    6: "Could not resolve host: {host}",
    7: "Failed to connect to {host} port {port} after {ms} ms: Could not connect to server",
    22: "The requested URL returned error: {status}",
    28: "Operation timed out after {ms} milliseconds with {received} bytes received",
    47: "Maximum ({max}) redirects followed",
    52: "Empty reply from server",
    56: "Recv failure: Connection reset by peer",
}
FAILURE_CODES = {"resolve": 6, "connect": 7, "timeout": 28, "reset": 56, "empty": 52, "tls": 35}


@dataclass
class Transfer:
    """One URL's transfer, with what ``-w`` can report about it."""

    url: str
    method: str
    host: str
    port: int
    scheme: str = "http"
    sent: Headers = field(default_factory=Headers)  # request headers as curl sent them
    path: str = "/"
    response: Response | None = None
    exit_code: int = 0
    error: str = ""
    redirects: int = 0
    total: float = 0.0
    local_ip: str = ""
    local_port: int = 0
    uploaded: int = 0

    @property
    def status(self) -> int:
        return self.response.status if self.response and not self.response.failure else 0


def status_line(response: Response) -> str:
    return f"HTTP/1.1 {response.status} {response.reason or reason_phrase(response.status)}"


def head_text(response: Response) -> str:
    """The status line and header fields, as the server sent them (CRLF line ends)."""
    lines = [status_line(response)]
    lines += [f"{k}: {v}" for k, v in response.headers]
    return "\r\n".join(lines) + "\r\n\r\n"


def write_out(fmt: str, t: Transfer) -> str:
    """Expand a ``--write-out`` format for one transfer (unknown variables print nothing)."""
    out, i = [], 0
    while i < len(fmt):
        ch = fmt[i]
        if ch == "\\" and i + 1 < len(fmt):
            out.append({"n": "\n", "r": "\r", "t": "\t"}.get(fmt[i + 1], fmt[i + 1]))
            i += 2
        elif fmt.startswith("%%", i):
            out.append("%")
            i += 2
        elif fmt.startswith("%{", i) and "}" in fmt[i:]:
            end = fmt.index("}", i)
            out.append(_variable(fmt[i + 2:end], t))
            i = end + 1
        elif fmt.startswith("%header{", i) and "}" in fmt[i:]:
            end = fmt.index("}", i)
            name = fmt[i + 8:end]
            out.append(t.response.headers.get(name) or "" if t.response else "")
            i = end + 1
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def _variable(name: str, t: Transfer) -> str:
    r = t.response
    ok = r is not None and r.failure is None
    body = len(r.body) if ok and r is not None else 0
    values: dict[str, object] = {
        "http_code": f"{t.status:03d}", "response_code": f"{t.status:03d}",
        "exitcode": t.exit_code, "errormsg": t.error, "url_effective": t.url, "url": t.url,
        "method": t.method, "scheme": t.scheme.upper(), "http_version": "1.1" if ok else "0",
        "remote_ip": r.remote_ip if r is not None else "", "local_ip": t.local_ip,
        "remote_port": r.remote_port if r is not None and r.remote_ip else "",
        "local_port": t.local_port, "num_redirects": t.redirects, "size_download": body,
        "size_upload": t.uploaded, "size_header": len(head_text(r)) if ok and r else 0,
        "size_request": 0, "content_type": (r.headers.get("content-type") or "") if ok and r
        else "", "redirect_url": (r.headers.get("location") or "") if ok and r else "",
        "time_total": _secs(t.total), "time_namelookup": _secs(min(t.total, 0.000021)),
        "time_connect": _secs(min(t.total, 0.000076)), "time_appconnect": _secs(0),
        "time_pretransfer": _secs(min(t.total, 0.000101)), "time_redirect": _secs(0),
        "time_starttransfer": _secs(t.total * 0.98),
        "speed_download": int(body / t.total) if t.total > 0 else 0, "speed_upload": 0,
        "num_connects": 1 if ok else 0, "ssl_verify_result": 0,
    }
    value = values.get(name)
    return "" if value is None else str(value)


def _secs(value: float) -> str:
    return f"{value:.6f}"


def error_text(code: int, **values: object) -> str:
    return ERROR_MESSAGES.get(code, "Unknown error").format(**values)


def progress_meter(t: Transfer) -> str:
    """curl's meter as it ends up on a non-terminal stderr (start and final update)."""
    head = ("  % Total    % Received % Xferd  Average Speed   Time    Time     Time  Current\n"
            "                                 Dload  Upload   Total   Spent    Left  Speed\n")
    zero = "  0     0    0     0    0     0      0      0 --:--:-- --:--:-- --:--:--     0"
    size = len(t.response.body) if t.response and not t.response.failure else 0
    if t.exit_code and not size:
        return head + "\r" + zero + "\n"
    speed = _human(int(size / t.total) if t.total > 0 else 0)
    spent = _clock(t.total)
    final = (f"100 {_human(size):>5}  100 {_human(size):>5}    0     0 {speed:>6}      0 "
             f"--:--:-- {spent} --:--:-- {speed:>6}")
    return head + "\r" + zero + "\r" + final + "\n"


def _human(n: int) -> str:
    if n < 100000:
        return str(n)
    for unit, size in (("k", 1024), ("M", 1024 ** 2), ("G", 1024 ** 3)):
        if n / size < 10000:
            return f"{n // size}{unit}"
    return f"{n // 1024 ** 4}T"


def _clock(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}" if s else "--:--:--"


def verbose_request(t: Transfer, ip: str) -> str:
    lines = [f"* Host {t.host}:{t.port} was resolved.", "* IPv6: (none)", f"* IPv4: {ip}",
             f"*   Trying {ip}:{t.port}...", f"* Connected to {t.host} ({ip}) port {t.port}",
             "* using HTTP/1.x", f"> {t.method} {t.path} HTTP/1.1"]
    lines += [f"> {k}: {v}" for k, v in t.sent]
    lines += ["> ", "* Request completely sent off"]
    return "\n".join(lines) + "\n"


def verbose_response(t: Transfer) -> str:
    r = t.response
    if r is None or r.failure is not None:
        return ""
    lines = [f"< {status_line(r)}"] + [f"< {k}: {v}" for k, v in r.headers]
    lines.append("< ")
    if r.body:
        lines.append(f"{{ [{len(r.body)} bytes data]")
    lines.append(f"* Connection #0 to host {t.host} left intact")
    return "\n".join(lines) + "\n"


def looks_like_url_error(url: str) -> str | None:
    """curl 8's URL parser objections (exit 3), or None."""
    if re.search(r"[\s\x00-\x1f\x7f]", url) or ("[" in url and "]" not in url):
        return "Malformed input to a URL function"
    return None
