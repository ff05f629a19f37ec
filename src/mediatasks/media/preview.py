"""Keyframe thumbnails and a scrubbing storyboard, taken from the ladder's own decode.

The ladder command (:func:`mediatasks.media.hls.build_ladder_command`) ``split``s the decoded
frames into one branch per rendition; with a :class:`Plan` it adds two more, which drop almost
every frame before doing any work, so they cost next to nothing beside the encodes:

* **Thumbnails**, in Livepeer's layout (catalyst's ``thumbnails`` package)::

      thumbnails/keyframes_<i>.jpg    the first frame of segment i, within 854x480
      thumbnails/thumbnails.vtt       one cue per segment, naming its keyframes_<i>.jpg

  The branch keeps the first frame at or after every multiple of the segment length, which is
  the rule that forces the renditions' keyframes (``gte(t, n*segment)``): the image of segment
  *i* is the frame that starts it.  The cues take their times from a written media playlist, as
  catalyst does, so they are the segments' own.
* **A storyboard**: small tiles, one every :attr:`Plan.interval_s`, laid out row by row in JPEG
  sprite sheets of at most :data:`COLUMNS` x :data:`ROWS`, and a WebVTT whose cues name a tile
  as ``storyboard_<n>.jpg#xywh=x,y,w,h`` (the media fragment that scrubbing previews read)::

      storyboard/storyboard_<n>.jpg
      storyboard/storyboard.vtt

  The branch samples at a constant rate (``fps``, which repeats a frame across a gap in a
  variable frame rate source), so tile *k* is the picture at ``k * interval``.  FFmpeg writes
  each tile as a small lossless file; :func:`finish` lays them out in sheets (a second FFmpeg
  over a few kilobytes of tiles, never over the source) and counts them, so the cues describe
  exactly the tiles that exist.

Both VTTs cover the whole duration, from 0 to its end, cue after cue without a gap (times in
milliseconds, each cue starting where the previous one ends).
"""

from __future__ import annotations

import asyncio
import math
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from mediatasks.media import ffmpeg

__all__ = [
    "COLUMNS",
    "ROWS",
    "STORYBOARD_DIR",
    "STORYBOARD_VTT",
    "THUMBNAILS_DIR",
    "THUMBNAILS_VTT",
    "Plan",
    "Previews",
    "Storyboard",
    "Thumbnails",
    "filter_chains",
    "finish",
    "output_args",
    "plan",
    "prepare",
    "thumbnail_name",
    "vtt_time",
]

#: Folder names under the asset's prefix, as Livepeer names the thumbnails'.
THUMBNAILS_DIR: Final = "thumbnails"
THUMBNAILS_VTT: Final = "thumbnails.vtt"
STORYBOARD_DIR: Final = "storyboard"
STORYBOARD_VTT: Final = "storyboard.vtt"
#: Thumbnails fit in this box (catalyst's ``854:480``), never larger than the source.
THUMBNAIL_BOX: Final = (854, 480)
#: Tiles per sheet row, and rows per sheet at most.
COLUMNS: Final = 10
ROWS: Final = 10
#: JPEG quality (FFmpeg's ``-q:v``: 2 is best, 31 worst).
_THUMBNAIL_QUALITY: Final = 3
_STORYBOARD_QUALITY: Final = 4
#: Where FFmpeg writes the single tiles before :func:`finish` lays them out.
_TILES: Final = ".tiles"


@dataclass(frozen=True, kw_only=True)
class Plan:
    """What to take from the decode, and where to write it."""

    thumbnails_dir: Path
    storyboard_dir: Path
    #: The ladder's segment length: one thumbnail per segment.
    segment_s: float
    thumbnail_width: int
    thumbnail_height: int
    #: Seconds between two storyboard tiles.
    interval_s: float
    tile_width: int
    tile_height: int


@dataclass(frozen=True, kw_only=True)
class Thumbnails:
    """The written keyframe thumbnails."""

    #: ``thumbnails/thumbnails.vtt``.
    vtt: Path
    #: ``keyframes_0.jpg`` ... in segment order.
    images: tuple[Path, ...]
    width: int
    height: int


@dataclass(frozen=True, kw_only=True)
class Storyboard:
    """The written sprite sheets and their WebVTT."""

    #: ``storyboard/storyboard.vtt``.
    vtt: Path
    #: ``storyboard_0.jpg`` ... in order.
    sheets: tuple[Path, ...]
    #: How many tiles the sheets hold, in order; tile *k* is the picture at ``k * interval_s``.
    tiles: int
    interval_s: float
    tile_width: int
    tile_height: int
    columns: int
    rows: int


