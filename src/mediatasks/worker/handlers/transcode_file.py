"""``transcode-file``: transcode a file into the caller's S3-compatible bucket (POST /transcode).

The input is a URL (fetched like an upload's source) or an object in an S3-compatible bucket; the
outputs go to the caller's bucket in Livepeer's layout (reference §5.3)::

    <hls.path>/index.m3u8                 master playlist
    <hls.path>/<rendition>/index.m3u8     media playlists, with segments 0.ts, 1.ts, ...
    <mp4.path>/<rendition>.mp4            one static MP4 per rendition (not ``low-bitrate``)
    <fmp4.path>/fmp4/index.mpd            DASH manifest over fragmented MP4 segments
    <fmp4.path>/fmp4/master.m3u8          HLS master playlist over the same segments

One encode makes them all: the MP4s and the fMP4 segments are remuxed from the HLS renditions
(:mod:`mediatasks.media.hls`).  When HLS is not asked for, the ladder is still made in the work
folder, and not uploaded.  Nothing is written to the caller's bucket before the encode (and the
remuxes) have succeeded.

Locations are Livepeer's object store URLs (``s3+https://KEY:SECRET@host/bucket/path``, §5.1),
stored in the task's params: the API masks their credentials in every answer, and no message or
timeline entry written here repeats them.  Every endpoint is resolved and checked before it is
contacted, as a source URL is (:func:`mediatasks.fetch.resolve_url`): a caller cannot point the
worker at our own network.

Errors: a missing bucket or object, refused credentials or access fail the task at once; network
failures, timeouts and 5xx answers are retried by the usual policy.

Progress: fetching the input is the first 10 %, the encode (and remux) up to 90 %, the upload the
rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pydantic
from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from mediatasks import errors, fetch
from mediatasks import settings as settings_module
from mediatasks.blobstore import base
from mediatasks.media import ffmpeg, hls, ladder, probe
from mediatasks.worker import handler, outcome

try:
    from mediatasks.blobstore import s3

    _S3_MISSING: ImportError | None = None
except ImportError as exc:  # boto3 comes with the optional "s3" extra
    _S3_MISSING = exc

__all__ = ["TranscodeFileHandler", "TranscodeFileParams"]

_STORAGE_FAILURE = "error saving file to storage"
_INPUT_FAILURE = "the input file could not be read from its bucket"


class _Location(BaseModel):
    model_config = ConfigDict(extra="ignore")

    url: str


class _Output(BaseModel):
    model_config = ConfigDict(extra="ignore")

    path: str


class _Outputs(BaseModel):
    model_config = ConfigDict(extra="ignore")

    hls: _Output | None = None
    mp4: _Output | None = None
    fmp4: _Output | None = None


class TranscodeFileParams(BaseModel):
    """The ``params["transcode-file"]`` of a task, as ``POST /transcode`` stores them (§5.1)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    #: ``{"url": "https://..." | "s3+https://KEY:SECRET@host/bucket/path"}``.
    input: _Location
    #: ``{"url": "s3+https://KEY:SECRET@host/bucket"}``.
    storage: _Location
    outputs: _Outputs
    profiles: list[dict[str, Any]] | None = None
    target_segment_size_secs: float | None = None


class TranscodeFileHandler:
    """Fetches, encodes once, and writes HLS and MP4 renditions to the caller's bucket."""

    async def run(self, ctx: handler.Context) -> outcome.Complete:
        try:
            params = TranscodeFileParams.model_validate(ctx.task.params)
        except pydantic.ValidationError:
            # Not the validation message: it would quote the params, credentials included.
            raise errors.Unretriable("the transcode-file task's parameters are not valid") from None
        outputs = params.outputs
        if outputs.hls is None and outputs.mp4 is None and outputs.fmp4 is None:
            raise errors.Unretriable("the task asks for no output: give hls, mp4 or fmp4")
        if _S3_MISSING is not None:
            raise errors.Unretriable(
                "transcode-file needs boto3 on the worker: install mediatasks[s3]"
            ) from _S3_MISSING
        settings = ctx.settings

        with _storage_errors():
            storage = s3.parse_location(params.storage.url, _defaults(settings))
        await _check_endpoint(storage, settings, failure=_STORAGE_FAILURE)

        source = ctx.workdir / "source"
        size_bytes = await _fetch_input(ctx, params.input.url, source)
        spec = await asyncio.to_thread(probe.probe, source)
        profiles = ladder.resolve_profiles(params.profiles, spec)

        segment_s = hls.segment_size_s(params.target_segment_size_secs)
        output = await handler.encode_ladder(
            ctx,
            source=source,
            spec=spec,
            profiles=profiles,
            segment_s=segment_s,
            progress=(0.10, 0.90),
            mp4=outputs.mp4 is not None,
        )
        binary = ffmpeg.ffmpeg_binary(settings.ffmpeg_path)
        out_dir = ctx.workdir / "hls"
        fmp4_dir = ctx.workdir / "fmp4"
        if outputs.fmp4 is not None:
            fmp4_run = await hls.remux_fmp4(
                binary=binary,
                out_dir=out_dir,
                profiles=profiles,
                fmp4_dir=fmp4_dir,
                segment_s=segment_s,
                with_audio=spec.audio is not None,
                duration_s=spec.duration_s,
            )
            ctx.facts["ffmpeg"]["fmp4Command"] = list(fmp4_run.argv)
        await ctx.report_progress(0.90)

        written = await _publish(storage, outputs, out_dir, output, fmp4_dir)
        await ctx.report_progress(1.0)
        result: dict[str, Any] = {
            "baseUrl": "",
            **written,
            "request_id": ctx.task.id,
            "input_video": {"duration": spec.duration_s, "size": size_bytes},
        }
        return outcome.Complete(output={"transcodeFile": result})


