"""fortio's statistics and how it prints them (``fortio.org/fortio/stats``, Go's ``fmt``).

A :class:`Histogram` has fortio's bucket boundaries (0, 1 … 11, 12, 14 … 20, 25 … 50, 60 …
100, 120 … 200, 250 … 500, 600 … 1000, 2000, 3000, 4000, 5000, 7500, 10000, 20000 … 100000,
scaled by the resolution, 1 ms by default), its linear interpolation of percentiles, and its
text (``# range, mid point, percentile, count`` …) and JSON (``Count``, ``Min``, ``Max``,
``Sum``, ``Avg``, ``StdDev``, ``Data``, ``Percentiles``) forms. :func:`go_g` and
:func:`go_duration` print numbers and durations the way Go's ``%g`` and ``time.Duration`` do.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

Obj = dict[str, Any]
BUCKETS = (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 14, 16, 18, 20, 25, 30, 35, 40, 45, 50,
           60, 70, 80, 90, 100, 120, 140, 160, 180, 200, 250, 300, 350, 400, 450, 500, 600,
           700, 800, 900, 1000, 2000, 3000, 4000, 5000, 7500, 10000, 20000, 30000, 40000,
           50000, 75000, 100000)


# ---------------------------------------------------------------- Go formatting
def go_g(value: float, precision: int | None = None) -> str:
    """Go's ``%g`` (shortest representation) or ``%.Ng``."""
    if precision is not None:
        text = format(value, f".{precision}g")
        return _go_exponent(text)
    if value == 0:
        return "0"
    if math.isinf(value) or math.isnan(value):
        return {math.inf: "+Inf", -math.inf: "-Inf"}.get(value, "NaN")
    sign, digits, exponent = Decimal(repr(float(value))).normalize().as_tuple()
    text_digits = "".join(str(d) for d in digits)
    exp = len(text_digits) + int(exponent) - 1
    prefix = "-" if sign else ""
    if exp < -4 or exp >= 6:  # Go: shortest %g switches to %e from exponent 6
        mantissa = text_digits[0] + ("." + text_digits[1:] if len(text_digits) > 1 else "")
        return f"{prefix}{mantissa}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    return prefix + format(Decimal(repr(abs(float(value)))).normalize(), "f")


def _go_exponent(text: str) -> str:
    """Python writes ``1e-05`` as Go does; normalise ``e+5`` style just in case."""
    if "e" not in text:
        return text
    mantissa, _, exp = text.partition("e")
    sign = "-" if exp.startswith("-") else "+"
    return f"{mantissa}e{sign}{abs(int(exp)):02d}"


def go_duration(seconds: float) -> str:
    """Go's ``time.Duration.String()`` (``65.360704ms``, ``1.5s``, ``2m0s``, ``850µs``)."""
    nanos = int(round(seconds * 1e9))
    if nanos == 0:
        return "0s"
    sign, nanos = ("-", -nanos) if nanos < 0 else ("", nanos)
    if nanos < 1000:
        return f"{sign}{nanos}ns"
    if nanos < 1_000_000:
        return f"{sign}{_trim(nanos / 1e3)}µs"
    if nanos < 1_000_000_000:
        return f"{sign}{_trim(nanos / 1e6)}ms"
    total = nanos / 1e9
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    out = f"{int(hours)}h" if hours else ""
    out += f"{int(minutes)}m" if hours or minutes else ""
    return f"{sign}{out}{_trim(secs)}s"


def _trim(value: float) -> str:
    text = f"{value:.9f}".rstrip("0").rstrip(".")
    return text or "0"


