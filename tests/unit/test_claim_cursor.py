"""Where a claim starts its scan of the runnable tasks (``sqlstore._ClaimCursor``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from mediatasks import tasks
from mediatasks.taskstore.sqlstore import _ClaimCursor, to_ms

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def task(run_at: datetime) -> tasks.Task:
    return tasks.Task(
        id=f"t{to_ms(run_at)}",
        project_id="p",
        type="noop",
        phase=tasks.Phase.RUNNING,
        params={},
        max_retries=3,
        created_at=T0,
        updated_at=T0,
        run_at=run_at,
    )


def test_the_first_claim_scans_from_the_oldest() -> None:
    assert _ClaimCursor().start(clock=100.0) == _ClaimCursor.OLDEST


def test_a_claim_starts_at_the_newest_run_at_taken_less_the_margin() -> None:
    cursor = _ClaimCursor()
    assert cursor.start(100.0) == _ClaimCursor.OLDEST
    cursor.moved([task(T0), task(T0 + timedelta(seconds=5))], 100.0, from_oldest=True)
    assert cursor.start(100.5) == to_ms(T0 + timedelta(seconds=5)) - _ClaimCursor.MARGIN_MS
    # A claim that also took an older task (found by the scan for the rest) keeps the newest.
    cursor.moved([task(T0 - timedelta(hours=1))], 100.5, from_oldest=True)
    assert cursor.start(100.6) == to_ms(T0 + timedelta(seconds=5)) - _ClaimCursor.MARGIN_MS


def test_the_oldest_are_scanned_again_every_second_and_after_an_empty_claim() -> None:
    cursor = _ClaimCursor()
    cursor.moved([task(T0)], 100.0, from_oldest=True)
    assert cursor.start(100.0 + _ClaimCursor.FULL_EVERY_S) == _ClaimCursor.OLDEST
    assert cursor.start(100.9) != _ClaimCursor.OLDEST
    # A claim from the cursor alone does not put the next scan from the oldest off...
    cursor.moved([task(T0)], 100.9, from_oldest=False)
    assert cursor.start(100.0 + _ClaimCursor.FULL_EVERY_S) == _ClaimCursor.OLDEST
    # ...one that also scanned from the oldest for the rest does.
    cursor.moved([task(T0)], 100.9, from_oldest=True)
    assert cursor.start(100.0 + _ClaimCursor.FULL_EVERY_S) != _ClaimCursor.OLDEST
    cursor.moved([], 100.95, from_oldest=True)
    assert cursor.start(100.96) == _ClaimCursor.OLDEST