@dataclass(frozen=True, kw_only=True)
class Previews:
    """What :func:`finish` wrote."""

    thumbnails: Thumbnails
    storyboard: Storyboard
    #: The run that laid out the sheets.
    sheets_run: ffmpeg.FFmpegRun


def plan(
    *,
    out_dir: Path,
    display_width: int,
    display_height: int,
    duration_s: float,
    segment_s: float,
    tile_px: int,
    max_tiles: int,
    min_interval_s: float,
) -> Plan:
    """The thumbnails and storyboard of a source whose upright frames are ``display_*`` pixels.

    Tiles fit in a ``tile_px`` square; there is one every ``min_interval_s`` seconds, or fewer
    (evenly spread) when that would make more than ``max_tiles``.
    """
    thumb_w, thumb_h = _fit(display_width, display_height, *THUMBNAIL_BOX)
    tile_w, tile_h = _fit(display_width, display_height, tile_px, tile_px, even=True)
    interval_s = max(min_interval_s, duration_s / max_tiles)
    return Plan(
        thumbnails_dir=out_dir / THUMBNAILS_DIR,
        storyboard_dir=out_dir / STORYBOARD_DIR,
        segment_s=segment_s,
        thumbnail_width=thumb_w,
        thumbnail_height=thumb_h,
        # Milliseconds: the cue times are whole milliseconds too.
        interval_s=math.ceil(interval_s * 1000) / 1000,
        tile_width=tile_w,
        tile_height=tile_h,
    )


def filter_chains(preview: Plan, thumbnails_in: str, storyboard_in: str) -> list[str]:
    """The filter graph chains that feed :func:`output_args`'s two outputs.

    Each starts by dropping the frames it does not keep, so that only kept frames are scaled.
    """
    segment = _number(preview.segment_s)
    rate = f"1000/{round(preview.interval_s * 1000)}"
    return [
        f"[{thumbnails_in}]select='gte(t\\,selected_n*{segment})',"
        f"scale={preview.thumbnail_width}:{preview.thumbnail_height}[thumbs]",
        f"[{storyboard_in}]fps=fps={rate}:start_time=0:round=down,"
        f"scale={preview.tile_width}:{preview.tile_height}[tiles]",
    ]


def output_args(preview: Plan) -> list[str]:
    """The two outputs, to put after the ladder's: JPEG thumbnails, and the storyboard's tiles.

    ``-fps_mode passthrough`` writes each kept frame once (no duplicates to fill a rate).
    """
    tiles = preview.storyboard_dir / _TILES
    return [
        *("-map", "[thumbs]", "-fps_mode", "passthrough"),
        *("-c:v", "mjpeg", "-q:v", str(_THUMBNAIL_QUALITY), "-start_number", "0"),
        *("-f", "image2", str(preview.thumbnails_dir / "keyframes_%d.jpg")),
        *("-map", "[tiles]", "-fps_mode", "passthrough"),
        *("-c:v", "bmp", "-start_number", "0", "-f", "image2", str(tiles / "%d.bmp")),
    ]


def prepare(preview: Plan) -> None:
    """Make the folders FFmpeg writes into (it makes none itself)."""
    preview.thumbnails_dir.mkdir(parents=True, exist_ok=True)
    (preview.storyboard_dir / _TILES).mkdir(parents=True, exist_ok=True)


def thumbnail_name(index: int) -> str:
    """Catalyst's name for the thumbnail of segment ``index``."""
    return f"keyframes_{index}.jpg"


async def finish(
    preview: Plan, *, binary: str, segments_s: Sequence[float], duration_s: float
) -> Previews:
    """Write both VTTs and lay the storyboard's tiles out in sheets, once FFmpeg has run.

    ``segments_s`` are the durations of the segments of a written rendition, in order;
    ``duration_s`` is the media's, which the last cues reach.
    """
    thumbnails = await asyncio.to_thread(_write_thumbnails_vtt, preview, segments_s, duration_s)
    tiles_dir = preview.storyboard_dir / _TILES
    count = await asyncio.to_thread(_count_tiles, tiles_dir)
    # Tiles sampled at or past the end (a rate rounding at the very end) show nothing new.
    count = max(1, min(count, math.ceil(duration_s / preview.interval_s - 1e-9)))
    rows = min(ROWS, math.ceil(count / COLUMNS))
    columns = min(COLUMNS, count)
    per_sheet = columns * rows
    argv = [
        binary,
        *("-framerate", "1", "-start_number", "0", "-i", str(tiles_dir / "%d.bmp")),
        *("-frames:v", str(math.ceil(count / per_sheet))),
        *("-vf", f"trim=end_frame={count},tile={columns}x{rows}"),
        *("-c:v", "mjpeg", "-q:v", str(_STORYBOARD_QUALITY), "-start_number", "0"),
        *("-f", "image2", str(preview.storyboard_dir / "storyboard_%d.jpg")),
    ]
    run = await ffmpeg.run_ffmpeg(argv, duration_s=None)
    await asyncio.to_thread(shutil.rmtree, tiles_dir)
    sheets = tuple(
        preview.storyboard_dir / f"storyboard_{n}.jpg" for n in range(math.ceil(count / per_sheet))
    )
    storyboard = Storyboard(
        vtt=preview.storyboard_dir / STORYBOARD_VTT,
        sheets=sheets,
        tiles=count,
        interval_s=preview.interval_s,
        tile_width=preview.tile_width,
        tile_height=preview.tile_height,
        columns=columns,
        rows=rows,
    )
    await asyncio.to_thread(_write_storyboard_vtt, storyboard, duration_s)
    return Previews(thumbnails=thumbnails, storyboard=storyboard, sheets_run=run)


