"""Polling for eventual consistency: ``eventually`` (becomes true), ``consistently`` (stays true).

A mesh applies configuration asynchronously (istiod pushes to every Envoy), so a traffic check
right after ``kubectl apply`` may see the old routing for a moment. ``eventually`` retries a check
until it passes ``consecutive`` times in a row (Gateway API conformance uses 3), and when it never
does, raises the last failure with the description, the time spent and the number of attempts.

Checks signal "not yet" by raising ``AssertionError`` (or one of ``retry_on``); so do transport
errors (:data:`TRANSIENT`: connection refused or reset, a timeout), because right after an apply
a gateway may not listen yet on a real cluster. Any other exception ends the wait at once — a
broken test must not be retried for 30 s. The clock and the sleep are parameters so the module
is tested without sleeping.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Generic, TypeVar

import httpx
from tenacity import RetryError, Retrying, retry_if_exception_type

T = TypeVar("T")
# not yet, rather than broken: a refused/reset connection or a timeout (httpx's, the socket's)
TRANSIENT: tuple[type[BaseException], ...] = (AssertionError, httpx.TransportError,
                                              ConnectionError, TimeoutError)
Clock = Callable[[], float]
Sleep = Callable[[float], None]


class _NotYet(Exception):
    """Passed, but not yet ``consecutive`` times in a row."""

    def __init__(self, streak: int, needed: int) -> None:
        super().__init__(f"passed {streak} time(s) in a row, {needed} needed")


def eventually(
    fn: Callable[[], T],
    *,
    timeout: float,
    interval: float,
    consecutive: int = 1,
    description: str,
    retry_on: tuple[type[BaseException], ...] = TRANSIENT,
    clock: Clock = time.monotonic,
    sleep: Sleep = time.sleep,
) -> T:
    """Call ``fn`` until it returns without raising ``consecutive`` times in a row; its last result.

    Raises ``AssertionError`` "<description>: not true after <timeout> s (<N> attempts); last
    failure: ..." (chained to the last failure) when the time runs out.
    """
    __tracebackhide__ = True
    if consecutive < 1:
        raise ValueError("consecutive must be at least 1")
    deadline = clock() + timeout
    state = _Streak(fn, consecutive)
    retrying = Retrying(
        sleep=sleep,
        stop=lambda _rs: clock() >= deadline,
        wait=lambda _rs: max(0.0, min(interval, deadline - clock())),
        retry=retry_if_exception_type((*retry_on, _NotYet)),
        reraise=False,
    )
    try:
        return retrying(state.attempt)
    except RetryError as err:
        raise _timeout_error(description, timeout, err.last_attempt.attempt_number,
                             state) from state.last_failure


def consistently(
    fn: Callable[[], object],
    *,
    duration: float,
    interval: float,
    description: str,
    clock: Clock = time.monotonic,
    sleep: Sleep = time.sleep,
) -> None:
    """Call ``fn`` repeatedly for ``duration`` seconds; the first failure is raised at once.

    The failure is an ``AssertionError`` "<description>: stopped being true after <t> s
    (attempt <N>): ..." chained to the original one. At least one attempt is always made.
    """
    __tracebackhide__ = True
    start = clock()
    attempt = 0
    while True:
        attempt += 1
        try:
            fn()
        except AssertionError as err:
            elapsed = clock() - start
            raise AssertionError(
                f"{description}: stopped being true after {elapsed:.1f} s "
                f"(attempt {attempt}): {_one_line(err)}") from err
        remaining = start + duration - clock()
        if remaining <= 0:
            return
        sleep(min(interval, remaining))


def poll_until(
    predicate: Callable[[], bool],
    *,
    timeout: float,
    interval: float,
    clock: Clock = time.monotonic,
    sleep: Sleep = time.sleep,
) -> bool:
    """Poll ``predicate`` until it is true (True) or the time runs out (False); never raises."""
    deadline = clock() + timeout
    while True:
        if predicate():
            return True
        remaining = deadline - clock()
        if remaining <= 0:
            return False
        sleep(min(interval, remaining))


class _Streak(Generic[T]):
    """Counts successes in a row; remembers the last real failure."""

    def __init__(self, fn: Callable[[], T], needed: int) -> None:
        self.fn, self.needed = fn, needed
        self.streak = 0
        self.last_failure: BaseException | None = None

    def attempt(self) -> T:
        try:
            result = self.fn()
        except BaseException as err:
            self.streak = 0
            self.last_failure = err
            raise
        self.streak += 1
        if self.streak < self.needed:
            raise _NotYet(self.streak, self.needed)
        return result


def _timeout_error(description: str, timeout: float, attempts: int,
                   state: _Streak[T]) -> AssertionError:
    last = state.last_failure
    detail = "none (it passed, never enough times in a row)" if last is None else _one_line(last)
    streak = (f"; it had passed {state.streak} of {state.needed} times in a row when time ran out"
              if state.streak else "")
    return AssertionError(f"{description}: not true after {timeout:g} s ({attempts} attempts); "
                          f"last failure: {detail}{streak}")


def _one_line(err: BaseException) -> str:
    text = str(err).strip() or type(err).__name__
    return text if "\n" not in text else text.replace("\n", "\n  ")
