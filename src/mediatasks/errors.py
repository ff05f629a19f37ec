"""Every exception that mediatasks raises on purpose.

The tree::

    MediaTasksError
    ├── ConfigurationError        a setting is missing, unsafe or contradictory
    ├── NotFound                  no such task, asset, key or project (in this project)
    ├── InvalidTransition         a guarded state change matched no row
    │   └── LeaseLost             the worker's lease was taken back or the task moved on
    ├── Conflict                  the request clashes with what exists or a concurrent change (409)
    ├── AccessDenied              an asset's playback policy refuses this viewer (401, 403)
    ├── Unavailable               the task store cannot be reached now (503)
    ├── InvalidInput              a client's request is malformed or refused (422)
    │   └── UnsafeURL             a URL points at a scheme or address that is not allowed
    └── TaskFailure               raised by a task handler: the attempt did not succeed
        ├── Retry                 try again after ``after_s`` (counts as a retry)
        ├── Unretriable           retrying cannot help: fail the task at once
        │   └── InvalidMedia      the source cannot be probed or decoded
        └── SourceUnavailable     the source could not be fetched (network, 5xx, timeout)

Only ``mediatasks.api`` maps these to HTTP status codes.  A handler signals its outcome by
raising: any exception that is not an ``Unretriable`` counts as a failure that the retry policy
may retry.
"""

from __future__ import annotations

__all__ = [
    "AccessDenied",
    "ConfigurationError",
    "Conflict",
    "InvalidInput",
    "InvalidMedia",
    "InvalidTransition",
    "LeaseLost",
    "MediaTasksError",
    "NotFound",
    "Retry",
    "SourceUnavailable",
    "TaskFailure",
    "Unavailable",
    "Unretriable",
    "UnsafeURL",
]


class MediaTasksError(Exception):
    """Something went wrong in mediatasks."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or "").strip())

    @property
    def message(self) -> str:
        """The human-readable message."""
        return str(self.args[0]) if self.args else ""


class ConfigurationError(MediaTasksError):
    """The configuration is not valid."""


class NotFound(MediaTasksError):
    """not found"""


class InvalidTransition(MediaTasksError):
    """The task is not in a phase that allows this change."""


class LeaseLost(InvalidTransition):
    """The task's lease is no longer held by this worker."""


class Conflict(MediaTasksError):
    """The request conflicts with the current state of the resource."""


class AccessDenied(MediaTasksError):
    """Playback is not allowed."""


class Unavailable(MediaTasksError):
    """The task store is unavailable; try again shortly."""


class InvalidInput(MediaTasksError):
    """The request is not valid."""


class UnsafeURL(InvalidInput):
    """The URL is not allowed."""


class TaskFailure(MediaTasksError):
    """The task failed."""

    def __init__(self, message: str | None = None, *, detail: str | None = None) -> None:
        super().__init__(message)
        #: Technical detail for the timeline and logs (an FFmpeg error tail, a status line).
        self.detail = detail


class Retry(TaskFailure):
    """The task asked to be retried."""

    def __init__(self, message: str | None = None, *, after_s: float | None = None) -> None:
        super().__init__(message)
        #: Seconds to wait before the next attempt; ``None`` means the configured back-off.
        self.after_s = after_s


class Unretriable(TaskFailure):
    """The task cannot succeed, whatever the number of attempts."""


class InvalidMedia(Unretriable):
    """failed to probe or open file, check your input file against the input codec and container support matrix"""  # noqa: E501


class SourceUnavailable(TaskFailure):
    """file could not be imported from URL because it was not accessible"""
