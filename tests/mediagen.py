"""Tiny generated media files for tests, made with the FFmpeg binary from ``imageio-ffmpeg``.

Synchronous on purpose: fixtures call these before any event loop exists.  Every file is a few
seconds of FFmpeg's ``testsrc2`` pattern (or a half-white frame, to check orientation) with an
optional ``sine`` tone, encoded fast and small.
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import imageio_ffmpeg

__all__ = [
    "ffmpeg_exe",
    "make_audio",
    "make_sparse_video",
    "make_text_file",
    "make_truncated_mp4",
    "make_video",
    "zero_container_duration",
]

Pattern = Literal["testsrc2", "left-white"]


def ffmpeg_exe() -> str:
    """The FFmpeg binary bundled with imageio-ffmpeg."""
    return str(imageio_ffmpeg.get_ffmpeg_exe())


def make_video(
    path: Path,
    *,
    seconds: float = 2.0,
    width: int = 640,
    height: int = 360,
    fps: int = 30,
    audio: bool = True,
    codec: str = "libx264",
    extra_args: Sequence[str] = (),
    pattern: Pattern = "testsrc2",
    display_rotation_deg: int | None = None,
) -> Path:
    """Write a small test video to ``path`` (container from its suffix) and return ``path``.

    ``pattern="left-white"`` paints the left half of every coded frame white and the rest black,
    so a test can tell which way up a transcoded frame is.  ``display_rotation_deg`` stores a
    display matrix (counter-clockwise degrees) without touching the pixels, as phones do.
    ``extra_args`` go right before the output path.
    """
    size = f"{width}x{height}"
    if pattern == "testsrc2":
        video = f"testsrc2=size={size}:rate={fps}:duration={seconds}"
    else:
        video = (
            f"color=c=black:size={size}:rate={fps}:duration={seconds},"
            f"drawbox=x=0:y=0:w={width // 2}:h={height}:color=white:t=fill"
        )
    argv = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-nostdin", "-y"]
    argv += ["-f", "lavfi", "-i", video]
    if audio:
        argv += ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds}"]
    argv += ["-c:v", codec, "-pix_fmt", "yuv420p"]
    if codec == "libx264":
        argv += ["-preset", "ultrafast", "-crf", "30"]
    else:
        argv += ["-b:v", "400k"]
    if audio:
        argv += ["-c:a", "aac", "-b:a", "64k", "-shortest"]
    argv += [*extra_args]
    if display_rotation_deg is None:
        subprocess.run([*argv, str(path)], check=True, capture_output=True, timeout=60)
        return path
    with tempfile.TemporaryDirectory() as tmp:
        upright = Path(tmp) / f"upright{path.suffix}"
        subprocess.run([*argv, str(upright)], check=True, capture_output=True, timeout=60)
        # -display_rotation is an input option: it sets the matrix that "-c copy" keeps.
        rotate = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-nostdin", "-y"]
        rotate += ["-display_rotation", str(display_rotation_deg), "-i", str(upright)]
        rotate += ["-c", "copy", str(path)]
        subprocess.run(rotate, check=True, capture_output=True, timeout=60)
    return path


def make_sparse_video(
    path: Path, *, frames: int = 2, gap_s: float = 3600.0, width: int = 1280, height: int = 720
) -> Path:
    """A few frames ``gap_s`` apart in a 30 fps stream: a tiny file that claims hours.

    Crafted files like this one cost an encoder hours of frames for a few kilobytes.
    """
    argv = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-nostdin", "-y"]
    argv += ["-f", "lavfi", "-i", f"testsrc2=size={width}x{height}:rate=30"]
    argv += ["-frames:v", str(frames), "-vf", f"setpts=N*{gap_s:g}/TB", "-fps_mode", "vfr"]
    argv += ["-c:v", "libx264", "-preset", "ultrafast", "-crf", "23", "-pix_fmt", "yuv420p"]
    subprocess.run([*argv, str(path)], check=True, capture_output=True, timeout=60)
    return path


def make_audio(path: Path, *, seconds: float = 1.0) -> Path:
    """Write an audio-only file (a sine tone, AAC; container from the suffix)."""
    argv = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-nostdin", "-y"]
    argv += ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds}"]
    argv += ["-c:a", "aac", "-b:a", "64k", str(path)]
    subprocess.run(argv, check=True, capture_output=True, timeout=60)
    return path


def make_text_file(path: Path, text: str = "this is not a video\n" * 20) -> Path:
    """Write a plain text file (a classic wrong upload) and return ``path``."""
    path.write_text(text, encoding="utf-8")
    return path


def make_truncated_mp4(path: Path) -> Path:
    """Write the first half of a valid MP4 to ``path`` and return it.

    FFmpeg writes the ``moov`` index at the end, so the half that is kept has none.
    """
    with tempfile.TemporaryDirectory() as tmp:
        whole = make_video(Path(tmp) / "whole.mp4", seconds=1.0, width=320, height=180)
        data = whole.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def zero_container_duration(path: Path) -> Path:
    """Zero the movie header (``mvhd``) duration of an MP4 in place, keeping track durations."""
    data = bytearray(path.read_bytes())
    at = data.find(b"mvhd")
    if at < 0:
        raise ValueError(f"{path} has no mvhd box")
    version = data[at + 4]
    # version, flags (4), then creation, modification (4 or 8 each), timescale (4), duration.
    offset = at + 4 + 4 + (16 if version == 1 else 8) + 4
    width = 8 if version == 1 else 4
    data[offset : offset + width] = bytes(width)
    path.write_bytes(bytes(data))
    return path
