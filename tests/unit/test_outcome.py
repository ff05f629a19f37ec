"""``decide``: the outcome of a failed attempt, without a database."""

from __future__ import annotations

from datetime import UTC, datetime

from mediatasks import errors, tasks
from mediatasks.worker import outcome

NOW = datetime(2026, 1, 1, tzinfo=UTC)
BACKOFF = [30.0, 180.0]


def task(retries: int = 0, max_retries: int = 2) -> tasks.Task:
    return tasks.Task(
        id="t",
        project_id="p",
        type="upload",
        phase=tasks.Phase.RUNNING,
        params={},
        retries=retries,
        max_retries=max_retries,
        created_at=NOW,
        updated_at=NOW,
        run_at=NOW,
    )


def test_unretriable_fails_at_once() -> None:
    decided = outcome.decide(task(), errors.InvalidMedia(), BACKOFF)
    assert isinstance(decided, outcome.Fail)
    assert decided.error_message.startswith("failed to probe or open file")


def test_retriable_backs_off_30_then_180_then_fails() -> None:
    exc = errors.SourceUnavailable()
    first = outcome.decide(task(0), exc, BACKOFF)
    second = outcome.decide(task(1), exc, BACKOFF)
    third = outcome.decide(task(2), exc, BACKOFF)
    assert isinstance(first, outcome.RetryLater) and first.delay_s == 30
    assert isinstance(second, outcome.RetryLater) and second.delay_s == 180
    assert isinstance(third, outcome.Fail)
    assert third.error_message == errors.SourceUnavailable().message


def test_retry_asks_for_its_own_delay() -> None:
    decided = outcome.decide(task(), errors.Retry("busy", after_s=5), BACKOFF)
    assert isinstance(decided, outcome.RetryLater) and decided.delay_s == 5


def test_unexpected_exceptions_get_a_human_message_and_keep_the_detail() -> None:
    decided = outcome.decide(task(), KeyError("x"), BACKOFF)
    assert isinstance(decided, outcome.RetryLater)
    assert decided.error_message == "internal error processing file"
    assert "KeyError" in decided.detail["repr"]


def test_stderr_tail_goes_to_the_detail() -> None:
    decided = outcome.decide(
        task(2), errors.TaskFailure("encode failed", detail="x264 [error]"), BACKOFF
    )
    assert isinstance(decided, outcome.Fail)
    assert decided.detail["stderr"] == "x264 [error]"


def test_every_phase_is_in_the_transition_table() -> None:
    assert set(tasks.TRANSITIONS) == set(tasks.Phase)
    for source, targets in tasks.TRANSITIONS.items():
        for target in tasks.Phase:
            if target in targets:
                tasks.check_transition(source, target)
            else:
                try:
                    tasks.check_transition(source, target)
                except errors.InvalidTransition:
                    continue
                raise AssertionError(f"{source} -> {target} should be refused")
