"""What a task handler is given and what it must provide.

A handler turns one claimed task into an output.  It reads its inputs and writes its outputs only
through the blob store and its private work folder, reports progress through its context, and
signals failure by raising (``errors.Unretriable`` for input that can never work, anything else
for a failure that may pass).  It never touches the task's phase: the worker does that.
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from mediatasks import settings as settings_module
from mediatasks import tasks, taskstore
from mediatasks.blobstore import base as blobstore
from mediatasks.media import ffmpeg, hls, ladder, probe
from mediatasks.worker import outcome

__all__ = ["Context", "Handler", "encode_ladder"]


@dataclasses.dataclass(kw_only=True)
class Context:
    """One attempt of one task, as its handler sees it."""

    task: tasks.Task
    settings: settings_module.Settings
    store: taskstore.TaskStore
    blobs: blobstore.BlobStore
    #: Where this attempt's private folder goes; see ``workdir``.
    work_path: Path
    #: The latest progress reported, 0..1; the worker persists it.
    progress: float = 0.0
    #: Facts worth keeping on the task's timeline (FFmpeg command and version, ...).
    facts: dict[str, Any] = dataclasses.field(default_factory=dict)

    #: Whether ``workdir`` was made (the worker then removes it when the attempt ends).
    workdir_made: bool = False

    @property
    def workdir(self) -> Path:
        """A private, empty folder for this attempt, made on first use (a task that needs no
        files costs no file system calls) and removed when the attempt ends.  Anything a killed
        earlier attempt left there is removed first."""
        if not self.workdir_made:
            shutil.rmtree(self.work_path, ignore_errors=True)
            self.work_path.mkdir(parents=True)
            self.workdir_made = True
        return self.work_path

    async def report_progress(self, fraction: float) -> None:
        """Record progress; it never goes down and the worker saves it on its next beat."""
        self.progress = max(self.progress, min(1.0, max(0.0, fraction)))

    def progress_span(self, start: float, end: float) -> _Span:
        """A reporter that maps 0..1 of one step onto ``start..end`` of the whole task."""
        return _Span(self, start, end)


@dataclasses.dataclass(frozen=True)
class _Span:
    context: Context
    start: float
    end: float

    async def __call__(self, fraction: float) -> None:
        await self.context.report_progress(self.start + (self.end - self.start) * fraction)


async def encode_ladder(
    ctx: Context,
    *,
    source: Path,
    spec: probe.VideoSpec,
    profiles: Sequence[ladder.Profile],
    segment_s: float,
    progress: tuple[float, float],
    mp4: bool,
    clip: tuple[float, float] | None = None,
) -> hls.HlsOutput:
    """The ladder of ``source`` in ``ctx.workdir`` (``hls/``, and ``mp4/`` when ``mp4``).

    FFmpeg's version and exact command lines go on the task's timeline (``ctx.facts``); its
    progress maps onto ``progress`` (start, end) of the task's.
    """
    binary = ffmpeg.ffmpeg_binary(ctx.settings.ffmpeg_path)
    facts: dict[str, Any] = {"version": await ffmpeg.ffmpeg_version(binary)}
    ctx.facts["ffmpeg"] = facts
    output = await hls.transcode_hls(
        binary=binary,
        source=source,
        spec=spec,
        profiles=profiles,
        out_dir=ctx.workdir / "hls",
        segment_s=segment_s,
        on_progress=ctx.progress_span(*progress),
        on_command=lambda argv: facts.update(command=argv),
        preset=ctx.settings.x264_preset,
        mp4_dir=ctx.workdir / "mp4" if mp4 else None,
        clip=clip,
    )
    facts["elapsedS"] = round(output.run.elapsed_s, 3)
    if output.mp4_run is not None:
        facts["mp4Command"] = list(output.mp4_run.argv)
    return output


class Handler(Protocol):
    """Does the work of one task type."""

    async def run(self, ctx: Context) -> outcome.Complete:
        """Do the work and return what completes the task."""
        ...


def output_of(value: Mapping[str, Any]) -> outcome.Complete:
    """A completion with this output and nothing published."""
    return outcome.Complete(output=value)
