"""What a task handler is given and what it must provide.

A handler turns one claimed task into an output.  It reads its inputs and writes its outputs only
through the blob store and its private work folder, reports progress through its context, and
signals failure by raising (``errors.Unretriable`` for input that can never work, anything else
for a failure that may pass).  It never touches the task's phase: the worker does that.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import os
import shutil
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from mediatasks import errors, tasks, taskstore
from mediatasks import settings as settings_module
from mediatasks.blobstore import base as blobstore
from mediatasks.media import ffmpeg, hls, ladder, limits, preview, probe
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
    #: Folders of this server that the timeline must not show, besides the work and data
    #: folders (``encode_ladder`` adds FFmpeg's).
    private_folders: list[str] = dataclasses.field(default_factory=list)

    def public(self, value: Any) -> Any:
        """``value`` (facts, an error detail or message for the timeline) without this server's
        paths: those in the work folder become relative to it, FFmpeg is its bare name, and
        whatever else lies in the data folder keeps only its path below it.  (No file system
        call: paths are compared as written and made absolute; the data folder only in its
        absolute form, which cannot be mistaken for a part of a URL.)"""
        work = [str(self.work_path), os.path.abspath(self.work_path)]
        data = os.path.abspath(self.settings.data_dir)
        replacements = [
            (f"{folder.rstrip(os.sep)}{os.sep}", "")
            for folder in (*work, data, *self.private_folders)
        ]
        replacements += [(folder, ".") for folder in work]
        return _replace_paths(value, sorted(replacements, key=lambda r: -len(r[0])))

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
    source: Path | str,
    spec: probe.VideoSpec,
    profiles: Sequence[ladder.Profile],
    segment_s: float,
    progress: tuple[float, float],
    mp4: bool,
    clip: tuple[float, float] | None = None,
    previews: bool = False,
    stdin_feed: Callable[[asyncio.StreamWriter], Awaitable[None]] | None = None,
) -> hls.HlsOutput:
    """The ladder of ``source`` in ``ctx.workdir`` (``hls/``, and ``mp4/`` when ``mp4``).

    With ``previews`` (and the ``thumbnails`` setting), the same decode also writes
    ``thumbnails/`` and ``storyboard/`` there (:mod:`mediatasks.media.preview`).  FFmpeg's
    version and exact command lines go on the task's timeline (``ctx.facts``); its progress maps
    onto ``progress`` (start, end) of the task's.  ``source="pipe:0"`` and ``stdin_feed`` read the
    source while it arrives.

    Before FFmpeg starts, the profiles and the source are checked against the limits
    (:mod:`mediatasks.media.limits`): ``errors.Unretriable`` says which one they exceed.  While it
    runs, the encode is stopped (``errors.Unretriable``) if its output grows past
    ``max_output_bytes``.
    """
    settings = ctx.settings
    try:
        limits.check_profiles(
            [profile.to_wire() for profile in profiles], limits.profile_limits(settings)
        )
    except errors.InvalidInput as exc:
        raise errors.Unretriable(f"the renditions are beyond the limits: {exc.message}") from exc
    duration_s = spec.duration_s if clip is None else clip[1] - clip[0]
    limits.check_source(
        spec,
        duration_s=duration_s,
        profiles=profiles,
        segment_s=segment_s,
        mp4=mp4,
        limits=limits.source_limits(settings),
    )
    binary = ffmpeg.ffmpeg_binary(settings.ffmpeg_path)
    ctx.private_folders.append(os.path.dirname(os.path.abspath(binary)))
    plan = None
    if previews and settings.thumbnails:
        plan = preview.plan(
            out_dir=ctx.workdir,
            display_width=spec.display_width,
            display_height=spec.display_height,
            duration_s=duration_s,
            segment_s=segment_s,
            tile_px=settings.storyboard_tile_px,
            max_tiles=settings.storyboard_max_tiles,
            min_interval_s=settings.storyboard_interval_s,
        )
    facts: dict[str, Any] = {"version": await ffmpeg.ffmpeg_version(binary)}
    ctx.facts["ffmpeg"] = facts
    output = await hls.transcode_hls(
        binary=binary,
        source=source,
        spec=spec,
        profiles=profiles,
        out_dir=ctx.workdir / "hls",
        segment_s=segment_s,
        on_progress=_OutputGuard(
            ctx.progress_span(*progress),
            [ctx.workdir / name for name in ("hls", *_PREVIEW_DIRS)],
            settings.max_output_bytes,
        ),
        on_command=lambda argv: facts.update(command=argv),
        preset=settings.x264_preset,
        mp4_dir=ctx.workdir / "mp4" if mp4 else None,
        clip=clip,
        previews=plan,
        stdin_feed=stdin_feed,
        # Each rendition scaled from the next larger one: less work for the same pictures
        # (bench/transcode.py measures both, with their PSNR).
        scale_cascade=True,
    )
    facts["elapsedS"] = round(output.run.elapsed_s, 3)
    # What that time encoded: the clip's range, or the whole source (FFmpeg's speed).
    facts["mediaS"] = round(output.duration_s, 3)
    facts["speed"] = round(output.speed, 3)
    if output.mp4_run is not None:
        facts["mp4Command"] = list(output.mp4_run.argv)
    return output


def _replace_paths(value: Any, replacements: Sequence[tuple[str, str]]) -> Any:
    if isinstance(value, str):
        for old, new in replacements:
            value = value.replace(old, new)
        return value
    if isinstance(value, Mapping):
        return {key: _replace_paths(item, replacements) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_replace_paths(item, replacements) for item in value]
    return value


_PREVIEW_DIRS = (preview.THUMBNAILS_DIR, preview.STORYBOARD_DIR)


@dataclasses.dataclass
class _OutputGuard:
    """A progress reporter that also stops the encode once its folders hold too many bytes.

    Measuring walks the folders (in a thread), so it is done at most every ``interval_s``.
    """

    report: Callable[[float], Awaitable[None]]
    folders: Sequence[Path]
    max_bytes: int
    interval_s: float = 2.0
    _last_s: float = -math.inf

    async def __call__(self, fraction: float) -> None:
        now = time.monotonic()
        if now - self._last_s >= self.interval_s:
            self._last_s = now
            written = await asyncio.to_thread(_tree_bytes, self.folders)
            if written > self.max_bytes:
                raise errors.Unretriable(
                    f"the renditions grew past the limit of {self.max_bytes} bytes "
                    "(max_output_bytes) while encoding: the encode was stopped"
                )
        await self.report(fraction)


def _tree_bytes(folders: Sequence[Path]) -> int:
    total = 0
    for folder in folders:
        for dirpath, _dirnames, filenames in os.walk(folder):
            for name in filenames:
                try:
                    total += os.stat(os.path.join(dirpath, name)).st_size
                except FileNotFoundError:  # a temporary file renamed meanwhile
                    continue
    return total


class Handler(Protocol):
    """Does the work of one task type."""

    async def run(self, ctx: Context) -> outcome.Complete:
        """Do the work and return what completes the task."""
        ...


def output_of(value: Mapping[str, Any]) -> outcome.Complete:
    """A completion with this output and nothing published."""
    return outcome.Complete(output=value)
