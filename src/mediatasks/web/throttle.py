"""Failed dashboard sign-ins per client address, counted in a sliding window kept in memory.

After ``max_failures`` failed sign-ins from one address within ``window_s`` seconds, every
sign-in from that address is refused (the sign-in page with 429 and ``Retry-After``) until the
oldest of those failures is ``window_s`` old.  Meanwhile no key is checked, so that a guess
cannot be confirmed, and a success never clears the count: else a valid key of one's own would
reset it between guesses.

The address is the one uvicorn gives (``request.client``): the peer's, or behind a proxy that
uvicorn trusts (``FORWARDED_ALLOW_IPS``, loopback by default) the client's that the proxy names
in ``X-Forwarded-For``.  The count is per process: with several API processes, an address may
fail up to that many times more.  Memory stays bounded: at most ``max_failures`` times per
address, and addresses whose failures are all older than the window are dropped.

A small sliding window of our own rather than a rate-limit library: this is the only limit the
service has, it is in memory and per process, and it needs no dependency.
"""

from __future__ import annotations

import collections
import time
from typing import Final

__all__ = ["FailureWindow"]

#: The number of addresses that triggers the first sweep of expired ones.
_FIRST_SWEEP: Final = 1024


class FailureWindow:
    """Failures per address in the last ``window_s`` seconds, at most ``max_failures`` each.

    ``max_failures`` of 0 counts nothing and refuses nothing.  ``now`` is a
    :func:`time.monotonic` reading, given by tests.
    """

    def __init__(self, *, max_failures: int, window_s: float) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self._failures: dict[str, collections.deque[float]] = {}
        self._next_sweep = _FIRST_SWEEP

    def __len__(self) -> int:
        """How many addresses have failures counted (some perhaps expired, until a sweep)."""
        return len(self._failures)

    def retry_after_s(self, address: str, *, now: float | None = None) -> float:
        """Seconds until ``address`` may try again: 0 when it may now."""
        if self.max_failures == 0:
            return 0.0
        failures = self._failures.get(address)
        if failures is None or len(failures) < self.max_failures:
            return 0.0
        now = time.monotonic() if now is None else now
        return max(0.0, failures[0] + self.window_s - now)

    def record_failure(self, address: str, *, now: float | None = None) -> None:
        """Count one failed attempt from ``address``."""
        if self.max_failures == 0:
            return
        now = time.monotonic() if now is None else now
        failures = self._failures.get(address)
        if failures is None:
            failures = self._failures[address] = collections.deque(maxlen=self.max_failures)
        failures.append(now)
        if len(self._failures) >= self._next_sweep:
            self._sweep(now)

    def _sweep(self, now: float) -> None:
        """Drop the addresses whose last failure is older than the window."""
        expired = [a for a, times in self._failures.items() if times[-1] + self.window_s <= now]
        for address in expired:
            del self._failures[address]
        self._next_sweep = max(_FIRST_SWEEP, 2 * len(self._failures))
