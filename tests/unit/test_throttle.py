"""The sliding window of failed sign-ins, with the clock passed in."""

from __future__ import annotations

from mediatasks.web import throttle


def test_the_limit_slides_with_the_oldest_of_the_last_failures() -> None:
    window = throttle.FailureWindow(max_failures=3, window_s=10)
    for at in (0.0, 4.0, 8.0):
        assert window.retry_after_s("a", now=at) == 0
        window.record_failure("a", now=at)
    assert window.retry_after_s("a", now=8.0) == 10.0 - 8.0  # until the first is 10 s old
    assert window.retry_after_s("b", now=8.0) == 0  # another address
    assert window.retry_after_s("a", now=10.0) == 0
    window.record_failure("a", now=11.0)  # the last three: 4, 8 and 11
    assert window.retry_after_s("a", now=11.0) == 14.0 - 11.0


def test_zero_failures_turns_it_off_and_expired_addresses_are_dropped() -> None:
    off = throttle.FailureWindow(max_failures=0, window_s=10)
    for at in range(5):
        off.record_failure("a", now=at)
    assert off.retry_after_s("a", now=5) == 0

    window = throttle.FailureWindow(max_failures=2, window_s=10)
    for n in range(1023):
        window.record_failure(f"old {n}", now=0.0)
    window.record_failure("new", now=20.0)  # the 1024th address: a sweep
    assert len(window) == 1 and window.retry_after_s("new", now=20.0) == 0
