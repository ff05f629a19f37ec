"""Static MP4 renditions come from the HLS encode: a remux, never a second encode."""

from __future__ import annotations

import hashlib
from pathlib import Path

import av
import pytest

from mediatasks.media import ffmpeg, hls, ladder, probe

pytestmark = pytest.mark.slow

PROFILES: list[dict[str, object]] = [
    {"name": "240p0", "width": 426, "height": 240, "bitrate": 300_000},
    {"name": "360p0", "width": 640, "height": 360, "bitrate": 800_000},
]
ENCODERS = ("libx264", "libx265", "aac", "libopus", "libvpx")


def frame_digests(path: Path) -> list[str]:
    """A digest of every decoded video frame's pixels, in presentation order."""
    digests = []
    with av.open(str(path)) as container:
        for frame in container.decode(container.streams.video[0]):
            sha = hashlib.sha256()
            for plane in frame.planes:
                sha.update(bytes(plane))
            digests.append(sha.hexdigest())
    return digests


async def ladder_with_mp4s(
    source: Path, tmp_path: Path, requested: list[dict[str, object]] | None
) -> tuple[hls.HlsOutput, probe.VideoSpec]:
    spec = probe.probe(source)
    output = await hls.transcode_hls(
        binary=ffmpeg.ffmpeg_binary(),
        source=source,
        spec=spec,
        profiles=ladder.resolve_profiles(requested, spec),
        out_dir=tmp_path / "hls",
        segment_s=1.0,
        threads=2,
        mp4_dir=tmp_path / "mp4",
    )
    return output, spec


async def test_mp4s_hold_the_hls_renditions_frames(clip: Path, tmp_path: Path) -> None:
    output, spec = await ladder_with_mp4s(clip, tmp_path, PROFILES)
    assert output.mp4_run is not None
    print(
        f"\nencode {output.run.elapsed_s:.2f} s, MP4 remux {output.mp4_run.elapsed_s:.2f} s "
        f"({output.mp4_run.elapsed_s / output.run.elapsed_s:.0%} of the encode)"
    )
    assert output.mp4s == (tmp_path / "mp4" / "360p0.mp4", tmp_path / "mp4" / "240p0.mp4")

    # One encode: the ladder command encodes each rendition once into one HLS output, and the
    # MP4 command names no encoder at all, only stream copies.
    encode = list(output.run.argv)
    assert encode.count("-f") == 1 and encode[encode.index("-f") + 1] == "hls"
    remux = list(output.mp4_run.argv)
    assert not any(name in remux for name in ENCODERS)
    assert remux.count("-c") == len(output.mp4s) and all(
        remux[i + 1] == "copy" for i, arg in enumerate(remux) if arg == "-c"
    )

    for mp4 in output.mp4s:
        name = mp4.stem
        width, height = next((p["width"], p["height"]) for p in PROFILES if p["name"] == name)
        with av.open(str(mp4)) as container:
            assert container.format.name.startswith("mov,mp4")
            video = container.streams.video[0]
            assert (video.codec_context.width, video.codec_context.height) == (width, height)
            assert container.streams.audio, "the MP4 keeps the rendition's audio"
            assert container.duration is not None
            assert abs(container.duration / 1_000_000 - spec.duration_s) < 0.1
        # Same pixels, frame for frame: a second encode could not reproduce them (x264 is lossy).
        mp4_frames = frame_digests(mp4)
        assert len(mp4_frames) == round(spec.duration_s * 30)
        assert mp4_frames == frame_digests(tmp_path / "hls" / name / "index.m3u8")
        # faststart: the index comes before the media data.
        head = mp4.read_bytes()[:4096]
        assert head.find(b"moov") != -1 and (
            head.find(b"mdat") == -1 or head.find(b"moov") < head.find(b"mdat")
        )


async def test_low_bitrate_rendition_gets_no_mp4(tmp_path: Path) -> None:
    from tests import mediagen

    # A source below the default candidates' bitrates: Livepeer's ladder is low-bitrate + 180p0.
    source = mediagen.make_video(tmp_path / "small.mp4", seconds=1, width=320, height=180)
    output, _ = await ladder_with_mp4s(source, tmp_path, None)
    names = {rendition.profile.name for rendition in output.renditions}
    assert names == {"low-bitrate", "180p0"}
    assert [path.name for path in output.mp4s] == ["180p0.mp4"]
    assert sorted(p.name for p in (tmp_path / "mp4").iterdir()) == ["180p0.mp4"]


def test_remux_command_copies_every_stream() -> None:
    argv = hls.build_mp4_remux_command(
        binary="ffmpeg", out_dir=Path("/w/hls"), names=["720p0", "360p0"], mp4_dir=Path("/w/mp4")
    )
    assert argv[:5] == ["ffmpeg", "-i", "/w/hls/720p0/index.m3u8", "-i", "/w/hls/360p0/index.m3u8"]
    assert argv[-1] == "/w/mp4/360p0.mp4" and "/w/mp4/720p0.mp4" in argv
    assert "1:a:0?" in argv  # a source without audio still remuxes
    with pytest.raises(ValueError):
        hls.build_mp4_remux_command(
            binary="ffmpeg", out_dir=Path("/w"), names=[], mp4_dir=Path("/")
        )
