"""The keyring remembers live keys for ``TTL_S`` of its clock, and nothing else."""

from __future__ import annotations

from datetime import UTC, datetime

from mediatasks import taskstore
from mediatasks.api import keyring

KEY = taskstore.ApiKey(
    id="k1", project_id="p1", name="n", created_at=datetime(2026, 1, 1, tzinfo=UTC)
)


class CountingStore:
    """Answers ``authenticate`` from a dict of live secrets, counting the calls."""

    def __init__(self) -> None:
        self.live: dict[str, taskstore.ApiKey] = {"mt_good": KEY}
        self.calls = 0

    async def authenticate(self, secret: str) -> taskstore.ApiKey | None:
        self.calls += 1
        return self.live.get(secret)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_a_live_key_is_read_once_per_ttl() -> None:
    store, clock = CountingStore(), Clock()
    ring = keyring.Keyring(store, clock_func=clock)  # type: ignore[arg-type]
    assert await ring.authenticate("mt_good") == KEY
    clock.now += keyring.TTL_S * 0.9
    assert await ring.authenticate("mt_good") == KEY
    assert store.calls == 1
    clock.now += keyring.TTL_S * 0.2
    assert await ring.authenticate("mt_good") == KEY
    assert store.calls == 2


async def test_a_revoked_key_is_refused_once_its_entry_is_older_than_the_ttl() -> None:
    store, clock = CountingStore(), Clock()
    ring = keyring.Keyring(store, clock_func=clock)  # type: ignore[arg-type]
    assert await ring.authenticate("mt_good") == KEY
    del store.live["mt_good"]
    clock.now += keyring.TTL_S
    assert await ring.authenticate("mt_good") is None
    assert await ring.authenticate("mt_good") is None
    assert store.calls == 3


async def test_unknown_keys_are_never_remembered() -> None:
    store, clock = CountingStore(), Clock()
    ring = keyring.Keyring(store, clock_func=clock)  # type: ignore[arg-type]
    assert await ring.authenticate("mt_new") is None
    store.live["mt_new"] = KEY
    assert await ring.authenticate("mt_new") == KEY
    assert store.calls == 2


def test_the_ttl_keeps_the_one_second_promise() -> None:
    assert 0 < keyring.TTL_S <= 1.0
