"""Traffic helpers: curl command lines, their parsed output, Bookinfo page markers, statistics.

Nothing here talks to a cluster. The command lines are run in a client pod by ``Kube.exec``
(``curl`` from the sleep pod, as the manual does); the parsers read what real curl prints,
so the same code works against a real mesh and the embedded one.

Sending N requests costs one exec: ``batch_argv`` puts N URLs in one curl invocation and curl
prints one ``-w`` line per transfer (it carries on after a failed transfer).

Statistics are exact binomial tests (no normal approximation, no scipy): a weighted-routing check
states its sample size, what it saw, what it expected and how surprising that is.
"""

from __future__ import annotations

import html as html_lib
import json
import math
import re
from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

STATUS_TIME_FORMAT = "%{http_code} %{time_total} %{exitcode}\n"
# With bodies on stdout, every transfer ends with this line (the leading \n ends a body that has
# no final newline; the parser removes it again).
TRANSFER_MARK = "--istiolab-transfer--"
BODY_STATUS_FORMAT = "\n" + TRANSFER_MARK + " %{http_code} %{time_total} %{exitcode}\n"

K = TypeVar("K", bound=Hashable)
R = TypeVar("R")


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


# ------------------------------------------------------------------ tallies
def tally(values: Iterable[K]) -> Counter[K]:
    """How often each value occurs."""
    return Counter(values)


class Sampler(Generic[R, K]):
    """Collects results, classifies each (e.g. by reviews version), and describes the counts."""

    def __init__(self, classify: Callable[[R], K]) -> None:
        self.classify = classify
        self.results: list[R] = []
        self.counts: Counter[K] = Counter()

    def add(self, result: R) -> K:
        key = self.classify(result)
        self.results.append(result)
        self.counts[key] += 1
        return key

    def extend(self, results: Iterable[R]) -> None:
        for result in results:
            self.add(result)

    @property
    def total(self) -> int:
        return len(self.results)

    def fraction(self, key: K) -> float:
        return self.counts[key] / self.total if self.total else 0.0

    def describe(self) -> str:
        """``"v1: 48 (48.0 %), v3: 52 (52.0 %) of 100"``."""
        parts = [f"{key}: {n} ({100.0 * n / self.total:.1f} %)"
                 for key, n in self.counts.most_common()]
        return f"{', '.join(parts) or 'nothing'} of {self.total}"


# ------------------------------------------------------------------ Bookinfo pages
_STARS_TAILWIND = re.compile(r'class="flex gap-x-1 text-(black|red)-500"')
_STARS_LEGACY = re.compile(r'<font color="(black|red)">\s*(?:<!--[^>]*-->\s*)?'
                           r'<span class="glyphicon glyphicon-star')
_SERVED_BY = re.compile(r"Reviews served by:\s*([a-z0-9][a-z0-9.-]*)")
_TITLE = re.compile(r"<title>(.*?)</title>", re.S | re.I)
_H1 = re.compile(r"<h1[^>]*>(.*?)</h1>", re.S | re.I)
_REVIEWS_HEADING = re.compile(r">\s*Book Reviews\s*<")
_STAR_VERSION = {"black": "v2", "red": "v3"}


def star_color(page: str) -> str | None:
    """``"black"``/``"red"`` for the rating stars on a productpage, None without stars."""
    match = _STARS_TAILWIND.search(page) or _STARS_LEGACY.search(page)
    return match.group(1) if match else None


def reviews_version(page: str) -> str | None:
    """The reviews version a productpage shows: black stars v2, red v3, no stars v1.

    None when the page has no reviews section (an error page) or the ratings are unavailable
    (v2 and v3 then look alike; use :func:`reviews_pod`).
    """
    color = star_color(page)
    if color:
        return _STAR_VERSION[color]
    if not _REVIEWS_HEADING.search(page) or "Ratings service" in page:
        return None
    return "v1"


def reviews_pod(page: str) -> str | None:
    """The pod named by "Reviews served by:" (e.g. ``reviews-v2-65c4dc6fdc-xpb2d``)."""
    match = _SERVED_BY.search(page)
    return match.group(1) if match else None


