"""The handler of each task type: ``registry()`` maps a type to what runs it."""

from __future__ import annotations

from mediatasks import tasks
from mediatasks.worker import handler
from mediatasks.worker.handlers import audio_export, export, noop, transcode_file, upload

__all__ = ["registry"]


def registry() -> dict[str, handler.Handler]:
    """Every task type that a worker of this version can run."""
    return {
        tasks.TaskType.NOOP: noop.NoopHandler(),
        tasks.TaskType.UPLOAD: upload.UploadHandler(),
        tasks.TaskType.CLIP: upload.UploadHandler(),
        tasks.TaskType.TRANSCODE_FILE: transcode_file.TranscodeFileHandler(),
        tasks.TaskType.AUDIO_EXPORT: audio_export.AudioExportHandler(),
        tasks.TaskType.EXPORT: export.ExportHandler(),
        tasks.TaskType.EXPORT_DATA: export.ExportDataHandler(),
    }
