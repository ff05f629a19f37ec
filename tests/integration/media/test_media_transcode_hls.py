"""Real HLS ladder transcodes of generated clips, checked with PyAV."""

from __future__ import annotations

import re
from pathlib import Path

import av
import pytest

from mediatasks.media import ffmpeg, hls, ladder, probe

pytestmark = pytest.mark.slow

SEGMENT_S = 1.0


def decoded_video(playlist: Path) -> tuple[list[av.VideoFrame], float]:
    """Every video frame of a playlist and the span they cover, in seconds."""
    with av.open(str(playlist)) as container:
        stream = container.streams.video[0]
        frames = list(container.decode(stream))
        rate = stream.average_rate or stream.guessed_rate
    assert frames and rate
    times = [frame.time for frame in frames if frame.time is not None]
    return frames, max(times) - min(times) + 1 / float(rate)


def has_audio(playlist: Path) -> bool:
    with av.open(str(playlist)) as container:
        return bool(container.streams.audio)


def luma_mean(frame: av.VideoFrame, *, top: bool) -> float:
    """Mean luma of the top or bottom half of a yuv420p frame."""
    plane = frame.planes[0]
    data = bytes(plane)
    rows = range(0, frame.height // 2) if top else range(frame.height // 2, frame.height)
    total = sum(sum(data[y * plane.line_size : y * plane.line_size + frame.width]) for y in rows)
    return total / (len(rows) * frame.width)


async def transcode(
    source: Path, out_dir: Path, requested: list[dict[str, object]] | None
) -> tuple[hls.HlsOutput, list[float], probe.VideoSpec]:
    spec = probe.probe(source)
    profiles = ladder.resolve_profiles(requested, spec)
    seen: list[float] = []

    async def on_progress(fraction: float) -> None:
        seen.append(fraction)

    output = await hls.transcode_hls(
        binary=ffmpeg.ffmpeg_binary(),
        source=source,
        spec=spec,
        profiles=profiles,
        out_dir=out_dir,
        segment_s=SEGMENT_S,
        on_progress=on_progress,
        threads=2,
    )
    return output, seen, spec


async def test_two_renditions_with_audio(clip: Path, tmp_path: Path) -> None:
    out_dir = tmp_path / "hls"
    output, seen, spec = await transcode(
        clip,
        out_dir,
        [
            {"name": "240p0", "width": 426, "height": 240, "bitrate": 300_000},
            {"name": "360p0", "width": 640, "height": 360, "bitrate": 800_000},
        ],
    )
    print(f"two-rendition ladder of a 2 s clip: {output.run.elapsed_s:.2f} s")

    assert seen and seen == sorted(seen) and seen[-1] == 1.0
    assert output.master_playlist == out_dir / "index.m3u8"
    for name, size in {"240p0": (426, 240), "360p0": (640, 360)}.items():
        playlist = out_dir / name / "index.m3u8"
        text = playlist.read_text()
        assert "#EXT-X-PLAYLIST-TYPE:VOD" in text
        assert text.rstrip().endswith("#EXT-X-ENDLIST")
        segments = re.findall(r"^(\d+)\.ts$", text, flags=re.MULTILINE)
        assert segments == [str(n) for n in range(len(segments))]  # 0.ts, 1.ts, ...
        assert len(segments) >= 2  # 2 s in 1 s segments
        assert all((out_dir / name / f"{n}.ts").is_file() for n in segments)

        frames, span_s = decoded_video(playlist)
        assert {(frame.width, frame.height) for frame in frames} == {size}
        assert abs(span_s - spec.duration_s) <= SEGMENT_S
        assert has_audio(playlist)

    master = (out_dir / "index.m3u8").read_text().splitlines()
    assert master[0] == "#EXTM3U"
    variants = [line for line in master if line.startswith("#EXT-X-STREAM-INF:")]
    assert 'NAME="0-360p0"' in variants[0] and "RESOLUTION=640x360" in variants[0]
    assert 'NAME="1-240p0"' in variants[1] and "RESOLUTION=426x240" in variants[1]
    assert all("FRAME-RATE=30.000" in v and 'CODECS="avc1.' in v for v in variants)
    assert [line for line in master if not line.startswith("#")] == [
        "360p0/index.m3u8",
        "240p0/index.m3u8",
    ]
    assert [r.profile.name for r in output.renditions] == ["360p0", "240p0"]


async def test_default_ladder_of_a_small_clip(clip: Path, tmp_path: Path) -> None:
    out_dir = tmp_path / "hls"
    output, _, spec = await transcode(clip, out_dir, None)
    names = [profile.name for profile in ladder.default_ladder(spec)]
    assert sorted(names) == sorted(r.profile.name for r in output.renditions)
    for name in names:
        frames, _ = decoded_video(out_dir / name / "index.m3u8")
        assert (frames[0].width, frames[0].height) == (640, 360)


async def test_a_rotated_source_comes_out_upright(rotated_clip: Path, tmp_path: Path) -> None:
    out_dir = tmp_path / "hls"
    output, _, spec = await transcode(
        rotated_clip,
        out_dir,
        [
            {"name": "portrait", "width": 180, "height": 320, "bitrate": 200_000},
            {"name": "full", "width": 360, "height": 640, "bitrate": 400_000},
        ],
    )
    assert (spec.display_width, spec.display_height) == (360, 640)
    for rendition in output.renditions:
        playlist = out_dir / rendition.playlist
        assert not has_audio(playlist)
        frames, _ = decoded_video(playlist)
        frame = frames[0]
        size = (rendition.profile.width, rendition.profile.height)
        assert (frame.width, frame.height) == size
        assert frame.rotation == 0  # pixels rotated, no display matrix left
        # The stored left half is white; rotated 90° counter-clockwise it is the bottom half.
        assert luma_mean(frame, top=False) > 200 > 50 > luma_mean(frame, top=True)
