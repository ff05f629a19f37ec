"""The moving window of failed sign-ins."""

from __future__ import annotations

import time

from mediatasks.web import throttle


def test_the_limit_holds_until_the_oldest_failure_leaves_the_window() -> None:
    window = throttle.FailureWindow(max_failures=3, window_s=1)
    for _ in range(3):
        assert window.retry_after_s("a") == 0
        window.record_failure("a")
    assert 0 < window.retry_after_s("a") <= 1
    assert window.retry_after_s("b") == 0  # another address
    time.sleep(window.retry_after_s("a") + 0.05)
    assert window.retry_after_s("a") == 0


def test_zero_failures_turns_it_off() -> None:
    off = throttle.FailureWindow(max_failures=0, window_s=10)
    for _ in range(5):
        off.record_failure("a")
    assert off.retry_after_s("a") == 0
