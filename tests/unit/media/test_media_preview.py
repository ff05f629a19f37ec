"""Thumbnail and storyboard plans, their FFmpeg branches and their WebVTT, without FFmpeg."""

from __future__ import annotations

from pathlib import Path

import pytest

from mediatasks.media import hls, ladder, preview, probe


def plan_for(
    width: int, height: int, duration_s: float, *, max_tiles: int = 200, tmp: Path = Path("/o")
) -> preview.Plan:
    return preview.plan(
        out_dir=tmp,
        display_width=width,
        display_height=height,
        duration_s=duration_s,
        segment_s=10.0,
        tile_px=160,
        max_tiles=max_tiles,
        min_interval_s=1.0,
    )


@pytest.mark.parametrize(
    ("size", "thumbnail", "tile"),
    [
        ((1920, 1080), (853, 480), (160, 90)),
        ((1080, 1920), (270, 480), (90, 160)),
        ((640, 360), (640, 360), (160, 90)),  # never grown
        ((100, 50), (100, 50), (100, 50)),
        ((853, 479), (853, 479), (160, 90)),
    ],
)
def test_sizes_fit_their_box_and_keep_the_aspect(
    size: tuple[int, int], thumbnail: tuple[int, int], tile: tuple[int, int]
) -> None:
    plan = plan_for(*size, 60)
    assert (plan.thumbnail_width, plan.thumbnail_height) == thumbnail
    assert (plan.tile_width, plan.tile_height) == tile


def test_tiles_are_a_second_apart_until_there_would_be_too_many() -> None:
    assert plan_for(1280, 720, 30).interval_s == 1.0
    assert plan_for(1280, 720, 3600).interval_s == 18.0
    assert plan_for(1280, 720, 1000, max_tiles=3).interval_s == 333.334


def test_the_ladder_command_feeds_the_previews_from_its_one_decode() -> None:
    spec = probe.VideoSpec(
        format="mp4",
        duration_s=30.0,
        bitrate=3_000_000,
        tracks=(probe.Track(type="video", codec="h264", width=1280, height=720, fps=30.0),),
    )
    profiles = ladder.resolve_profiles(None, spec)
    plan = plan_for(1280, 720, 30)
    argv = hls.build_ladder_command(
        binary="ffmpeg",
        source=Path("/in.mp4"),
        spec=spec,
        profiles=profiles,
        out_dir=Path("/o/hls"),
        segment_s=10.0,
        previews=plan,
    )
    assert argv.count("-i") == 1
    graph = argv[argv.index("-filter_complex") + 1]
    assert graph.startswith(f"[0:v:0]split={len(profiles) + 2}")
    assert "[thumbs_in]select='gte(t\\,selected_n*10)',scale=853:480[thumbs]" in graph
    assert "[tiles_in]fps=fps=1000/1000:start_time=0:round=down,scale=160:90[tiles]" in graph
    # The previews are outputs of their own, after the ladder's HLS output.
    hls_output = argv.index("/o/hls/%v/index.m3u8")
    assert argv.index("[thumbs]") > hls_output and argv.index("[tiles]") > hls_output
    assert argv[-1] == "/o/storyboard/.tiles/%d.bmp"
    assert "/o/thumbnails/keyframes_%d.jpg" in argv


@pytest.mark.parametrize(
    ("ms", "text"),
    [
        (0, "00:00:00.000"),
        (1, "00:00:00.001"),
        (61_001, "00:01:01.001"),
        (36_000_000, "10:00:00.000"),
    ],
)
def test_vtt_times(ms: int, text: str) -> None:
    assert preview.vtt_time(ms) == text
