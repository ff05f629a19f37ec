"""A sample video made on the spot, for trying the service on a machine without internet.

FFmpeg's own test sources draw it (``testsrc2``: a moving test card with a clock, and a 440 Hz
tone): nothing is downloaded, and the file plays anywhere (H.264 and AAC in MP4).
"""

from __future__ import annotations

from pathlib import Path

from mediatasks.media import ffmpeg

__all__ = ["make_sample"]


async def make_sample(
    path: Path,
    *,
    seconds: float = 10.0,
    width: int = 1280,
    height: int = 720,
    ffmpeg_path: str = "",
) -> Path:
    """Write the sample video to ``path`` and return it."""
    video = f"testsrc2=size={width}x{height}:rate=30:duration={seconds:g}"
    tone = f"sine=frequency=440:sample_rate=48000:duration={seconds:g}"
    argv = [
        ffmpeg.ffmpeg_binary(ffmpeg_path),
        "-y",
        "-f",
        "lavfi",
        "-i",
        video,
        "-f",
        "lavfi",
        "-i",
        tone,
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
        "-b:a",
        "96k",
        "-shortest",
        "-movflags",
        "+faststart",
        str(path),
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    await ffmpeg.run_ffmpeg(argv, duration_s=seconds)
    return path
