"""Failed dashboard sign-ins per client address, in a moving window kept in memory.

After ``max_failures`` failed sign-ins from one address within ``window_s`` seconds, every
sign-in from that address is refused (the sign-in page with 429 and ``Retry-After``) until the
oldest of those failures is ``window_s`` old.  Meanwhile no key is checked, so that a guess
cannot be confirmed, and a success never clears the count: else a valid key of one's own would
reset it between guesses.

The address is the one uvicorn gives (``request.client``): the peer's, or behind a proxy that
uvicorn trusts (``FORWARDED_ALLOW_IPS``, loopback by default) the client's that the proxy names
in ``X-Forwarded-For``.  The count is per process (the ``limits`` package's moving window in its
memory storage, which forgets expired addresses by itself): with several API processes, an
address may fail up to that many times more.
"""

from __future__ import annotations

import time

import limits
from limits import storage, strategies

__all__ = ["FailureWindow"]


class FailureWindow:
    """Failures per address in the last ``window_s`` seconds; ``max_failures`` of 0 counts
    nothing and refuses nothing."""

    def __init__(self, *, max_failures: int, window_s: int) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self._limit = limits.RateLimitItemPerSecond(max(1, max_failures), window_s)
        self._limiter = strategies.MovingWindowRateLimiter(storage.MemoryStorage())

    def retry_after_s(self, address: str) -> float:
        """Seconds until ``address`` may try again: 0 when it may now."""
        if self.max_failures == 0 or self._limiter.test(self._limit, address):
            return 0.0
        reset_at = self._limiter.get_window_stats(self._limit, address).reset_time
        return max(0.0, reset_at - time.time())

    def record_failure(self, address: str) -> None:
        """Count one failed attempt from ``address``."""
        if self.max_failures:
            self._limiter.hit(self._limit, address)
