"""Thumbnails and storyboards from the ladder's decode, checked against frames PyAV decodes."""

from __future__ import annotations

import re
from pathlib import Path

import av
import pytest

from mediatasks.media import ffmpeg, hls, ladder, preview, probe
from tests import mediagen, vttcheck

pytestmark = pytest.mark.slow

SEGMENT_S = 1.0


def crop(frame: av.VideoFrame, x: int, y: int, w: int, h: int) -> bytes:
    """The gray pixels of a rectangle of ``frame``, row by row."""
    plane = frame.reformat(format="gray").planes[0]
    data = bytes(plane)
    return b"".join(
        data[row * plane.line_size + x : row * plane.line_size + x + w] for row in range(y, y + h)
    )


def gray(frame: av.VideoFrame, width: int, height: int) -> bytes:
    """``frame`` scaled to ``width`` x ``height``, as gray pixels row by row."""
    return crop(frame.reformat(width=width, height=height), 0, 0, width, height)


def distance(a: bytes, b: bytes) -> float:
    return sum(abs(x - y) for x, y in zip(a, b, strict=True)) / len(a)


def source_frames(source: Path) -> list[av.VideoFrame]:
    with av.open(str(source)) as container:
        return list(container.decode(container.streams.video[0]))


def jpeg(path: Path) -> av.VideoFrame:
    """Open ``path`` as a JPEG image (PyAV's mjpeg decoder) and return its picture."""
    assert path.read_bytes()[:3] == b"\xff\xd8\xff", f"{path} is not a JPEG file"
    with av.open(str(path)) as container:
        assert container.streams.video[0].codec_context.name == "mjpeg"
        return next(container.decode(video=0))


async def transcode(
    source: Path, out_dir: Path, *, min_interval_s: float = 1.0, max_tiles: int = 200
) -> tuple[hls.HlsOutput, probe.VideoSpec, preview.Plan]:
    spec = probe.probe(source)
    profiles = ladder.resolve_profiles(
        [{"name": "180p0", "width": 320, "height": 180, "bitrate": 300_000}], spec
    )
    plan = preview.plan(
        out_dir=out_dir,
        display_width=spec.display_width,
        display_height=spec.display_height,
        duration_s=spec.duration_s,
        segment_s=SEGMENT_S,
        tile_px=160,
        max_tiles=max_tiles,
        min_interval_s=min_interval_s,
    )
    output = await hls.transcode_hls(
        binary=ffmpeg.ffmpeg_binary(),
        source=source,
        spec=spec,
        profiles=profiles,
        out_dir=out_dir / "hls",
        segment_s=SEGMENT_S,
        threads=2,
        previews=plan,
    )
    return output, spec, plan


async def test_a_thumbnail_per_segment_shows_the_frame_that_starts_it(tmp_path: Path) -> None:
    source = mediagen.make_video(tmp_path / "in.mp4", seconds=4, width=640, height=360)
    output, spec, _ = await transcode(source, tmp_path / "out")
    previews = output.previews
    assert previews is not None
    thumbnails = previews.thumbnails
    assert [path.name for path in thumbnails.images] == [f"keyframes_{i}.jpg" for i in range(4)]
    assert (thumbnails.width, thumbnails.height) == (640, 360)  # within 854x480: not grown

    frames = source_frames(source)
    starts = [next(f for f in frames if f.time >= i * SEGMENT_S - 1e-6) for i in range(4)]
    references = [gray(frame, 160, 90) for frame in starts]
    for index, image in enumerate(thumbnails.images):
        picture = jpeg(image)
        assert (picture.width, picture.height) == (640, 360)
        seen = gray(picture, 160, 90)
        distances = [distance(seen, reference) for reference in references]
        assert distances.index(min(distances)) == index, distances
        assert min(distances) < 6, distances

    found = vttcheck.read(thumbnails.vtt)
    assert [text for _, _, text in found] == [path.name for path in thumbnails.images]
    vttcheck.assert_cover_without_gaps(found, spec.duration_s)
    assert [(start, end) for start, end, _ in found] == [
        (i * 1000, (i + 1) * 1000) for i in range(4)
    ]


async def test_the_storyboard_tiles_show_the_frames_at_their_cues(tmp_path: Path) -> None:
    # 4 s at 30 fps, a tile every 0.035 s up to the last frame (3.967 s): 114 tiles, one sheet
    # of 10x10 and one more; the last cue lasts until the end.
    source = mediagen.make_video(tmp_path / "in.mp4", seconds=4, width=640, height=360)
    output, spec, plan = await transcode(source, tmp_path / "out", min_interval_s=0.035)
    assert output.previews is not None
    board = output.previews.storyboard
    assert (board.tile_width, board.tile_height) == (160, 90)
    assert board.tiles == 114 and (board.columns, board.rows) == (10, 10)
    assert [sheet.name for sheet in board.sheets] == ["storyboard_0.jpg", "storyboard_1.jpg"]
    assert not (plan.storyboard_dir / ".tiles").exists(), "the single tiles are removed"

    found = vttcheck.read(board.vtt)
    assert len(found) == board.tiles
    vttcheck.assert_cover_without_gaps(found, spec.duration_s)

    sheets = {sheet.name: jpeg(sheet) for sheet in board.sheets}
    assert (sheets["storyboard_0.jpg"].width, sheets["storyboard_0.jpg"].height) == (1600, 900)
    frames = source_frames(source)
    references = [(frame.time, gray(frame, 160, 90)) for frame in frames]
    fragment = re.compile(r"(storyboard_\d+\.jpg)#xywh=(\d+),(\d+),(\d+),(\d+)")
    for k in (0, 1, 37, 99, 100, 113):
        start_ms, _, text = found[k]
        match = fragment.fullmatch(text)
        assert match, text
        name, x, y, w, h = match.group(1), *(int(g) for g in match.groups()[1:])
        sheet = sheets[name]
        assert x + w <= sheet.width and y + h <= sheet.height
        tile = crop(sheet, x, y, w, h)
        best_time, _ = min(references, key=lambda item: distance(tile, item[1]))
        # The tile is the picture on screen at its cue's start (give or take a frame).
        assert abs(best_time - start_ms / 1000) <= 1 / 30 + 1e-3, (k, best_time, start_ms)


async def test_a_portrait_source_gets_portrait_previews(tmp_path: Path) -> None:
    source = mediagen.make_video(
        tmp_path / "phone.mp4", seconds=1, width=1280, height=720, display_rotation_deg=90
    )
    output, _, _ = await transcode(source, tmp_path / "out")
    assert output.previews is not None
    thumbnails, board = output.previews.thumbnails, output.previews.storyboard
    assert (thumbnails.width, thumbnails.height) == (270, 480)
    assert (jpeg(thumbnails.images[0]).width, jpeg(thumbnails.images[0]).height) == (270, 480)
    assert (board.tile_width, board.tile_height) == (90, 160)


async def test_ten_bit_sources_make_jpegs_too(tmp_path: Path) -> None:
    source = mediagen.make_video(
        tmp_path / "tenbit.mp4", seconds=1, extra_args=["-pix_fmt", "yuv420p10le"]
    )
    output, _, _ = await transcode(source, tmp_path / "out")
    assert output.previews is not None
    assert jpeg(output.previews.thumbnails.images[0]).width == 640
    assert jpeg(output.previews.storyboard.sheets[0]).width > 0
