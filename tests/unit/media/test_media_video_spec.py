"""VideoSpec and Track: display dimensions and Livepeer's videoSpec JSON, without files."""

from __future__ import annotations

import dataclasses

import pytest

from mediatasks import errors
from mediatasks.media import probe

VIDEO = probe.Track(
    type="video",
    codec="h264",
    bitrate=1_000_000,
    duration_s=12.5,
    width=1920,
    height=1080,
    pixel_format="yuv420p",
    fps=29.97,
    bit_depth=8,
)
AUDIO = probe.Track(type="audio", codec="aac", bitrate=128_000, channels=2, sample_rate=48_000)


def test_first_track_of_each_type() -> None:
    second_video = dataclasses.replace(VIDEO, width=640, height=360)
    spec = probe.VideoSpec(
        format="mp4", duration_s=12.5, bitrate=1, tracks=(AUDIO, VIDEO, second_video)
    )
    assert spec.video is VIDEO
    assert spec.audio is AUDIO


@pytest.mark.parametrize(
    ("rotation_deg", "size"),
    [(0, (1920, 1080)), (90, (1080, 1920)), (180, (1920, 1080)), (270, (1080, 1920))],
)
def test_display_dimensions_follow_rotation(rotation_deg: int, size: tuple[int, int]) -> None:
    video = dataclasses.replace(VIDEO, rotation_deg=rotation_deg)
    spec = probe.VideoSpec(format="mp4", duration_s=1.0, bitrate=1, tracks=(video,))
    assert (spec.display_width, spec.display_height) == size
    assert (video.display_width, video.display_height) == size


def test_display_dimensions_need_a_video_track() -> None:
    spec = probe.VideoSpec(format="mp4", duration_s=1.0, bitrate=1, tracks=(AUDIO,))
    with pytest.raises(errors.InvalidMedia, match="no video track"):
        _ = spec.display_width


def test_wire_shape_omits_unknown_values() -> None:
    spec = probe.VideoSpec(
        format="mp4", duration_s=12.5, bitrate=1_200_000, size_bytes=99, tracks=(VIDEO, AUDIO)
    )
    assert spec.to_wire() == {
        "format": "mp4",
        "duration": 12.5,
        "bitrate": 1_200_000,
        "tracks": [
            {
                "type": "video",
                "codec": "h264",
                "bitrate": 1_000_000,
                "duration": 12.5,
                "width": 1920,
                "height": 1080,
                "pixelFormat": "yuv420p",
                "fps": 29.97,
                "bitDepth": 8,
            },
            {
                "type": "audio",
                "codec": "aac",
                "bitrate": 128_000,
                "channels": 2,
                "sampleRate": 48_000,
            },
        ],
    }