# ---------------------------------------------------------------- counters
@dataclass
class Counter:
    count: int = 0
    minimum: float = 0.0
    maximum: float = 0.0
    total: float = 0.0
    squares: float = 0.0

    def record(self, value: float) -> None:
        if self.count == 0:
            self.minimum = self.maximum = value
        self.minimum, self.maximum = min(self.minimum, value), max(self.maximum, value)
        self.count += 1
        self.total += value
        self.squares += value * value

    @property
    def avg(self) -> float:
        return self.total / self.count if self.count else math.nan

    @property
    def stddev(self) -> float:
        if not self.count:
            return math.nan
        variance = (self.squares - self.total * self.total / self.count) / self.count
        return math.sqrt(max(0.0, variance))

    def line(self, label: str) -> str:
        return (f"{label} : count {self.count} avg {go_g(self.avg, 8)} +/- "
                f"{go_g(self.stddev, 4)} min {go_g(self.minimum)} max {go_g(self.maximum)} "
                f"sum {go_g(self.total, 9)}\n")


@dataclass
class Histogram(Counter):
    """fortio's histogram: ``offset`` and ``divider`` scale values onto :data:`BUCKETS`."""

    offset: float = 0.0
    divider: float = 0.001
    counts: list[int] = field(default_factory=lambda: [0] * (len(BUCKETS) + 1))

    def record(self, value: float) -> None:
        super().record(value)
        scaled = (value - self.offset) / self.divider - 0.0001
        if scaled <= BUCKETS[0]:
            index = 0
        elif scaled > BUCKETS[-1]:
            index = len(BUCKETS)
        else:
            index = bisect.bisect_right(BUCKETS, int(scaled))
        self.counts[index] += 1

    def buckets(self) -> list[Obj]:
        """fortio's ``Data``: [Start, End] with the cumulative percent and the count."""
        out: list[Obj] = []
        total, previous = 0, BUCKETS[0]
        last = max((i for i, c in enumerate(self.counts) if c), default=-1)
        for index in range(last + 1):
            count = self.counts[index]
            if count == 0:
                previous = BUCKETS[index] if index < len(BUCKETS) else previous
                continue
            total += count
            start = self.minimum if not out else self.divider * previous + self.offset
            if index < len(BUCKETS):
                end = self.divider * BUCKETS[index] + self.offset
                previous = BUCKETS[index]
            else:
                start, end = self.divider * previous + self.offset, self.maximum
            out.append({"Start": start, "End": end, "Percent": 100.0 * total / self.count,
                        "Count": count})
        if out:
            out[-1]["End"] = self.maximum
        return out

    def percentile(self, wanted: float, data: list[Obj]) -> float:
        if wanted >= 100:
            return self.maximum
        previous = 100.0 / self.count
        if wanted <= previous:
            return self.minimum
        for bucket in data:
            if wanted <= bucket["Percent"]:
                return float(bucket["Start"] + (wanted - previous) / (bucket["Percent"] - previous)
                             * (bucket["End"] - bucket["Start"]))
            previous = bucket["Percent"]
        return self.maximum

    def export(self, percentiles: list[float] | None) -> Obj:
        data = self.buckets()
        out: Obj = {"Count": self.count, "Min": self.minimum, "Max": self.maximum,
                    "Sum": self.total, "Avg": self.avg if self.count else 0,
                    "StdDev": self.stddev if self.count else 0, "Data": data or None}
        if percentiles and self.count:
            out["Percentiles"] = [{"Percentile": p, "Value": self.percentile(p, data)}
                                  for p in percentiles]
        return out

    def text(self, label: str, percentiles: list[float]) -> str:
        if not self.count:
            return f"{label} : no data\n"
        data = self.buckets()
        lines = [self.line(label), "# range, mid point, percentile, count\n"]
        for index, b in enumerate(data):
            sep = ">=" if index == 0 else ">"
            lines.append(f"{sep} {go_g(b['Start'], 6)} <= {go_g(b['End'], 6)} , "
                         f"{go_g((b['Start'] + b['End']) / 2, 6)} , {b['Percent']:.2f}, "
                         f"{b['Count']}\n")
        for p in percentiles:
            lines.append(f"# target {go_g(p)}% {go_g(self.percentile(p, data), 6)}\n")
        return "".join(lines)
