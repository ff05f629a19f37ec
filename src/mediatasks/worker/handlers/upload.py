"""``upload`` (and ``clip``): fetch a source, probe it, hash it, transcode its ladder, publish it.

A clip is an upload whose source is another asset's stored file and whose ladder keeps only
``[startTime, endTime]`` of it, cut in the same single encode.

Static MP4s (``asset/<playbackId>/<rendition>.mp4``) come from the same encode, by Livepeer's rule:
with ``staticMp4``, or for a source of two minutes or less.  As in Studio, an uploaded asset's
``downloadUrl`` stays its source file; other sources (clips) download as the largest MP4.

Thumbnails and a storyboard (``asset/<playbackId>/thumbnails/`` in Livepeer's layout, and
``asset/<playbackId>/storyboard/``) come from the same decode as the ladder
(:mod:`mediatasks.media.preview`); the asset's media record where they are, for playback info.

Progress: the download is the first 10 %, the transcode (from FFmpeg's own progress) the next
85 %, publishing the rest.  Everything is staged in the attempt's work folder and published to the
blob store under ``asset/<playbackId>/`` only once the transcode has succeeded; the worker removes
it again if the task cannot be completed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import shutil
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from mediatasks import assets, errors, fetch
from mediatasks.media import hls, ladder, preview, probe
from mediatasks.worker import handler, outcome

__all__ = ["UploadHandler", "UploadParams", "blob_prefix"]


class UploadParams(BaseModel):
    """The ``params.upload`` of an upload task."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    #: The source to fetch, for an import by URL.
    url: str = ""
    #: Where the bytes of a direct or tus upload were put, in the blob store.
    uploaded_object_key: str | None = None
    profiles: list[dict[str, Any]] | None = None
    target_segment_size_secs: float | None = Field(default=None)
    #: For a clip: ``{"playbackId", "startTime", "endTime"}``, milliseconds from the start of
    #: the asset whose source is ``uploaded_object_key``.
    clip_strategy: dict[str, Any] | None = None

    @property
    def clip(self) -> tuple[float, float] | None:
        """The part of the source to keep, in seconds, for a clip."""
        if self.clip_strategy is None:
            return None
        return self.clip_strategy["startTime"] / 1000, self.clip_strategy["endTime"] / 1000


def blob_prefix(playback_id: str) -> str:
    """Where an asset's media live in the blob store."""
    return f"asset/{playback_id}"


class UploadHandler:
    """Turns a source URL into a ready asset with an HLS ladder."""

    async def run(self, ctx: handler.Context) -> outcome.Complete:
        params = UploadParams.model_validate(ctx.task.params)
        if ctx.task.output_asset_id is None:
            raise errors.Unretriable("upload task has no output asset")
        try:
            asset = await ctx.store.get_asset(ctx.task.output_asset_id)
        except errors.NotFound as exc:
            raise errors.Unretriable("task cancelled, asset has been deleted") from exc
        settings = ctx.settings

        prefix = blob_prefix(asset.playback_id)
        source = ctx.workdir / "source"
        if params.uploaded_object_key:
            source, hashing = await _received(ctx, params.uploaded_object_key, source)
            try:
                return await self._transcode(ctx, params, asset, prefix, source, hashing)
            finally:
                hashing.cancel()  # only if the encode failed: the thread ends on its own
        arrival = fetch.Arrival()
        downloading = asyncio.create_task(
            fetch.download(
                params.url,
                source,
                allow_private=settings.allow_private_urls,
                max_bytes=settings.max_source_bytes,
                timeout_s=settings.download_timeout_s,
                total_timeout_s=settings.download_total_timeout_s,
                on_progress=_download_progress(ctx),
                arrival=arrival,
            )
        )
        try:
            early = await _probe_arriving(source, arrival)
            if early is None:
                fetched = await downloading
                return await self._transcode(ctx, params, asset, prefix, source, fetched)
            try:
                return await self._transcode(
                    ctx, params, asset, prefix, source, downloading, arriving=(early, arrival)
                )
            except errors.InvalidMedia:
                # Through a pipe, FFmpeg found it needed what only the whole file gives (an
                # index that points back and forth): once it is all here, read it from disk.
                fetched = await downloading
                await asyncio.to_thread(_clear_outputs, ctx.workdir)
                return await self._transcode(ctx, params, asset, prefix, source, fetched)
        finally:
            downloading.cancel()  # only if the encode failed or was cancelled
            await asyncio.gather(downloading, return_exceptions=True)

    async def _transcode(
        self,
        ctx: handler.Context,
        params: UploadParams,
        asset: assets.Asset,
        prefix: str,
        source: Path,
        fetched: fetch.Download | asyncio.Task[fetch.Download],
        arriving: tuple[probe.VideoSpec, fetch.Arrival] | None = None,
    ) -> outcome.Complete:
        """Probe, encode and publish ``source``; ``fetched`` may still be hashing it.

        With ``arriving`` (the spec probed from the first bytes, and the download's progress),
        FFmpeg reads the source from a pipe as the download writes it.
        """
        if arriving is None:
            spec = await asyncio.to_thread(probe.probe, source)
        else:
            spec = arriving[0]
        clip = params.clip
        if clip is not None and not 0 <= clip[0] < clip[1] <= spec.duration_s + 0.05:
            raise errors.Unretriable("the clip's range is outside its source")
        profiles = ladder.resolve_profiles(params.profiles, spec)
        segment_s = hls.segment_size_s(params.target_segment_size_secs)

        read_from, feed = _piped(source, arriving)
        output = await handler.encode_ladder(
            ctx,
            source=read_from,
            spec=spec,
            profiles=profiles,
            segment_s=segment_s,
            progress=(0.10, 0.95),
            mp4=clip is not None or _wants_mp4(asset.options, spec),
            clip=clip,
            previews=True,
            stdin_feed=feed,
        )
        if arriving is not None:
            # The whole file is here now: its own probe is what the asset records.
            spec = await asyncio.to_thread(probe.probe, source)

        # A clip's own file is probed and hashed where it was encoded, before it is published.
        clip_media = await _clip_media(prefix, output) if clip is not None else None
        await ctx.blobs.put_tree(f"{prefix}/hls", ctx.workdir / "hls")
        static_mp4s = await _publish_mp4s(ctx, prefix, output)
        media: dict[str, Any] = {
            "renditions": [profile.to_wire() for profile in profiles],
            "prefix": prefix,
            "hls": f"{prefix}/hls/index.m3u8",
        }
        if output.previews is not None:
            media.update(await _publish_previews(ctx, prefix, output.previews))
        if clip is None:
            if not isinstance(fetched, fetch.Download):
                fetched = await fetched  # hashed in a thread while the ladder was encoded
            if params.uploaded_object_key != f"{prefix}/video":
                await ctx.blobs.move_file(f"{prefix}/video", source)  # a rename, locally
            media.update(
                size=fetched.size_bytes,
                hash=[{"hash": fetched.sha256, "algorithm": "sha256"}],
                videoSpec=spec.to_wire(),
                source=f"{prefix}/video",
            )
        elif clip_media is not None:
            media.update(clip_media)
        await ctx.report_progress(1.0)
        if static_mp4s:
            media["staticMp4s"] = static_mp4s
            if asset.source.get("type") not in _SOURCE_DOWNLOADS:
                # Recordings and clips download as their best (largest) static MP4 (§5.3).
                media["download"] = static_mp4s[0]["key"]
        return outcome.Complete(output={"upload": {}}, asset_media=media, published=[prefix])


