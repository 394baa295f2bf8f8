"""Envoy access-log lines as Istio 1.26 configures them, written to ``istio-proxy`` logs.

Lines are written only when ``meshConfig.accessLogFile`` is set (the demo profile sets
``/dev/stdout``, catalogue D-01). TEXT uses Istio's default format
(``pilot/pkg/model/telemetry_logging.go``, EnvoyTextLogFormat)::

  [%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" %RESPONSE_CODE%
  %RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS%
  "%UPSTREAM_TRANSPORT_FAILURE_REASON%" %BYTES_RECEIVED% %BYTES_SENT% %DURATION%
  %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%"
  "%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%" %UPSTREAM_CLUSTER_RAW%
  %UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS%
  %REQUESTED_SERVER_NAME% %ROUTE_NAME%

JSON (``accessLogEncoding: JSON``) uses the keys of EnvoyJSONLogFormatIstio; Envoy writes
numbers as numbers and absent values as null. (Envoy does not sort the keys; the order
here is fixed.) A custom ``accessLogFormat`` is not modelled: the default is used.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ..runtime import Runtime, iso_millis
from .config import MeshConfig, namespace_of

Obj = dict[str, Any]


@dataclass
class AccessRecord:
    """What one proxy knows about one request (None prints as ``-`` / null)."""

    start: float
    method: str | None = None
    path: str | None = None
    protocol: str | None = "HTTP/1.1"
    status: int = 0
    flags: str = "-"
    details: str | None = None
    termination: str | None = None
    transport_failure: str | None = None
    bytes_received: int = 0
    bytes_sent: int = 0
    duration_ms: int = 0
    upstream_service_time: str | None = None
    forwarded_for: str | None = None
    user_agent: str | None = None
    request_id: str | None = None
    authority: str | None = None
    upstream_host: str | None = None
    upstream_cluster: str | None = None
    upstream_local: str | None = None
    downstream_local: str | None = None
    downstream_remote: str | None = None
    server_name: str | None = None
    route_name: str | None = None


def _d(value: object) -> str:
    return "-" if value is None or value == "" else str(value)


def text_line(r: AccessRecord) -> str:
    request_line = "- - -" if r.method is None else f"{r.method} {_d(r.path)} {_d(r.protocol)}"
    return (f'[{iso_millis(r.start)}] "{request_line}" {r.status} {_d(r.flags)} '
            f'{_d(r.details)} {_d(r.termination)} "{_d(r.transport_failure)}" '
            f"{r.bytes_received} {r.bytes_sent} {r.duration_ms} {_d(r.upstream_service_time)} "
            f'"{_d(r.forwarded_for)}" "{_d(r.user_agent)}" "{_d(r.request_id)}" '
            f'"{_d(r.authority)}" "{_d(r.upstream_host)}" {_d(r.upstream_cluster)} '
            f"{_d(r.upstream_local)} {_d(r.downstream_local)} {_d(r.downstream_remote)} "
            f"{_d(r.server_name)} {_d(r.route_name)}")


def json_line(r: AccessRecord) -> str:
    def v(value: object) -> object:
        return None if value is None or value == "" else value

    fields = {
        "start_time": iso_millis(r.start), "route_name": v(r.route_name), "method": v(r.method),
        "path": v(r.path), "protocol": v(r.protocol), "response_code": r.status,
        "response_flags": r.flags or "-", "response_code_details": v(r.details),
        "connection_termination_details": v(r.termination), "bytes_received": r.bytes_received,
        "bytes_sent": r.bytes_sent, "duration": r.duration_ms,
        "upstream_service_time": v(r.upstream_service_time),
        "x_forwarded_for": v(r.forwarded_for), "user_agent": v(r.user_agent),
        "request_id": v(r.request_id), "authority": v(r.authority),
        "upstream_host": v(r.upstream_host), "upstream_cluster": v(r.upstream_cluster),
        "upstream_local_address": v(r.upstream_local),
        "downstream_local_address": v(r.downstream_local),
        "downstream_remote_address": v(r.downstream_remote),
        "requested_server_name": v(r.server_name),
        "upstream_transport_failure_reason": v(r.transport_failure),
    }
    return json.dumps(fields, separators=(",", ":"))


def format_line(mesh: MeshConfig, record: AccessRecord) -> str:
    return json_line(record) if mesh.access_log_encoding == "JSON" else text_line(record)


def write(runtime: Runtime, mesh: MeshConfig, proxy_pod: Obj, record: AccessRecord,
          when: float) -> None:
    """Append ``record`` to the proxy's ``istio-proxy`` log if access logging is on.

    ``when`` is the time Envoy flushes the line (the end of the stream), which orders the
    lines; the line itself carries the start time.
    """
    if not mesh.access_log_file:
        return
    runtime.logs.append(namespace_of(proxy_pod), proxy_pod["metadata"]["name"], "istio-proxy",
                        format_line(mesh, record), when)
