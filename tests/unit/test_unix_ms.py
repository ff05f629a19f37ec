"""Milliseconds and datetimes: a count read from the store comes back the same on the wire."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone

from mediatasks import tasks
from mediatasks.taskstore import rows


def test_every_millisecond_count_comes_back_the_same() -> None:
    draw = random.Random(20261201)
    counts = [draw.randrange(0, 4_102_444_800_000) for _ in range(200_000)]
    counts += [0, 1, 999, 1_764_600_000_123, 4_102_444_799_999]
    changed = [ms for ms in counts if tasks.unix_ms(rows.from_ms(ms)) != ms]
    assert changed == []
    # The float route loses a millisecond for some of them: the reason for unix_ms.
    assert any(int(rows.from_ms(ms).timestamp() * 1000) != ms for ms in counts)


def test_a_part_of_a_millisecond_is_dropped_in_any_time_zone() -> None:
    moment = datetime(2026, 12, 1, 16, 28, 1, 987_654, tzinfo=UTC)
    assert tasks.unix_ms(moment) == 1_796_142_481_987
    assert tasks.unix_ms(moment.astimezone(timezone(timedelta(hours=-5)))) == 1_796_142_481_987
    assert tasks.unix_ms(datetime(1969, 12, 31, 23, 59, 59, 999_500, tzinfo=UTC)) == -1