#: Longest source that gets static MP4s without ``staticMp4`` (Livepeer's ``only_short``).
_MP4_MAX_SOURCE_S = 120.0
#: Asset sources whose ``downloadUrl`` stays the source file even when static MP4s exist: Studio
#: gives uploads back as they were sent (reference §5.3); other sources download as an MP4.
_SOURCE_DOWNLOADS = frozenset({"url", "directUpload"})


def _wants_mp4(options: Mapping[str, Any], spec: probe.VideoSpec) -> bool:
    """Livepeer's rule (§5.3): MP4s with ``staticMp4``, or for a source of 2 minutes or less."""
    return bool(options.get("staticMp4")) or spec.duration_s <= _MP4_MAX_SOURCE_S


async def _publish_mp4s(
    ctx: handler.Context, prefix: str, output: hls.HlsOutput
) -> list[dict[str, Any]]:
    """Publish ``<prefix>/<rendition>.mp4`` next to the HLS folder; largest rendition first."""
    profiles = {rendition.profile.name: rendition.profile for rendition in output.renditions}
    published: list[dict[str, Any]] = []
    for path in output.mp4s:
        profile = profiles[path.stem]
        key = f"{prefix}/{path.name}"
        size = (await asyncio.to_thread(path.stat)).st_size
        await ctx.blobs.move_file(key, path)
        published.append({"key": key, "size": size, **profile.to_wire()})
    published.sort(key=_mp4_rank, reverse=True)
    return published


def _mp4_rank(mp4: Mapping[str, Any]) -> tuple[int, int]:
    """How MP4 renditions are ordered, best first: by picture size, then bitrate."""
    return int(mp4["width"]) * int(mp4["height"]), int(mp4["bitrate"])


async def _clip_media(prefix: str, output: hls.HlsOutput) -> dict[str, Any]:
    """What a clip's asset says of itself: its best MP4 is its source file, probed and hashed
    (its own duration and bitrates, not those of the asset it was cut from)."""
    if not output.mp4s:
        raise errors.Unretriable("the clip produced no MP4 file")
    wire = {rendition.profile.name: rendition.profile.to_wire() for rendition in output.renditions}
    best = max(output.mp4s, key=lambda path: _mp4_rank(wire[path.stem]))
    spec = await asyncio.to_thread(probe.probe, best)
    sha256 = await asyncio.to_thread(_sha256, best)
    return {
        "source": f"{prefix}/{best.name}",
        "size": (await asyncio.to_thread(best.stat)).st_size,
        "hash": [{"hash": sha256, "algorithm": "sha256"}],
        "videoSpec": spec.to_wire(),
    }


