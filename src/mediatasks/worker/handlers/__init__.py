"""The handler of each task type: ``registry()`` maps a type to what runs it."""

from __future__ import annotations

from mediatasks import tasks
from mediatasks.worker import handler
from mediatasks.worker.handlers import noop, upload

__all__ = ["registry"]


def registry() -> dict[str, handler.Handler]:
    """Every task type that a worker of this version can run."""
    return {
        tasks.TaskType.NOOP: noop.NoopHandler(),
        tasks.TaskType.UPLOAD: upload.UploadHandler(),
    }
