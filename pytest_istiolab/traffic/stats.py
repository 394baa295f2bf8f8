"""Tallies and exact binomial tests (no normal approximation, no scipy).

A weighted-routing check states its sample size, what it saw, what it expected and how
surprising that is.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Hashable, Iterable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
R = TypeVar("R")


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
