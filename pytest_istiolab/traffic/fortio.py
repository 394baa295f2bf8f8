"""fortio command lines and output, and Envoy's stats text (``pilot-agent request GET stats``).

Pure builders and parsers; the command lines run in a client pod through ``Kube.exec``.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Sequence

# ------------------------------------------------------------------ fortio and Envoy stats
FORTIO = "/usr/bin/fortio"  # the manual's path in fortio/fortio images
_FORTIO_CODE = re.compile(r"^Code\s+(-?\d+)\s*:\s*(\d+)\s*\(", re.M)
_STAT_LINE = re.compile(r"^([^\s:][^:]*):\s*(-?\d+)\s*$", re.M)


def fortio_load_argv(url: str, *, connections: int = 1, qps: float = 0,
                     requests: int | None = None, loglevel: str | None = "Warning",
                     json_output: bool = False, curl: bool = False,
                     executable: str = FORTIO, extra: Sequence[str] = ()) -> list[str]:
    """``fortio load -c C -qps Q -n N -loglevel Warning URL`` (Lab 4.2); ``curl`` gives
    ``fortio load -curl URL`` (one request, response printed)."""
    if curl:
        return [executable, "load", "-curl", *extra, url]
    argv = [executable, "load", "-c", str(connections), "-qps", f"{qps:g}"]
    if requests is not None:
        argv += ["-n", str(requests)]
    if loglevel:
        argv += ["-loglevel", loglevel]
    if json_output:
        argv += ["-json", "-"]
    return [*argv, *extra, url]


def fortio_codes(output: str) -> Counter[int]:
    """Status counts from fortio's text (``Code 503 : 10 (50.0 %)``; -1 = connection errors),
    or from its ``-json -`` output (``RetCodes``)."""
    text = output.strip()
    if text.startswith("{"):
        try:  # the -json - document; fortio's text output starts with JSON log lines too
            codes = json.loads(text).get("RetCodes") or {}
            return Counter({int(k): int(v) for k, v in codes.items()})
        except ValueError:
            pass
    return Counter({int(code): int(n) for code, n in _FORTIO_CODE.findall(output)})


def envoy_stats(output: str) -> dict[str, int]:
    """Counters and gauges of ``pilot-agent request GET stats`` (``name: value`` lines)."""
    return {name.strip(): int(value) for name, value in _STAT_LINE.findall(output)}
