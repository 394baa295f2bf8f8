"""eventually / consistently / poll_until on a fake clock, and the named timeouts."""

from __future__ import annotations

import pytest

from pytest_istiolab.timeouts import EMBEDDED, Timeouts
from pytest_istiolab.waiting import consistently, eventually, poll_until


class FakeClock:
    """A clock that only moves when something sleeps (or a check takes time)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def script(*outcomes: object):
    """A check that raises/returns the given outcomes in order, then repeats the last one."""
    calls = {"n": 0}

    def check() -> object:
        i = min(calls["n"], len(outcomes) - 1)
        calls["n"] += 1
        outcome = outcomes[i]
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    check.calls = calls  # type: ignore[attr-defined]
    return check


def test_eventually_returns_first_success_without_sleeping() -> None:
    clock = FakeClock()
    assert eventually(lambda: 42, timeout=5, interval=1, description="x",
                      clock=clock, sleep=clock.sleep) == 42
    assert clock.sleeps == []


def test_eventually_retries_assertion_errors_until_success() -> None:
    clock = FakeClock()
    check = script(AssertionError("a"), AssertionError("b"), "ok")
    assert eventually(check, timeout=5, interval=0.5, description="x",
                      clock=clock, sleep=clock.sleep) == "ok"
    assert check.calls["n"] == 3
    assert clock.sleeps == [0.5, 0.5]


def test_eventually_needs_consecutive_successes() -> None:
    clock = FakeClock()
    check = script("ok", AssertionError("flap"), "ok", "ok", "ok", "never reached")
    assert eventually(check, timeout=10, interval=1, consecutive=3, description="x",
                      clock=clock, sleep=clock.sleep) == "ok"
    assert check.calls["n"] == 5


def test_eventually_timeout_message_names_description_time_attempts_and_last_failure() -> None:
    clock = FakeClock()
    check = script(AssertionError("first"), AssertionError("503 != 200"))
    with pytest.raises(AssertionError) as info:
        eventually(check, timeout=2, interval=0.5, description="productpage answers 200",
                   clock=clock, sleep=clock.sleep)
    message = str(info.value)
    assert message.startswith("productpage answers 200: not true after 2 s (5 attempts)")
    assert "last failure: 503 != 200" in message
    assert isinstance(info.value.__cause__, AssertionError)
    assert clock.now == pytest.approx(1002.0)


def test_eventually_never_sleeps_past_the_deadline() -> None:
    clock = FakeClock()
    with pytest.raises(AssertionError):
        eventually(script(AssertionError("no")), timeout=1.2, interval=0.5, description="x",
                   clock=clock, sleep=clock.sleep)
    assert clock.sleeps == pytest.approx([0.5, 0.5, 0.2])


def test_eventually_reports_an_incomplete_streak() -> None:
    clock = FakeClock()
    check = script(AssertionError("boom"), "ok")
    with pytest.raises(AssertionError) as info:
        eventually(check, timeout=1, interval=1, consecutive=5, description="x",
                   clock=clock, sleep=clock.sleep)
    assert "last failure: boom" in str(info.value)
    assert "passed 1 of 5 times in a row" in str(info.value)


def test_eventually_does_not_retry_other_exceptions() -> None:
    clock = FakeClock()
    check = script(KeyError("bug in the test"), "ok")
    with pytest.raises(KeyError):
        eventually(check, timeout=5, interval=1, description="x", clock=clock, sleep=clock.sleep)
    assert check.calls["n"] == 1


def test_eventually_retries_listed_exceptions() -> None:
    clock = FakeClock()
    check = script(ConnectionError("refused"), "ok")
    assert eventually(check, timeout=5, interval=1, description="x",
                      retry_on=(AssertionError, ConnectionError),
                      clock=clock, sleep=clock.sleep) == "ok"


def test_eventually_rejects_zero_consecutive() -> None:
    with pytest.raises(ValueError):
        eventually(lambda: 1, timeout=1, interval=1, consecutive=0, description="x")


def test_eventually_with_real_clock_and_tiny_interval() -> None:
    check = script(AssertionError("not yet"), AssertionError("not yet"), "done")
    assert eventually(check, timeout=5, interval=0.001, description="x") == "done"


def test_consistently_passes_for_the_whole_duration() -> None:
    clock = FakeClock()
    check = script(None)
    consistently(check, duration=3, interval=1, description="x", clock=clock, sleep=clock.sleep)
    assert check.calls["n"] == 4
    assert clock.now == pytest.approx(1003.0)


def test_consistently_fails_at_first_failure_with_context() -> None:
    clock = FakeClock()
    check = script(None, None, AssertionError("got v3"))
    with pytest.raises(AssertionError) as info:
        consistently(check, duration=10, interval=1, description="jason only sees v2",
                     clock=clock, sleep=clock.sleep)
    assert str(info.value) == \
        "jason only sees v2: stopped being true after 2.0 s (attempt 3): got v3"
    assert check.calls["n"] == 3


def test_consistently_always_makes_one_attempt() -> None:
    check = script(AssertionError("no"))
    with pytest.raises(AssertionError):
        consistently(check, duration=0, interval=1, description="x")


def test_poll_until_true_and_false() -> None:
    clock = FakeClock()
    check = script(False, False, True)
    assert poll_until(check, timeout=5, interval=1, clock=clock, sleep=clock.sleep)
    clock = FakeClock()
    assert not poll_until(lambda: False, timeout=2, interval=1, clock=clock, sleep=clock.sleep)
    assert clock.now == pytest.approx(1002.0)


def test_timeouts_per_provider() -> None:
    assert Timeouts.for_provider("kind") == Timeouts()
    assert Timeouts.for_provider("existing").ready == 120.0
    embedded = Timeouts.for_provider("embedded")
    assert embedded is EMBEDDED
    assert embedded.ready < Timeouts().ready and embedded.poll_interval < 0.5
    assert embedded.consecutive == 1 and Timeouts().consecutive == 3


def test_timeouts_scaled_keeps_counts() -> None:
    scaled = Timeouts().scaled(2)
    assert scaled.ready == 240.0 and scaled.poll_interval == 1.0
    assert scaled.consecutive == 3


def test_eventually_retries_transport_errors_by_default() -> None:
    """Right after an apply a gateway may not listen yet: refused is "not yet", not broken."""
    import httpx

    clock = FakeClock()
    check = script(httpx.ConnectError("[Errno 111] Connection refused"),
                   ConnectionResetError("reset"), TimeoutError("timed out"), "ok")
    assert eventually(check, timeout=5, interval=1, description="x", clock=clock,
                      sleep=clock.sleep) == "ok"
    assert check.calls["n"] == 4
