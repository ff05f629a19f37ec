"""What to do with a task once its handler has returned or raised: a pure decision.

``decide`` looks only at the task and the exception; persisting the outcome is the worker's job.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from mediatasks import errors, tasks

__all__ = ["Complete", "Fail", "Outcome", "RetryLater", "decide"]

#: What a user sees when a handler fails in a way nobody anticipated (the detail is logged).
INTERNAL_ERROR = "internal error processing file"


@dataclasses.dataclass(frozen=True, kw_only=True)
class Complete:
    """The handler succeeded."""

    output: Mapping[str, Any]
    asset_media: Mapping[str, Any] | None = None
    #: Blob prefixes the handler published; removed again if completion is refused.
    published: Sequence[str] = ()


@dataclasses.dataclass(frozen=True, kw_only=True)
class RetryLater:
    """The attempt failed; try again after ``delay_s``."""

    error_message: str
    delay_s: float
    detail: Mapping[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Fail:
    """The task failed for good."""

    error_message: str
    detail: Mapping[str, Any] = dataclasses.field(default_factory=dict)


Outcome = Complete | RetryLater | Fail


def decide(task: tasks.Task, exc: BaseException, backoff_s: Sequence[float]) -> RetryLater | Fail:
    """The outcome of an attempt of ``task`` that raised ``exc``.

    ``Unretriable`` fails at once.  Anything else is retried while ``task.retries`` is below
    ``task.max_retries``, after ``Retry.after_s`` or the back-off for this retry.
    """
    if isinstance(exc, errors.MediaTasksError):
        message = exc.message
    else:
        message = INTERNAL_ERROR
    detail: dict[str, Any] = {"exception": type(exc).__name__}
    if isinstance(exc, errors.TaskFailure) and exc.detail:
        detail["stderr"] = exc.detail
    elif not isinstance(exc, errors.MediaTasksError):
        detail["repr"] = repr(exc)[:2000]
    if isinstance(exc, errors.Unretriable):
        return Fail(error_message=message, detail=detail)
    if task.retries >= task.max_retries:
        return Fail(error_message=message, detail=detail)
    delay_s = backoff_s[min(task.retries, len(backoff_s) - 1)]
    if isinstance(exc, errors.Retry) and exc.after_s is not None:
        delay_s = exc.after_s
    return RetryLater(error_message=message, delay_s=delay_s, detail=detail)
