"""A PromQL evaluator for the subset the labs and the Istio dashboards use.

Parsing is ``promql-parser`` (a port of Prometheus's own parser, so syntax errors read as
Prometheus's do); evaluation is ours, over series whose samples are known at every instant
(see ``workloads/prometheus``).

Scope and limitations
---------------------
Evaluated: instant and range selectors with ``=``, ``!=``, ``=~``, ``!~`` matchers (regexes
anchored, as Prometheus does) and ``offset``; ``rate`` and ``increase`` (the exact
increase over the window, divided by its length for ``rate``: no extrapolation, because
every sample is known), ``irate`` (a real Prometheus takes the last two samples in the
window, one scrape interval apart: here the increase over the last :data:`SCRAPE_INTERVAL`
divided by it; no result for a window shorter than that, which holds one sample; a series
younger than that counts from 0, as ``rate`` does, where a real Prometheus has no result
until its second scrape), ``histogram_quantile`` (Prometheus's linear interpolation inside
the bucket), ``label_replace``, ``label_join``, ``round``, ``abs``, ``ceil``, ``floor``,
``vector``, ``scalar``, ``time``; aggregations ``sum``, ``avg``, ``min``, ``max``, ``count``
with ``by``/``without``; arithmetic and comparison operators (``bool`` too) between scalars
and vectors and between vectors matched one-to-one (``on``/``ignoring``); ``and``, ``or``,
``unless``; parentheses and unary minus. Anything else (subqueries, ``@``, ``group_left``,
``topk``, other functions) raises :class:`Unsupported`, which the server answers as
Prometheus's ``bad_data`` naming what is not modelled.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import promql_parser as pp

Labels = dict[str, str]
LOOKBACK = 300.0  # Prometheus's default lookback delta (5m)
SCRAPE_INTERVAL = 15.0  # the addon's global scrape_interval: irate's two samples


@dataclass
class Const:
    """A series whose value is fixed from ``since`` on (a gauge the model does not vary)."""

    value: float
    since: float

    def at(self, when: float) -> float | None:
        return self.value if when >= self.since else None

    def window(self, start: float, end: float) -> list[tuple[float, float]]:
        return [(max(start, self.since), self.value)] if end >= self.since else []


class Unsupported(ValueError):
    """A valid query using PromQL the model does not evaluate."""


class QueryError(ValueError):
    """An evaluation error Prometheus reports as ``bad_data`` / ``execution``."""


@dataclass
class Sample:
    labels: Labels
    value: float


@dataclass
class RangeSeries:
    labels: Labels
    points: list[tuple[float, float]]  # (time, cumulative value) in the window
    before: float | None  # the value just before the window (None: the series is younger)


class Source:
    """What the evaluator reads: every series, with its value at an instant and in a window."""

    def series(self) -> Iterable[tuple[Labels, Any]]:  # (labels with __name__, series)
        raise NotImplementedError

    @staticmethod
    def at(series: Any, when: float) -> float | None:
        return series.at(when)

    @staticmethod
    def window(series: Any, start: float, end: float) -> list[tuple[float, float]]:
        return series.window(start, end)


Value = list[Sample] | float | str | list[RangeSeries]


def parse(query: str) -> Any:
    try:
        return pp.parse(query)
    except ValueError as exc:
        raise QueryError(f"1:1: parse error: {exc}") from None


def evaluate(query: str, source: Source, when: float) -> tuple[str, Value]:
    """(resultType, value) of ``query`` at ``when``."""
    result = Evaluator(source, when).eval(parse(query))
    if isinstance(result, float):
        return "scalar", result
    if isinstance(result, str):
        return "string", result
    if result and isinstance(result[0], RangeSeries):
        return "matrix", result
    return "vector", result


def _seconds(delta: Any) -> float:
    return float(delta.total_seconds()) if delta is not None else 0.0


def _matches(matcher: Any, value: str) -> bool:
    op = matcher.op
    if op == pp.MatchOp.Equal:
        return value == matcher.value
    if op == pp.MatchOp.NotEqual:
        return value != matcher.value
    hit = re.fullmatch(matcher.value, value) is not None
    return hit if op == pp.MatchOp.Re else not hit


def _key(labels: Labels, names: list[str] | None, without: bool) -> tuple[tuple[str, str], ...]:
    if names is None:
        return ()
    if without:
        return tuple(sorted((k, v) for k, v in labels.items()
                            if k not in names and k != "__name__"))
    return tuple(sorted((k, labels[k]) for k in names if labels.get(k, "") != ""))


def _drop_name(labels: Labels) -> Labels:
    return {k: v for k, v in labels.items() if k != "__name__"}


AGGREGATES: dict[str, Callable[[list[float]], float]] = {
    "sum": sum, "avg": lambda v: sum(v) / len(v), "min": min, "max": max,
    "count": lambda v: float(len(v))}
ARITH: dict[str, Callable[[float, float], float]] = {
    "+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b,
    "/": lambda a, b: a / b if b else (math.nan if a == 0 else math.copysign(math.inf, a)),
    "%": lambda a, b: math.fmod(a, b) if b else math.nan, "^": lambda a, b: a ** b}
COMPARE: dict[str, Callable[[float, float], bool]] = {
    "==": lambda a, b: a == b, "!=": lambda a, b: a != b, ">": lambda a, b: a > b,
    "<": lambda a, b: a < b, ">=": lambda a, b: a >= b, "<=": lambda a, b: a <= b}


class Evaluator:
    def __init__(self, source: Source, when: float) -> None:
        self.source, self.when = source, when

    def eval(self, node: Any) -> Value:
        kind = type(node).__name__
        handler = getattr(self, f"_{kind}", None)
        if handler is None:
            raise Unsupported(f"{kind} is not modelled by the embedded Prometheus")
        return handler(node)

    # ------------------------------------------------------------- leaves
    def _NumberLiteral(self, node: Any) -> float:
        return float(node.val)

    def _StringLiteral(self, node: Any) -> str:
        return str(node.val)

    def _ParenExpr(self, node: Any) -> Value:
        return self.eval(node.expr)

    def _UnaryExpr(self, node: Any) -> Value:
        value = self.eval(node.expr)
        if isinstance(value, float):
            return -value
        return [Sample(_drop_name(s.labels), -s.value) for s in self._vector(value)]

    def _selected(self, vs: Any) -> Iterable[tuple[Labels, Any]]:
        if vs.at is not None:
            raise Unsupported("the @ modifier is not modelled by the embedded Prometheus")
        if vs.matchers.or_matchers:
            raise Unsupported("'or' inside a selector is not modelled")
        for labels, series in self.source.series():
            if vs.name and labels.get("__name__") != vs.name:
                continue
            if all(_matches(m, labels.get(m.name, "")) for m in vs.matchers.matchers):
                yield labels, series

    def _VectorSelector(self, node: Any) -> list[Sample]:
        when = self.when - _seconds(node.offset)
        out = []
        for labels, series in self._selected(node):
            value = self.source.at(series, when)
            if value is not None:
                out.append(Sample(dict(labels), value))
        return out

    def _MatrixSelector(self, node: Any) -> list[RangeSeries]:
        vs = node.vector_selector
        end = self.when - _seconds(vs.offset)
        start = end - _seconds(node.range)
        out = []
        for labels, series in self._selected(vs):
            points = self.source.window(series, start, end)
            before = self.source.at(series, start)
            if points or before is not None:
                out.append(RangeSeries(dict(labels), points, before))
        return out

    # ------------------------------------------------------------- functions
    def _Call(self, node: Any) -> Value:
        name = node.func.name
        args = list(node.args)
        if name in ("rate", "increase", "irate"):
            matrix = self.eval(args[0])
            if not isinstance(matrix, list) or (matrix and not isinstance(matrix[0], RangeSeries)):
                raise QueryError(f"expected type range vector in call to function \"{name}\"")
            window = _seconds(args[0].range)
            end = self.when - _seconds(args[0].vector_selector.offset)
            rates = (self._rate(name, r, window, end) for r in matrix)  # type: ignore[arg-type]
            return [s for s in rates if s is not None]
        if name == "histogram_quantile":
            q = self._scalar(self.eval(args[0]))
            return _histogram_quantile(q, self._vector(self.eval(args[1])))
        if name == "vector":
            return [Sample({}, self._scalar(self.eval(args[0])))]
        if name == "scalar":
            v = self._vector(self.eval(args[0]))
            return v[0].value if len(v) == 1 else math.nan
        if name == "time":
            return float(self.when)
        if name in ("round", "abs", "ceil", "floor"):
            vector = self._vector(self.eval(args[0]))
            to = self._scalar(self.eval(args[1])) if len(args) > 1 else 1.0
            fn: Callable[[float], float] = {  # type: ignore[assignment]
                "abs": abs, "ceil": math.ceil, "floor": math.floor,
                "round": lambda x: math.floor(x / to + 0.5) * to}[name]
            return [Sample(_drop_name(s.labels), float(fn(s.value))) for s in vector]
        if name == "label_replace":
            vector = self._vector(self.eval(args[0]))
            dst, repl, src, regex = (self._string(a) for a in args[1:5])
            out = []
            for s in vector:
                match = re.fullmatch(regex, s.labels.get(src, ""))
                labels = dict(s.labels)
                if match:
                    value = match.expand(re.sub(r"\$(\d+)", r"\\\1", repl))
                    if value:
                        labels[dst] = value
                    else:
                        labels.pop(dst, None)
                out.append(Sample(labels, s.value))
            return out
        if name == "label_join":
            vector = self._vector(self.eval(args[0]))
            dst, sep = self._string(args[1]), self._string(args[2])
            srcs = [self._string(a) for a in args[3:]]
            return [Sample({**s.labels, dst: sep.join(s.labels.get(x, "") for x in srcs)},
                           s.value) for s in vector]
        raise Unsupported(f"function {name}() is not modelled by the embedded Prometheus")

    @staticmethod
    def _irate(labels: Labels, r: RangeSeries, window: float, end: float) -> Sample | None:
        if window < SCRAPE_INTERVAL:
            return None
        last = r.points[-1][1] if r.points else r.before
        earlier = [v for t, v in r.points if t <= end - SCRAPE_INTERVAL]
        first = earlier[-1] if earlier else r.before  # the value 15 s before the end
        if last is None:
            return None
        first = 0.0 if first is None else first
        return Sample(labels, (last - first) / SCRAPE_INTERVAL)

    def _rate(self, name: str, r: RangeSeries, window: float, end: float) -> Sample | None:
        labels = _drop_name(r.labels)
        if name == "irate":
            return self._irate(labels, r, window, end)
        last = r.points[-1][1] if r.points else r.before
        first = r.before if r.before is not None else 0.0
        increase = float(last or 0.0) - first
        return Sample(labels, increase / window if name == "rate" else increase)

    # ------------------------------------------------------------- aggregation
    def _AggregateExpr(self, node: Any) -> list[Sample]:
        op = str(node.op)
        if op not in AGGREGATES:
            raise Unsupported(f"aggregation {op} is not modelled by the embedded Prometheus")
        vector = self._vector(self.eval(node.expr))
        names, without = None, False
        if node.modifier is not None:
            names = list(node.modifier.labels)
            without = node.modifier.type == pp.AggModifierType.Without
        groups: dict[tuple[tuple[str, str], ...], list[float]] = {}
        for s in vector:
            groups.setdefault(_key(s.labels, names, without), []).append(s.value)
        return [Sample(dict(k), AGGREGATES[op](v)) for k, v in sorted(groups.items())]

    # ------------------------------------------------------------- binary
    def _BinaryExpr(self, node: Any) -> Value:
        op = str(node.op)
        lhs, rhs = self.eval(node.lhs), self.eval(node.rhs)
        mod = node.modifier
        return_bool = bool(mod is not None and mod.return_bool)
        if op in ("and", "or", "unless"):
            return self._set_op(op, self._vector(lhs), self._vector(rhs), mod)
        if op not in ARITH and op not in COMPARE:
            raise Unsupported(f"operator {op} is not modelled by the embedded Prometheus")
        if isinstance(lhs, float) and isinstance(rhs, float):
            if op in ARITH:
                return ARITH[op](lhs, rhs)
            return 1.0 if COMPARE[op](lhs, rhs) else 0.0
        if isinstance(lhs, float) or isinstance(rhs, float):
            scalar_left = isinstance(lhs, float)
            vector = self._vector(rhs if scalar_left else lhs)
            k = float(lhs if scalar_left else rhs)  # type: ignore[arg-type]
            out = []
            for s in vector:
                a, b = (k, s.value) if scalar_left else (s.value, k)
                out.extend(self._apply(op, a, b, s.labels, s.value, return_bool))
            return out
        return self._vector_vector(op, self._vector(lhs), self._vector(rhs), mod, return_bool)

    def _apply(self, op: str, a: float, b: float, labels: Labels, keep: float,
               return_bool: bool) -> list[Sample]:
        if op in ARITH:
            return [Sample(_drop_name(labels), ARITH[op](a, b))]
        hit = COMPARE[op](a, b)
        if return_bool:
            return [Sample(_drop_name(labels), 1.0 if hit else 0.0)]
        return [Sample(labels, keep)] if hit else []

    def _match_key(self, labels: Labels, mod: Any) -> tuple[tuple[str, str], ...]:
        matching = getattr(mod, "matching", None) if mod is not None else None
        if matching is None:
            return tuple(sorted(_drop_name(labels).items()))
        names = list(matching.labels)
        if matching.type == pp.LabelModifierType.Include:
            return tuple(sorted((n, labels.get(n, "")) for n in names))
        return tuple(sorted((k, v) for k, v in _drop_name(labels).items() if k not in names))

    def _vector_vector(self, op: str, lhs: list[Sample], rhs: list[Sample], mod: Any,
                       return_bool: bool) -> list[Sample]:
        if mod is not None and mod.card != pp.VectorMatchCardinality.OneToOne:
            raise Unsupported("group_left/group_right are not modelled by the embedded "
                              "Prometheus")
        right: dict[tuple[tuple[str, str], ...], Sample] = {}
        for s in rhs:
            key = self._match_key(s.labels, mod)
            if key in right:
                raise QueryError("found duplicate series for the match group on the right "
                                 "hand-side of the operation; many-to-many matching not "
                                 "allowed: matching labels must be unique on one side")
            right[key] = s
        out = []
        for s in lhs:
            other = right.get(self._match_key(s.labels, mod))
            if other is not None:
                labels = s.labels
                if getattr(mod, "matching", None) is not None and \
                        mod.matching.type == pp.LabelModifierType.Include:
                    labels = dict(self._match_key(s.labels, mod))
                out.extend(self._apply(op, s.value, other.value, labels, s.value, return_bool))
        return out

    def _set_op(self, op: str, lhs: list[Sample], rhs: list[Sample], mod: Any) -> list[Sample]:
        right = {self._match_key(s.labels, mod) for s in rhs}
        if op == "and":
            return [s for s in lhs if self._match_key(s.labels, mod) in right]
        if op == "unless":
            return [s for s in lhs if self._match_key(s.labels, mod) not in right]
        left = {self._match_key(s.labels, mod) for s in lhs}
        return lhs + [s for s in rhs if self._match_key(s.labels, mod) not in left]

    # ------------------------------------------------------------- coercion
    def _vector(self, value: Value) -> list[Sample]:
        if isinstance(value, list) and (not value or isinstance(value[0], Sample)):
            return value  # type: ignore[return-value]
        if isinstance(value, list):
            raise QueryError("ranges only allowed for vector selectors")
        raise QueryError(f"expected an instant vector, got {type(value).__name__}")

    def _scalar(self, value: Value) -> float:
        if isinstance(value, float):
            return value
        raise QueryError("expected a scalar")

    def _string(self, node: Any) -> str:
        value = self.eval(node)
        if not isinstance(value, str):
            raise QueryError("expected a string")
        return value


def _histogram_quantile(q: float, buckets: list[Sample]) -> list[Sample]:
    groups: dict[tuple[tuple[str, str], ...], list[tuple[float, float]]] = {}
    for s in buckets:
        if "le" not in s.labels:
            continue
        le = math.inf if s.labels["le"] == "+Inf" else float(s.labels["le"])
        key = tuple(sorted((k, v) for k, v in _drop_name(s.labels).items() if k != "le"))
        groups.setdefault(key, []).append((le, s.value))
    out = []
    for key, pairs in sorted(groups.items()):
        out.append(Sample(dict(key), _quantile(q, sorted(pairs))))
    return out


def _quantile(q: float, pairs: list[tuple[float, float]]) -> float:
    """Prometheus's bucketQuantile (cumulative counts by upper bound)."""
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    if len(pairs) < 2 or pairs[-1][0] != math.inf:
        return math.nan
    total = pairs[-1][1]
    if total == 0:
        return math.nan
    rank = q * total
    for i, (le, count) in enumerate(pairs):
        if count >= rank:
            if le == math.inf:
                return pairs[-2][0]
            lower, below = (0.0, 0.0) if i == 0 else pairs[i - 1]
            if i == 0 and le <= 0:
                return le
            in_bucket = count - below
            return lower + (le - lower) * ((rank - below) / in_bucket if in_bucket else 0.0)
    return math.nan
