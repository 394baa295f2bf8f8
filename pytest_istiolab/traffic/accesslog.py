"""Envoy access-log lines as Istio 1.26 writes them to ``istio-proxy`` logs, parsed.

Istio's default TEXT format (meshConfig ``accessLogEncoding: TEXT``, no ``accessLogFormat``)::

  [%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" %RESPONSE_CODE%
  %RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS%
  "%UPSTREAM_TRANSPORT_FAILURE_REASON%" %BYTES_RECEIVED% %BYTES_SENT% %DURATION%
  %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%"
  "%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%" %UPSTREAM_CLUSTER_RAW%
  %UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS%
  %REQUESTED_SERVER_NAME% %ROUTE_NAME%

and the JSON one (``accessLogEncoding: JSON``: keys ``start_time``, ``method``, ``path``,
``response_code``, ``upstream_cluster`` …; numbers as numbers, absent values as null).

Both become an :class:`AccessLogEntry`; Envoy's ``-`` (and JSON null) become None, except
``flags``, which stays ``-`` when the response has none (as people grep for it). Other lines
of the container (istio-agent's ``info``/``warn`` lines, the 1.26 SDS chatter) are not access
log entries and are skipped. A line that starts like an access-log entry but does not parse
is an error naming the line: a custom ``accessLogFormat`` is not supported. Not handled: a
double quote inside a quoted field (e.g. a User-Agent containing ``"``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pytest_istiolab.errors import AccessLogFormatError
from pytest_istiolab.kube import Kube
from pytest_istiolab.timeouts import Timeouts
from pytest_istiolab.waiting import eventually

_Q = r'"([^"]*)"'
_S = r"(\S+)"
TEXT_RE = re.compile(
    r"^\[(\S+)\] " + r'"(\S+) (\S+) (\S+)" ' + " ".join(
        [_S, _S, _S, _S, _Q, _S, _S, _S, _S, _Q, _Q, _Q, _Q, _Q,
         _S, _S, _S, _S, _S, _S]) + r"\s*$")
_TEXT_START = re.compile(r"^\[\d{4}-\d\d-\d\dT[^\]]*\] \"")


@dataclass(frozen=True)
class AccessLogEntry:
    """One request (or TCP connection: ``method`` None) as one proxy logged it."""

    start_time: datetime
    method: str | None
    path: str | None
    protocol: str | None
    status: int  # 0: no response was sent (TCP, or the downstream went away)
    flags: str  # "-" when none, else e.g. "UH", "NR", "DC"
    details: str | None  # RESPONSE_CODE_DETAILS: via_upstream, direct_response, ...
    termination: str | None
    transport_failure: str | None
    bytes_received: int
    bytes_sent: int
    duration: int  # milliseconds
    upstream_service_time: int | None
    forwarded_for: str | None
    user_agent: str | None
    request_id: str | None
    authority: str | None
    upstream_host: str | None
    upstream_cluster: str | None
    upstream_local: str | None
    downstream_local: str | None
    downstream_remote: str | None
    server_name: str | None
    route_name: str | None
    line: str  # the line as logged

    @property
    def forwarded_chain(self) -> list[str]:
        """X-Forwarded-For as a list of addresses (empty when the header was absent)."""
        return [p.strip() for p in (self.forwarded_for or "").split(",") if p.strip()]

    @property
    def downstream_remote_ip(self) -> str | None:
        return _host_of(self.downstream_remote)

    @property
    def upstream_host_ip(self) -> str | None:
        return _host_of(self.upstream_host)


def parse_line(line: str) -> AccessLogEntry | None:
    """The entry of one log line; None for lines that are not access-log entries."""
    text = line.strip()
    if text.startswith("{"):
        return _parse_json(text)
    if _TEXT_START.match(text):
        return _parse_text(text)
    return None


def parse_log(text: str) -> list[AccessLogEntry]:
    """Every access-log entry of a container log, in log order."""
    entries = (parse_line(line) for line in text.splitlines())
    return [e for e in entries if e is not None]


# ------------------------------------------------------------------------- TEXT
def _parse_text(text: str) -> AccessLogEntry:
    match = TEXT_RE.match(text)
    if match is None:
        raise AccessLogFormatError(
            f"not Istio's default TEXT access-log format (a custom meshConfig.accessLogFormat?):"
            f" {text}", "the access-log checks read Istio's default TEXT format or JSON: drop "
            "meshConfig.accessLogFormat, or set meshConfig.accessLogEncoding=JSON")
    g = [_none(v) for v in match.groups()]
    return AccessLogEntry(
        start_time=_time(str(g[0])), method=g[1], path=g[2], protocol=g[3],
        status=_int(g[4]), flags=g[5] or "-", details=g[6], termination=g[7],
        transport_failure=g[8], bytes_received=_int(g[9]), bytes_sent=_int(g[10]),
        duration=_int(g[11]), upstream_service_time=_opt_int(g[12]), forwarded_for=g[13],
        user_agent=g[14], request_id=g[15], authority=g[16], upstream_host=g[17],
        upstream_cluster=g[18], upstream_local=g[19], downstream_local=g[20],
        downstream_remote=g[21], server_name=g[22], route_name=g[23], line=text)


# ------------------------------------------------------------------------- JSON
def _parse_json(text: str) -> AccessLogEntry | None:
    try:
        doc = json.loads(text)
    except ValueError:
        return None
    if not isinstance(doc, dict) or "start_time" not in doc or "response_code" not in doc:
        return None  # istio-agent's own JSON logs (level/msg), or something else

    def s(key: str) -> str | None:
        value = doc.get(key)
        return None if value is None else _none(str(value))

    return AccessLogEntry(
        start_time=_time(str(doc["start_time"])), method=s("method"), path=s("path"),
        protocol=s("protocol"), status=_int(doc.get("response_code")),
        flags=s("response_flags") or "-", details=s("response_code_details"),
        termination=s("connection_termination_details"),
        transport_failure=s("upstream_transport_failure_reason"),
        bytes_received=_int(doc.get("bytes_received")), bytes_sent=_int(doc.get("bytes_sent")),
        duration=_int(doc.get("duration")),
        upstream_service_time=_opt_int(s("upstream_service_time")),
        forwarded_for=s("x_forwarded_for"), user_agent=s("user_agent"),
        request_id=s("request_id"), authority=s("authority"), upstream_host=s("upstream_host"),
        upstream_cluster=s("upstream_cluster"), upstream_local=s("upstream_local_address"),
        downstream_local=s("downstream_local_address"),
        downstream_remote=s("downstream_remote_address"),
        server_name=s("requested_server_name"), route_name=s("route_name"), line=text)


# ---------------------------------------------------------------------- reading
class ProxyLog:
    """The access log of one pod's ``istio-proxy`` (``kubectl logs POD -c istio-proxy``).

    Envoy flushes access logs about once a second, so a request's line appears a moment after
    its response: :meth:`wait_for_new` polls. Entries are counted from the start of the log,
    so ``mark()`` before a request and ``wait_for_new(mark)`` after it see only later lines.
    """

    def __init__(self, kube: Kube, namespace: str, pod: str, timeouts: Timeouts,
                 container: str = "istio-proxy") -> None:
        self.kube, self.namespace, self.pod = kube, namespace, pod
        self.container, self.timeouts = container, timeouts

    def entries(self) -> list[AccessLogEntry]:
        return parse_log(self.kube.logs(self.namespace, self.pod, container=self.container))

    def mark(self) -> int:
        """How many entries the log has now."""
        return len(self.entries())

    def wait_for_new(self, mark: int, where: Callable[[AccessLogEntry], bool] = lambda e: True,
                     count: int = 1, description: str = "",
                     timeout: float | None = None) -> list[AccessLogEntry]:
        """The entries after ``mark`` that satisfy ``where``, once there are ``count``.

        ``timeout`` (default ``Timeouts.eventually``): shorter inside an outer wait that sends
        the request again, so a request that went elsewhere costs one short wait, not all."""

        def found() -> list[AccessLogEntry]:
            new = [e for e in self.entries()[mark:] if where(e)]
            assert len(new) >= count, (
                f"{len(new)} of {count} expected new access-log line(s) in {self.namespace}/"
                f"{self.pod} -c {self.container}; the log ends with:\n" + self.tail())
            return new

        return eventually(found, timeout=timeout or self.timeouts.eventually,
                          interval=self.timeouts.poll_interval,
                          description=description or f"access log of {self.pod}")

    def tail(self, lines: int = 10) -> str:
        text = self.kube.logs(self.namespace, self.pod, container=self.container,
                              tail_lines=lines)
        return text or "(empty)"


# ---------------------------------------------------------------------- helpers
def _none(value: str | None) -> str | None:
    return None if value in (None, "", "-") else value


def _int(value: Any) -> int:
    return 0 if value in (None, "", "-") else int(value)


def _opt_int(value: str | None) -> int | None:
    return None if value is None else int(value)


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _host_of(address: str | None) -> str | None:
    if not address:
        return None
    host, sep, _port = address.rpartition(":")
    return host.strip("[]") if sep else address
