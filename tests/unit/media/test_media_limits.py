"""The source limits, decided from a probe alone, and the guard on the encode's output."""

from __future__ import annotations

from pathlib import Path

import pytest

from mediatasks import errors
from mediatasks.media import ladder, limits, probe
from mediatasks.worker import handler

LIMITS = limits.SourceLimits(
    max_duration_s=12 * 3600,
    min_bitrate_bps=1000,
    min_bytes_per_frame=1,
    max_segments=10_000,
    max_output_bytes=64 * 1024**3,
)
PROFILE = ladder.Profile(name="360p0", width=640, height=360, bitrate=1_000_000)


def spec(duration_s: float, size_bytes: int, fps: float = 30.0) -> probe.VideoSpec:
    video = probe.Track(type="video", codec="h264", width=640, height=360, fps=fps)
    return probe.VideoSpec(
        format="mp4",
        duration_s=duration_s,
        bitrate=round(size_bytes * 8 / duration_s),
        size_bytes=size_bytes,
        tracks=(video,),
    )


def check(source: probe.VideoSpec, *, segment_s: float = 10, **changes: object) -> None:
    limits.check_source(
        source,
        duration_s=source.duration_s,
        profiles=[PROFILE],
        segment_s=segment_s,
        mp4=True,
        limits=LIMITS.__class__(**{**LIMITS.__dict__, **changes}),
    )


def test_an_ordinary_source_passes() -> None:
    check(spec(60, 5_000_000))
    check(spec(6 * 3600, 2 * 1024**3))


@pytest.mark.parametrize(
    ("source", "segment_s", "message"),
    [
        (spec(13 * 3600, 10 * 1024**3), 10, "the video lasts 13:00:00, longer than the limit of"),
        (spec(36_000, 12_000), 10, "the file holds 11.7 KiB for 10:00:00 of video (2.67 bits"),
        (spec(10, 100_000, fps=90_000), 10, "for 900,000 frames of video (90000 fps"),
        (spec(3600, 500_000_000), 0.2, "makes 18,000 segments per rendition"),
    ],
)
def test_sources_out_of_proportion_are_refused(
    source: probe.VideoSpec, segment_s: float, message: str
) -> None:
    with pytest.raises(errors.Unretriable) as refused:
        check(source, segment_s=segment_s)
    assert message in refused.value.message


def test_the_output_is_predicted_from_the_bitrate_caps() -> None:
    # 1 Mb/s for 1000 s is 125 MB, twice with the MP4s.
    assert limits.predicted_output_bytes([PROFILE], 1000, with_audio=False, mp4=True) == 250_000_000
    with pytest.raises(errors.Unretriable, match=r"could take up to 238\.4 MiB"):
        check(spec(1000, 100_000_000), max_output_bytes=200_000_000)


async def test_the_encode_stops_once_its_output_grows_past_the_limit(tmp_path: Path) -> None:
    seen: list[float] = []

    async def report(fraction: float) -> None:
        seen.append(fraction)

    folder = tmp_path / "hls"
    folder.mkdir()
    guard = handler._OutputGuard(report, [folder, tmp_path / "missing"], 1000, interval_s=0)
    (folder / "0.ts").write_bytes(bytes(600))
    await guard(0.1)
    (folder / "1.ts").write_bytes(bytes(600))
    with pytest.raises(errors.Unretriable, match="grew past the limit of 1000 bytes"):
        await guard(0.2)
    assert seen == [0.1]