def _sha256(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(1 << 20):
            sha.update(chunk)
    return sha.hexdigest()


async def _publish_previews(
    ctx: handler.Context, prefix: str, previews: preview.Previews
) -> dict[str, Any]:
    """Publish ``<prefix>/thumbnails/`` and ``<prefix>/storyboard/``; what the asset records.

    Keyframe ``i`` is ``<thumbnails folder>/keyframes_<i>.jpg``, for ``i`` below ``count``.
    """
    thumbnails, storyboard = previews.thumbnails, previews.storyboard
    folder = f"{prefix}/{preview.THUMBNAILS_DIR}"
    board = f"{prefix}/{preview.STORYBOARD_DIR}"
    await ctx.blobs.put_tree(folder, thumbnails.vtt.parent)
    await ctx.blobs.put_tree(board, storyboard.vtt.parent)
    return {
        "thumbnails": {
            "vtt": f"{folder}/{thumbnails.vtt.name}",
            "first": f"{folder}/{preview.thumbnail_name(0)}",
            "count": len(thumbnails.images),
            "width": thumbnails.width,
            "height": thumbnails.height,
        },
        "storyboard": {
            "vtt": f"{board}/{storyboard.vtt.name}",
            "sheets": [f"{board}/{sheet.name}" for sheet in storyboard.sheets],
            "tiles": storyboard.tiles,
            "intervalS": storyboard.interval_s,
            "tileWidth": storyboard.tile_width,
            "tileHeight": storyboard.tile_height,
            "columns": storyboard.columns,
            "rows": storyboard.rows,
        },
    }


async def _received(
    ctx: handler.Context, key: str, dest: Path
) -> tuple[Path, asyncio.Task[fetch.Download]]:
    """Where the uploaded source can be read, and a task hashing it meanwhile.

    A local blob store's file is read where it lies (it is already the asset's ``video`` for a
    direct upload, or a parent's source for a clip); a remote one is copied into ``dest``.  The
    hash runs in a thread while the caller probes and encodes.
    """
    path = ctx.blobs.local_path(key)
    if path is None or not await asyncio.to_thread(path.is_file):
        path = dest
        try:
            await ctx.blobs.get_file(key, dest)
        except errors.NotFound as exc:
            raise errors.Unretriable("the uploaded file is missing") from exc
    size = (await asyncio.to_thread(path.stat)).st_size
    if size == 0:
        raise errors.Unretriable("the source file is empty")

    def digest() -> fetch.Download:
        return fetch.Download(
            size_bytes=size, sha256=_sha256(path), content_type=None, final_url=""
        )

    return path, asyncio.create_task(asyncio.to_thread(digest))


#: Bytes of a download after which its start is probed, to see whether FFmpeg can read it as
#: it arrives (an MP4 whose index comes first: ``-movflags +faststart``, as the web serves them).
STREAM_AFTER_BYTES = 4 * 1024 * 1024
#: Containers whose index, read from the start of the file, describes the whole of it.
_STREAMABLE_FORMATS = frozenset({"mp4", "mov"})


async def _probe_arriving(source: Path, arrival: fetch.Arrival) -> probe.VideoSpec | None:
    """The spec of a download that FFmpeg can read while it arrives, else ``None``.

    That is a download still under way, whose length the server announced (the limits weigh
    the whole file) and whose first :data:`STREAM_AFTER_BYTES` hold an MP4 index: its
    duration and tracks are then the whole file's.  Anything else (an index at the end, a
    stream format whose duration only the whole file tells) waits for the last byte.
    """
    await arrival.wait_for(lambda a: a.written_bytes >= STREAM_AFTER_BYTES)
    total = arrival.total_bytes
    if arrival.over or total is None:
        return None
    try:
        spec = await asyncio.to_thread(probe.probe, source)
    except errors.MediaTasksError:
        return None
    if spec.format not in _STREAMABLE_FORMATS or spec.duration_s <= 0:
        return None
    return dataclasses.replace(spec, size_bytes=total, bitrate=round(total * 8 / spec.duration_s))


def _clear_outputs(workdir: Path) -> None:
    """Remove what an encode wrote in ``workdir``, so that another starts from nothing."""
    for name in ("hls", "mp4", preview.THUMBNAILS_DIR, preview.STORYBOARD_DIR):
        shutil.rmtree(workdir / name, ignore_errors=True)


def _piped(
    source: Path, arriving: tuple[probe.VideoSpec, fetch.Arrival] | None
) -> tuple[Path | str, Callable[[asyncio.StreamWriter], Awaitable[None]] | None]:
    """What FFmpeg reads, and what feeds it: the file, or a pipe fed as the file arrives."""
    if arriving is None:
        return source, None
    arrival = arriving[1]

    async def feed(pipe: asyncio.StreamWriter) -> None:
        await fetch.follow(source, arrival, pipe)

    return "pipe:0", feed


def _download_progress(ctx: handler.Context) -> Any:
    span = ctx.progress_span(0.0, 0.10)

    async def report(received: int, total: int | None) -> None:
        if total:
            await span(received / total)

    return report