def page_title(page: str) -> str | None:
    """The ``<title>`` of an HTML page ("Simple Bookstore App" for the productpage)."""
    match = _TITLE.search(page)
    return _text(match.group(1)) if match else None


def book_title(page: str) -> str | None:
    """The first ``<h1>`` ("The Comedy of Errors" on the productpage)."""
    match = _H1.search(page)
    return _text(match.group(1)) if match else None


def _text(fragment: str) -> str:
    return html_lib.unescape(re.sub(r"<[^>]+>", "", fragment)).strip()


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


# ------------------------------------------------------------------ statistics
def binomial_two_sided_p(k: int, n: int, p: float) -> float:
    """Exact two-sided binomial test (as R's ``binom.test``): P(an outcome no likelier than k)."""
    _check_binomial(k, n, p)
    return _p_values(n, p)[k]


def assert_proportion(k: int, n: int, expected: float, *, alpha: float = 1e-4,
                      description: str) -> float:
    """Fail when ``k`` successes in ``n`` are too unlikely under the ``expected`` proportion.

    ``alpha`` is the false-alarm rate a run accepts (1e-4: one spurious failure in 10,000
    runs). Returns the p-value.
    """
    __tracebackhide__ = True
    if n == 0:
        raise AssertionError(f"{description}: no samples were taken")
    p_value = binomial_two_sided_p(k, n, expected)
    if p_value < alpha:
        raise AssertionError(
            f"{description}: {k} of {n} ({100.0 * k / n:.1f} %) where {100.0 * expected:.1f} % "
            f"was expected; an exact two-sided binomial test gives p = {p_value:.3g} < "
            f"alpha = {alpha:g}: this is not chance at sample size {n}")
    return p_value


def required_samples(expected: float, wrong: float, *, alpha: float = 1e-4,
                     power: float = 0.99, max_n: int = 20000) -> int:
    """The smallest sample size at which a proportion of ``wrong`` (instead of ``expected``)
    fails :func:`assert_proportion` with probability at least ``power``.

    E.g. ``required_samples(0.5, 1.0)`` — how many requests tell a 50/50 split from "all to one
    version" — is 15 at alpha 1e-4.
    """
    if expected == wrong:
        raise ValueError("expected and wrong proportions must differ")
    if _power(max_n, expected, wrong, alpha) < power:
        raise ValueError(f"more than {max_n} samples needed to tell {expected} from {wrong}")
    low, high = 0, 1
    while _power(high, expected, wrong, alpha) < power:
        low, high = high, high * 2
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (mid, high) if _power(mid, expected, wrong, alpha) < power else (low, mid)
    return high


def _power(n: int, expected: float, wrong: float, alpha: float) -> float:
    p_values = _p_values(n, expected)
    return sum(math.exp(_log_pmf(k, n, wrong)) for k in range(n + 1) if p_values[k] < alpha)


def _p_values(n: int, p: float) -> list[float]:
    """The two-sided p-value of every outcome 0..n, in O(n log n)."""
    logs = [_log_pmf(k, n, p) for k in range(n + 1)]
    order = sorted(range(n + 1), key=lambda k: logs[k])
    result = [0.0] * (n + 1)
    cumulative, i = 0.0, 0
    while i <= n:
        # outcomes whose probability ties with order[i] (relative 1e-7, as R does) count together
        j, bound = i, logs[order[i]] + 1e-7
        while j <= n and logs[order[j]] <= bound:
            cumulative += math.exp(logs[order[j]])
            j += 1
        for m in range(i, j):
            result[order[m]] = min(1.0, cumulative) if logs[order[m]] > -math.inf else 0.0
        i = j
    return result


def _log_pmf(k: int, n: int, p: float) -> float:
    if p <= 0.0:
        return 0.0 if k == 0 else -math.inf
    if p >= 1.0:
        return 0.0 if k == n else -math.inf
    return (math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)
            + k * math.log(p) + (n - k) * math.log1p(-p))


def _check_binomial(k: int, n: int, p: float) -> None:
    if not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"a proportion is between 0 and 1, got {p}")
