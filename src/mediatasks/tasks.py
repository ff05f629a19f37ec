"""The Task: an immutable record of one piece of media work, and its one state machine.

Every phase change is a named transition (``claim``, ``heartbeat``, ``complete``, ``fail``,
``retry_later``, ``rescue``, ``release``, ``cancel``, ``retry``), carried out by the task store as
one guarded SQL statement.  ``TRANSITIONS`` is the table the store's guards are written from, and
``docs/state_machine.md`` draws it.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from mediatasks import errors

__all__ = [
    "ACTIVE",
    "TERMINAL",
    "TRANSITIONS",
    "Phase",
    "Task",
    "TaskEvent",
    "TaskType",
    "check_transition",
    "eta",
    "unix_ms",
]

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MS: Final = timedelta(milliseconds=1)


def unix_ms(moment: datetime) -> int:
    """Unix milliseconds of an aware datetime, exactly (a part of a millisecond is dropped).
    ``int(moment.timestamp() * 1000)`` goes through a float, and answers one millisecond less
    for about 0.6 % of the moments that a millisecond count names."""
    return (moment - _EPOCH) // _MS


class Phase(enum.StrEnum):
    """Where a task is in its life.  The values are Livepeer's ``status.phase`` words."""

    #: Exists but may not run yet (an upload whose bytes have not all arrived).
    #: In: creation.  Out: upload completion (``schedule``), ``cancel``.
    PENDING = "pending"
    #: Runnable from ``run_at`` on: a first run, or a retry waiting out its back-off.
    #: In: creation, ``schedule``, ``retry_later``, ``rescue``, ``release``, manual ``retry``.
    #: Out: a worker's ``claim``, ``cancel``.
    WAITING = "waiting"
    #: A worker holds a lease on it and is doing the work.
    #: In: ``claim``.  Out: ``complete``, ``fail``, ``retry_later`` (worker); ``rescue`` (the
    #: lease expired); ``release`` (the worker shut down); ``cancel`` (the user).
    RUNNING = "running"
    #: Done; the output is published.  Terminal.
    COMPLETED = "completed"
    #: An unretriable error, or automatic retries spent.  Out: manual ``retry``.
    FAILED = "failed"
    #: Stopped by the user.  Out: manual ``retry``.
    CANCELLED = "cancelled"


TRANSITIONS: Final[Mapping[Phase, frozenset[Phase]]] = {
    Phase.PENDING: frozenset({Phase.WAITING, Phase.CANCELLED}),
    Phase.WAITING: frozenset({Phase.RUNNING, Phase.CANCELLED}),
    Phase.RUNNING: frozenset(
        {
            Phase.COMPLETED,
            Phase.FAILED,
            Phase.WAITING,  # retry_later, rescue (lease expired), release (shutdown)
            Phase.CANCELLED,
        }
    ),
    Phase.FAILED: frozenset({Phase.WAITING}),  # manual retry
    Phase.CANCELLED: frozenset({Phase.WAITING}),  # manual retry
    Phase.COMPLETED: frozenset(),
}

#: Phases a task never leaves by itself.
TERMINAL: Final[frozenset[Phase]] = frozenset({Phase.COMPLETED, Phase.FAILED, Phase.CANCELLED})
#: Phases from which ``cancel`` is allowed.
ACTIVE: Final[frozenset[Phase]] = frozenset({Phase.PENDING, Phase.WAITING, Phase.RUNNING})


def check_transition(source: Phase, target: Phase) -> None:
    """Raise ``InvalidTransition`` unless the table allows ``source -> target``."""
    if target not in TRANSITIONS[source]:
        raise errors.InvalidTransition(f"a {source} task cannot become {target}")


class TaskType(enum.StrEnum):
    """The kinds of work.  Livepeer's names, plus Flat's ``audio-export``."""

    UPLOAD = "upload"
    TRANSCODE_FILE = "transcode-file"
    CLIP = "clip"
    EXPORT = "export"
    EXPORT_DATA = "export-data"
    AUDIO_EXPORT = "audio-export"
    #: Does nothing: for tests and the queue benchmark.  No API creates it.
    NOOP = "noop"


@dataclasses.dataclass(frozen=True, kw_only=True)
class Task:
    """One task as the store last saw it.  Never mutated: the store returns a new one."""

    id: str
    project_id: str
    type: str
    phase: Phase
    #: The request, as the handler of ``type`` reads it.
    params: Mapping[str, Any]
    #: Set on completion.
    output: Mapping[str, Any] | None = None
    #: 0..1 while running; never goes down within an attempt's life.
    progress: float | None = None
    #: Automatic retries used so far; a manual retry resets it.
    retries: int = 0
    max_retries: int = 2
    #: Claims so far, across retries (a release does not count).
    attempt: int = 0
    #: Times the task was taken back from a worker that died or went silent; they do not spend
    #: retries, but a task that keeps losing its workers fails.
    rescues: int = 0
    error_message: str | None = None
    input_asset_id: str | None = None
    output_asset_id: str | None = None
    created_at: datetime
    updated_at: datetime
    #: When the task first became runnable (again after a manual retry).
    scheduled_at: datetime | None = None
    #: The earliest time a worker may claim it.
    run_at: datetime
    #: When the current (or last) attempt was claimed.
    started_at: datetime | None = None
    lease_token: str | None = None
    lease_expires_at: datetime | None = None
    worker_id: str | None = None

    def evolve(self, **changes: Any) -> Task:
        """A copy with ``changes`` applied."""
        return dataclasses.replace(self, **changes)

    @property
    def is_terminal(self) -> bool:
        """Whether the task has reached a phase it never leaves by itself."""
        return self.phase in TERMINAL


@dataclasses.dataclass(frozen=True, kw_only=True)
class TaskEvent:
    """One row of a task's event log, written in the transaction of the change it records."""

    id: int
    task_id: str
    project_id: str
    #: The transition (``created``, ``claim``, ``progress``, ``complete``, ...).
    name: str
    phase: Phase
    progress: float | None
    at: datetime
    #: What else is worth keeping: an error message, the worker, the attempt, a command line.
    data: Mapping[str, Any]


def eta(task: Task, now: datetime) -> datetime | None:
    """When a running task should finish, from the rate of its progress so far (``None`` until
    it has made 1 % of progress, and for a task that is not running)."""
    progress = task.progress or 0.0
    if task.phase is not Phase.RUNNING or task.started_at is None or progress < 0.01:
        return None
    elapsed = now - task.started_at
    return task.started_at + elapsed / progress