def vtt_time(ms: int) -> str:
    """``HH:MM:SS.mmm``, WebVTT's timestamp."""
    seconds, millis = divmod(ms, 1000)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}.{millis:03d}"


def _write_thumbnails_vtt(
    preview: Plan, segments_s: Sequence[float], duration_s: float
) -> Thumbnails:
    written = _count_files(preview.thumbnails_dir, "keyframes_", ".jpg")
    if written == 0:
        raise ValueError("FFmpeg wrote no thumbnail")
    images = tuple(preview.thumbnails_dir / thumbnail_name(i) for i in range(written))
    ends_ms = []
    elapsed_s = 0.0
    for seconds in segments_s or [duration_s]:
        elapsed_s += seconds
        ends_ms.append(round(elapsed_s * 1000))
    ends_ms[-1] = max(ends_ms[-1], round(duration_s * 1000))
    cues = []
    start_ms = 0
    for index, end_ms in enumerate(ends_ms):
        if end_ms <= start_ms:
            continue
        # One image per segment; should a segment have none (a gap longer than a segment in a
        # variable frame rate source), it shows the last picture before it, as a player would.
        cues.append((start_ms, end_ms, thumbnail_name(min(index, written - 1))))
        start_ms = end_ms
    vtt = preview.thumbnails_dir / THUMBNAILS_VTT
    vtt.write_text(_vtt(cues), encoding="utf-8")
    return Thumbnails(
        vtt=vtt,
        images=images,
        width=preview.thumbnail_width,
        height=preview.thumbnail_height,
    )


def _write_storyboard_vtt(storyboard: Storyboard, duration_s: float) -> None:
    per_sheet = storyboard.columns * storyboard.rows
    end_of_media_ms = round(duration_s * 1000)
    cues = []
    for k in range(storyboard.tiles):
        start_ms = round(k * storyboard.interval_s * 1000)
        last = k == storyboard.tiles - 1
        end_ms = end_of_media_ms if last else round((k + 1) * storyboard.interval_s * 1000)
        sheet, cell = divmod(k, per_sheet)
        row, column = divmod(cell, storyboard.columns)
        x, y = column * storyboard.tile_width, row * storyboard.tile_height
        fragment = f"#xywh={x},{y},{storyboard.tile_width},{storyboard.tile_height}"
        cues.append((start_ms, max(end_ms, start_ms + 1), f"storyboard_{sheet}.jpg{fragment}"))
    storyboard.vtt.write_text(_vtt(cues), encoding="utf-8")


def _vtt(cues: Sequence[tuple[int, int, str]]) -> str:
    blocks = [f"{vtt_time(start)} --> {vtt_time(end)}\n{text}\n" for start, end, text in cues]
    return "WEBVTT\n\n" + "\n".join(blocks)


def _count_tiles(folder: Path) -> int:
    return _count_files(folder, "", ".bmp")


def _count_files(folder: Path, prefix: str, suffix: str) -> int:
    """How many of ``<prefix>0<suffix>``, ``<prefix>1<suffix>``... exist, from 0 without a hole."""
    count = 0
    while (folder / f"{prefix}{count}{suffix}").is_file():
        count += 1
    return count


def _fit(width: int, height: int, box_w: int, box_h: int, *, even: bool = False) -> tuple[int, int]:
    """``width`` x ``height`` shrunk (never grown) to fit the box, keeping its aspect."""
    scale = min(1.0, box_w / width, box_h / height)
    w, h = max(2, round(width * scale)), max(2, round(height * scale))
    if even:
        w, h = max(2, w - w % 2), max(2, h - h % 2)
    return w, h


def _number(value: float) -> str:
    return f"{value:g}"
