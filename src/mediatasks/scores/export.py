"""The ``audio-export`` task: its params, its progress steps, and where its audio goes.

A task renders one revision of one score (all its parts, or the ones asked for) to ``mp3`` or
``wav``.  The handler (``worker.handlers.audio_export``) reports progress at fixed milestones, so
the text of the step in progress follows from the progress value alone (:func:`step_text`): the
Flat view needs nothing stored besides the task row.

The file is published as ``exports/<projectId>/<taskId>/score.<format>`` (the task's output,
downloaded through a signed URL), and a copy is kept with the revision under
``audio/<variant>.<format>`` so that ``GET /v2/scores/.../revisions/.../mp3`` can answer with the
latest rendering of those parts.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict

from mediatasks import errors, tasks, taskstore
from mediatasks.scores import library
from mediatasks.scores import score as score_module

__all__ = [
    "AUDIO_FORMATS",
    "ENCODING",
    "MEDIA_TYPES",
    "PARSING",
    "RENDERING",
    "STEPS",
    "AudioExportParams",
    "create_audio_export",
    "normalized_parts",
    "output_prefix",
    "rendering_key",
    "step_text",
    "variant",
]

#: The formats an audio-export task produces.
AUDIO_FORMATS: Final = ("mp3", "wav")
#: What each format is served as.
MEDIA_TYPES: Final = {"mp3": "audio/mpeg", "wav": "audio/wav"}

#: Progress when the score is being read and turned into MIDI.
PARSING: Final = 0.1
#: Progress when the synthesizer starts.
RENDERING: Final = 0.3
#: Progress when the audio file is being encoded (FFmpeg's own progress follows).
ENCODING: Final = 0.8
#: ``(progress below which, text of the step)``: the text shown for a running task.
STEPS: Final = (
    (PARSING, "Starting"),
    (RENDERING, "Parsing score"),
    (ENCODING, "Rendering audio"),
    (1.0, "Encoding"),
)


def step_text(progress: float) -> str:
    """The text of the step that a running task with this progress is in."""
    for bound, text in STEPS:
        if progress < bound:
            return text
    return "Publishing"


class AudioExportParams(BaseModel):
    """The params of an ``audio-export`` task."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    score: str
    #: A concrete revision id (``last`` is resolved when the task is created).
    revision: str
    format: Literal["mp3", "wav"]
    #: Part ids to render; empty means every part.
    parts: list[str] = []


def variant(part_ids: Sequence[str]) -> str:
    """A short, stable name for a selection of parts (``all`` for every part)."""
    if not part_ids:
        return "all"
    digest = hashlib.sha256("\n".join(sorted(part_ids)).encode()).hexdigest()
    return f"parts-{digest[:16]}"


def rendering_key(
    owner: score_module.Score,
    revision: score_module.Revision,
    audio_format: str,
    part_ids: Sequence[str],
) -> str:
    """Where the latest rendering of these parts of a revision is kept."""
    return f"{library.revision_prefix(owner, revision)}/audio/{variant(part_ids)}.{audio_format}"


def output_prefix(project_id: str, task_id: str) -> str:
    """The folder a task's audio is published in."""
    return f"exports/{project_id}/{task_id}"


def normalized_parts(revision: score_module.Revision, part_ids: Sequence[str] | None) -> list[str]:
    """The selected part ids in score order; ``[]`` when they are all of the revision's parts."""
    selected = revision.select_parts(part_ids)
    if len(selected) == len(revision.parts):
        return []
    return [part.id for part in selected]


async def create_audio_export(
    store: taskstore.TaskStore,
    scores: library.Library,
    *,
    project_id: str,
    score_id: str,
    revision_ref: str,
    audio_format: str,
    part_ids: Sequence[str] | None,
    max_retries: int,
) -> tasks.Task:
    """Queue the rendering of a score revision to ``audio_format``.

    Raises ``errors.NotFound`` for an unknown score or revision, and ``errors.InvalidInput`` for
    a format other than mp3 and wav or a part the revision does not have.
    """
    if audio_format not in AUDIO_FORMATS:
        raise errors.InvalidInput(
            f"format {audio_format!r} cannot be exported by a task: use mp3 or wav"
        )
    owner = await scores.get(project_id, score_id)
    revision = owner.revision(revision_ref)
    params = AudioExportParams(
        score=owner.id,
        revision=revision.id,
        format="mp3" if audio_format == "mp3" else "wav",
        parts=normalized_parts(revision, part_ids),
    )
    return await store.create_task(
        taskstore.NewTask(
            project_id=project_id,
            type=tasks.TaskType.AUDIO_EXPORT,
            params=params.model_dump(),
            max_retries=max_retries,
        )
    )
