"""probe() against generated files, good and bad."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from mediatasks import errors
from mediatasks.media import ffmpeg, probe
from tests import mediagen

pytestmark = pytest.mark.slow


def test_a_generated_clip(clip: Path) -> None:
    spec = probe.probe(clip)

    assert spec.format == "mp4"
    assert spec.duration_s == pytest.approx(2.0, abs=0.05)
    assert spec.size_bytes == clip.stat().st_size
    assert spec.bitrate > 0
    video, audio = spec.video, spec.audio
    assert video is not None and audio is not None
    assert (video.codec, video.width, video.height) == ("h264", 640, 360)
    assert (video.pixel_format, video.fps, video.bit_depth) == ("yuv420p", 30.0, 8)
    assert video.rotation_deg == 0
    assert (spec.display_width, spec.display_height) == (640, 360)
    assert video.bitrate is not None and video.bitrate > 0
    assert (audio.codec, audio.sample_rate, audio.channels) == ("aac", 48_000, 1)

    wire = spec.to_wire()
    assert set(wire) == {"format", "duration", "bitrate", "tracks"}
    tracks = wire["tracks"]
    assert isinstance(tracks, list)
    assert tracks[0]["type"] == "video"
    assert tracks[0]["pixelFormat"] == "yuv420p"
    assert tracks[1] == {
        "type": "audio",
        "codec": "aac",
        "bitrate": audio.bitrate,
        "duration": audio.duration_s,
        "channels": 1,
        "sampleRate": 48_000,
    }


def test_a_rotated_clip_reports_display_dimensions(rotated_clip: Path) -> None:
    spec = probe.probe(rotated_clip)
    assert spec.video is not None
    assert (spec.video.width, spec.video.height, spec.video.rotation_deg) == (640, 360, 90)
    assert (spec.display_width, spec.display_height) == (360, 640)
    assert spec.audio is None


def test_mp4_without_a_container_duration_uses_the_tracks(tmp_path: Path) -> None:
    clip = mediagen.make_video(tmp_path / "clip.mp4", seconds=1.0, width=320, height=180)
    mediagen.zero_container_duration(clip)
    assert probe.probe(clip).duration_s == pytest.approx(1.0, abs=0.05)


def test_a_stream_without_any_duration_is_scanned(tmp_path: Path, clip: Path) -> None:
    # Matroska written to a pipe cannot seek back to store its duration.
    piped = tmp_path / "piped.mkv"
    with piped.open("wb") as out:
        subprocess.run(
            [
                mediagen.ffmpeg_exe(),
                "-v",
                "error",
                "-i",
                str(clip),
                "-c",
                "copy",
                "-f",
                "matroska",
                "-",
            ],
            stdout=out,
            check=True,
            timeout=30,
        )
    spec = probe.probe(piped)
    assert spec.format == "matroska"
    assert spec.duration_s == pytest.approx(2.0, abs=0.05)
    assert spec.bitrate > 0


def test_a_text_file_is_invalid_media(tmp_path: Path) -> None:
    text = mediagen.make_text_file(tmp_path / "video.mp4")
    with pytest.raises(errors.InvalidMedia) as caught:
        probe.probe(text)
    assert caught.value.message == ffmpeg.MESSAGE_BAD_INPUT
    assert caught.value.detail is not None


def test_an_empty_file_is_invalid_media(tmp_path: Path) -> None:
    empty = tmp_path / "empty.mp4"
    empty.touch()
    with pytest.raises(errors.InvalidMedia, match="the file is empty"):
        probe.probe(empty)


def test_a_truncated_mp4_is_invalid_media(tmp_path: Path) -> None:
    truncated = mediagen.make_truncated_mp4(tmp_path / "half.mp4")
    with pytest.raises(errors.InvalidMedia, match="failed to probe or open file"):
        probe.probe(truncated)


def test_an_audio_file_has_no_video_track(tmp_path: Path) -> None:
    audio = mediagen.make_audio(tmp_path / "tone.m4a")
    with pytest.raises(errors.InvalidMedia, match="the file has no video track"):
        probe.probe(audio)


def test_a_missing_file_is_not_the_clients_fault(tmp_path: Path) -> None:
    with pytest.raises(errors.TaskFailure) as caught:
        probe.probe(tmp_path / "nope.mp4")
    assert not isinstance(caught.value, errors.Unretriable)
