"""The API keys this process has checked lately: a key is read from the task store at most once
per ``TTL_S``, not on every request.

Every request to ``/api`` and ``/v2`` names an API key.  Reading its row on every request costs a
store round trip each time, for an answer that almost never changes; so a key found live is
remembered here, in this process, for ``TTL_S`` seconds.  What that allows:

* **A revoke reaches every process within ``TTL_S``**: an entry is only used until ``TTL_S`` after
  the moment its store read *started*, so a request that starts ``TTL_S`` after a revoke committed
  reads the store again (in any process: the store is the only thing they share).  ``TTL_S`` is
  0.5 s, half the second the service promises.
* **Unknown and revoked keys are not remembered**: each request with one reads the store, as
  before, so that a key created in another process works at its first request.

Entries are keyed by the SHA-256 of the secret, so the secrets themselves are not kept; at most
``MAX_KEYS`` are kept (the oldest go first).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import Final

from mediatasks import taskstore

__all__ = ["MAX_KEYS", "TTL_S", "Keyring"]

#: How long a live key is trusted without asking the store again, in seconds (at most 1).
TTL_S: Final = 0.5
#: Keys remembered at most.
MAX_KEYS: Final = 10_000


class Keyring:
    """The live keys of recent requests, in front of ``store.authenticate``; one per process."""

    def __init__(
        self,
        store: taskstore.TaskStore,
        *,
        ttl_s: float = TTL_S,
        clock_func: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.ttl_s = ttl_s
        self._clock_func = clock_func
        #: SHA-256 of a secret -> (its key, the clock when the read that found it started).
        self._live: dict[bytes, tuple[taskstore.ApiKey, float]] = {}

    async def authenticate(self, secret: str) -> taskstore.ApiKey | None:
        """The live key with this secret, or ``None``; see the module's docstring for how fresh."""
        digest = hashlib.sha256(secret.encode()).digest()
        started = self._clock_func()
        found = self._live.get(digest)
        if found is not None and started - found[1] < self.ttl_s:
            return found[0]
        key = await self.store.authenticate(secret)
        if key is None:
            self._live.pop(digest, None)
            return None
        self._live.pop(digest, None)  # re-inserted last: the dict's order is the age
        if len(self._live) >= MAX_KEYS:
            del self._live[next(iter(self._live))]
        self._live[digest] = (key, started)
        return key