def _defaults(settings: settings_module.Settings) -> s3.S3Config:
    return s3.S3Config(
        connect_timeout_s=settings.download_timeout_s,
        read_timeout_s=settings.download_timeout_s,
    )


async def _check_endpoint(
    location: s3.S3Location, settings: settings_module.Settings, *, failure: str
) -> None:
    """Refuse an endpoint that resolves to a private address (unless allowed)."""
    endpoint = location.config.endpoint_url
    if endpoint is None:
        return
    try:
        await fetch.resolve_url(
            endpoint,
            allow_private=settings.allow_private_urls,
            timeout_s=settings.download_timeout_s,
        )
    except errors.UnsafeURL as exc:
        raise errors.Unretriable(f"{failure}: the endpoint is not allowed: {exc.message}") from exc
    except errors.SourceUnavailable as exc:
        raise errors.TaskFailure(
            f"{failure}: the endpoint {location.endpoint_host} could not be resolved"
        ) from exc


async def _fetch_input(ctx: handler.Context, url: str, dest: Path) -> int:
    """Put the input in ``dest``; return its size in bytes."""
    settings = ctx.settings
    scheme = urllib.parse.urlsplit(url).scheme.lower()
    if scheme not in ("s3+http", "s3+https"):
        fetched = await fetch.download(
            url,
            dest,
            allow_private=settings.allow_private_urls,
            max_bytes=settings.max_source_bytes,
            timeout_s=settings.download_timeout_s,
            total_timeout_s=settings.download_total_timeout_s,
            on_progress=_download_progress(ctx),
        )
        return fetched.size_bytes
    with _input_errors(""):
        location = s3.parse_location(url, _defaults(settings))
    await _check_endpoint(location, settings, failure=_INPUT_FAILURE)
    if not location.prefix:
        raise errors.Unretriable(f"{_INPUT_FAILURE}: the input names a bucket but no object")
    bucket = s3.S3BlobStore(location.bucket, config=location.config, check_folders=False)
    key = location.prefix
    try:
        with _input_errors(key):
            size_bytes = await bucket.size_bytes(key)
            if size_bytes > settings.max_source_bytes:
                raise errors.Unretriable(
                    f"the source file is larger than the limit of {settings.max_source_bytes} bytes"
                )
            if size_bytes == 0:
                raise errors.Unretriable("the source file is empty")
            await bucket.get_file(key, dest)
    finally:
        await bucket.close()
    await ctx.report_progress(0.10)
    return dest.stat().st_size


async def _publish(
    storage: s3.S3Location,
    outputs: _Outputs,
    out_dir: Path,
    output: hls.HlsOutput,
    fmp4_dir: Path,
) -> dict[str, Any]:
    """Upload what was asked for; return the ``output.transcodeFile`` entries it wrote."""
    # The caller's bucket: no folder checks, which would need list and read permissions too.
    bucket = s3.S3BlobStore.at(storage, check_folders=False)
    written: dict[str, Any] = {}
    try:
        with _storage_errors():
            if outputs.mp4 is not None:
                folder = _folder(outputs.mp4.path)
                written["mp4"] = []
                for mp4 in output.mp4s:
                    key = _join(folder, mp4.name)
                    await bucket.put_file(key, mp4)
                    written["mp4"].append({"path": _public_path(storage, key)})
            if outputs.hls is not None:
                folder = _folder(outputs.hls.path)
                await bucket.put_tree(folder, out_dir)
                master = _join(folder, hls.MASTER_PLAYLIST)
                written["hls"] = {"path": _public_path(storage, master)}
            if outputs.fmp4 is not None:
                folder = _join(_folder(outputs.fmp4.path), "fmp4")
                await bucket.put_tree(folder, fmp4_dir)
                written["fmp4"] = {
                    "path": _public_path(storage, _join(folder, hls.DASH_MANIFEST)),
                    "hlsPath": _public_path(storage, _join(folder, hls.FMP4_MASTER_PLAYLIST)),
                }
    finally:
        await bucket.close()
    return written


def _folder(path: str) -> str:
    try:
        return base.check_prefix(path.strip("/"))
    except errors.InvalidInput as exc:
        raise errors.Unretriable(f"the output path {path!r} is not valid: {exc.message}") from exc


def _join(folder: str, name: str) -> str:
    return f"{folder}/{name}" if folder else name


def _public_path(location: s3.S3Location, key: str) -> str:
    """A written key as Livepeer lists it: from the bucket's root, bucket name left out."""
    return "/" + _join(location.prefix, key)


@contextlib.contextmanager
def _storage_errors() -> Iterator[None]:
    """The caller's storage refusing is final; the storage being unreachable is not."""
    try:
        yield
    except errors.ConfigurationError as exc:
        raise errors.Unretriable(f"{_STORAGE_FAILURE}: {exc.message}") from exc
    except errors.Unavailable as exc:
        raise errors.TaskFailure(f"{_STORAGE_FAILURE}: {exc.message}") from exc


@contextlib.contextmanager
def _input_errors(key: str) -> Iterator[None]:
    try:
        yield
    except errors.NotFound as exc:
        raise errors.Unretriable(f"{_INPUT_FAILURE}: no object {key!r} in the bucket") from exc
    except errors.ConfigurationError as exc:
        raise errors.Unretriable(f"{_INPUT_FAILURE}: {exc.message}") from exc
    except errors.Unavailable as exc:
        raise errors.SourceUnavailable(f"{_INPUT_FAILURE}: {exc.message}") from exc


def _download_progress(ctx: handler.Context) -> Any:
    span = ctx.progress_span(0.0, 0.10)

    async def report(received: int, total: int | None) -> None:
        if total:
            await span(received / total)

    return report
