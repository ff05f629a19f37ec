"""Probe a media file into a :class:`VideoSpec`, Livepeer's ``videoSpec``.

:func:`probe` uses PyAV (libavformat in-process): the FFmpeg wheel we depend on ships no
``ffprobe``.  It is synchronous and may read the whole file in the worst case, so callers run it in
a thread (``await asyncio.to_thread(probe.probe, path)``).

Besides reading the headers, :func:`probe` decodes the first video frame.  That proves the video
track can be decoded, and it is the portable way to read the display matrix (the rotation phone
cameras store instead of rotating pixels): PyAV exposes it on frames, not on streams.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Final, Literal

import av
import av.container
import av.stream

from mediatasks import errors
from mediatasks.media import ffmpeg

__all__ = ["Track", "TrackType", "VideoSpec", "probe"]

TrackType = Literal["video", "audio"]

#: Demuxers that read still images or text, not videos.
_NOT_VIDEO_FORMATS: Final = frozenset({"image2", "tty", "apng", "webp_pipe"})
#: How many video packets :func:`probe` feeds the decoder before giving up on a first frame.
_MAX_PACKETS_FOR_FIRST_FRAME: Final = 300
#: libavformat's time unit for container durations.
_AV_TIME_BASE: Final = 1_000_000


@dataclass(frozen=True, kw_only=True)
class Track:
    """One audio or video track of a probed file."""

    #: ``"video"`` or ``"audio"``.
    type: TrackType
    #: The decoder's short name (``"h264"``, ``"aac"``).
    codec: str
    bitrate: int | None = None
    duration_s: float | None = None
    #: Coded frame size, before rotation (video only).
    width: int | None = None
    height: int | None = None
    pixel_format: str | None = None
    fps: float | None = None
    channels: int | None = None
    sample_rate: int | None = None
    #: Bits per component (video) or per coded sample (PCM-like audio).
    bit_depth: int | None = None
    #: Counter-clockwise display rotation in degrees (0, 90, 180 or 270).
    rotation_deg: int = 0

    @property
    def display_width(self) -> int | None:
        """Width as displayed, after applying :attr:`rotation_deg`."""
        return self.height if self.rotation_deg % 180 == 90 else self.width

    @property
    def display_height(self) -> int | None:
        """Height as displayed, after applying :attr:`rotation_deg`."""
        return self.width if self.rotation_deg % 180 == 90 else self.height

    def to_wire(self) -> dict[str, object]:
        """Livepeer's ``videoSpec.tracks[]`` item; keys whose value is unknown are omitted."""
        wire: dict[str, object | None] = {
            "type": self.type,
            "codec": self.codec,
            "bitrate": self.bitrate,
            "duration": self.duration_s,
            "width": self.width,
            "height": self.height,
            "pixelFormat": self.pixel_format,
            "fps": self.fps,
            "channels": self.channels,
            "sampleRate": self.sample_rate,
            "bitDepth": self.bit_depth,
        }
        return {key: value for key, value in wire.items() if value is not None}


@dataclass(frozen=True, kw_only=True)
class VideoSpec:
    """What a probe learned about a file: container, duration, bitrate and tracks."""

    #: Container short name (``"mp4"``, ``"mov"``, ``"matroska"``, ``"mpegts"``).
    format: str
    duration_s: float
    #: Overall bitrate in bits per second (estimated from size and duration when not stored).
    bitrate: int
    size_bytes: int | None = None
    tracks: tuple[Track, ...] = ()

    @property
    def video(self) -> Track | None:
        """The first video track, if any."""
        return next((track for track in self.tracks if track.type == "video"), None)

    @property
    def audio(self) -> Track | None:
        """The first audio track, if any."""
        return next((track for track in self.tracks if track.type == "audio"), None)

    @property
    def display_width(self) -> int:
        """The first video track's displayed width (rotation applied)."""
        return _require(self._video_or_fail().display_width, "width")

    @property
    def display_height(self) -> int:
        """The first video track's displayed height (rotation applied)."""
        return _require(self._video_or_fail().display_height, "height")

    def to_wire(self) -> dict[str, object]:
        """Livepeer's ``videoSpec`` JSON object."""
        return {
            "format": self.format,
            "duration": self.duration_s,
            "bitrate": self.bitrate,
            "tracks": [track.to_wire() for track in self.tracks],
        }

    def _video_or_fail(self) -> Track:
        video = self.video
        if video is None:
            raise errors.InvalidMedia("the file has no video track")
        return video


def probe(path: Path) -> VideoSpec:
    """Read ``path``'s container, tracks, duration and rotation.

    Raises
    ------
    errors.InvalidMedia
        The file is empty, is not a media file PyAV can open, has no video track, its video
        cannot be decoded, or its duration cannot be determined.
    errors.TaskFailure
        The file cannot be read at all (missing, permissions): not the client's fault.
    """
    try:
        size_bytes = path.stat().st_size
    except OSError as exc:
        raise errors.TaskFailure(
            ffmpeg.MESSAGE_INTERNAL, detail=f"cannot read {path}: {exc}"
        ) from exc
    if size_bytes == 0:
        raise errors.InvalidMedia("the file is empty")
    try:
        with av.open(str(path), mode="r", metadata_errors="replace") as container:
            return _read_spec(path, container, size_bytes)
    except av.FFmpegError as exc:
        raise errors.InvalidMedia(ffmpeg.MESSAGE_BAD_INPUT, detail=str(exc)) from exc


def _read_spec(path: Path, container: av.container.InputContainer, size_bytes: int) -> VideoSpec:
    format_name = _format_name(container)
    if format_name in _NOT_VIDEO_FORMATS or format_name.endswith("_pipe"):
        raise errors.InvalidMedia(
            ffmpeg.MESSAGE_BAD_CODEC, detail=f"{format_name!r} is not a video container"
        )
    video_streams = [
        stream
        for stream in container.streams.video
        if not stream.disposition & av.stream.Disposition.attached_pic  # cover art
    ]
    if not video_streams:
        raise errors.InvalidMedia("the file has no video track")
    first_video = video_streams[0]
    rotation_deg = _first_frame_rotation(container, first_video)
    tracks: list[Track] = []
    for stream in container.streams:  # file order, like ffprobe
        if isinstance(stream, av.VideoStream) and stream in video_streams:
            tracks.append(_video_track(stream, rotation_deg if stream is first_video else 0))
        elif isinstance(stream, av.AudioStream):
            tracks.append(_audio_track(stream))
    duration_s = _duration_s(path, container, tracks)
    bitrate = container.bit_rate or round(size_bytes * 8 / duration_s)
    return VideoSpec(
        format=format_name,
        duration_s=duration_s,
        bitrate=bitrate,
        size_bytes=size_bytes,
        tracks=tuple(tracks),
    )


def _video_track(stream: av.VideoStream, rotation_deg: int) -> Track:
    context = stream.codec_context
    rate = stream.average_rate or stream.guessed_rate
    pixel_format = context.format
    bits = [component.bits for component in pixel_format.components] if pixel_format else []
    return Track(
        type="video",
        codec=context.name,
        bitrate=_positive(stream.bit_rate or context.bit_rate),
        duration_s=_stream_duration_s(stream),
        width=_positive(context.width),
        height=_positive(context.height),
        pixel_format=pixel_format.name if pixel_format else None,
        fps=round(float(rate), 3) if rate else None,
        bit_depth=max(bits) if bits else None,
        rotation_deg=rotation_deg,
    )


def _audio_track(stream: av.AudioStream) -> Track:
    context = stream.codec_context
    sample_format = context.format
    # Decoded float samples say nothing about the source's depth (AAC, Opus): leave it unknown.
    is_integer = sample_format is not None and not sample_format.name.startswith(("flt", "dbl"))
    return Track(
        type="audio",
        codec=context.name,
        bitrate=_positive(stream.bit_rate or context.bit_rate),
        duration_s=_stream_duration_s(stream),
        channels=_positive(context.channels),
        sample_rate=_positive(context.sample_rate),
        bit_depth=sample_format.bits if is_integer and sample_format else None,
    )


def _first_frame_rotation(container: av.container.InputContainer, stream: av.VideoStream) -> int:
    """Decode the first frame of ``stream``; return its display rotation (0, 90, 180, 270)."""
    last_error: av.FFmpegError | None = None
    for count, packet in enumerate(container.demux(stream)):
        if count >= _MAX_PACKETS_FOR_FIRST_FRAME:
            break
        try:
            frames = packet.decode()
        except av.FFmpegError as exc:  # a damaged packet: the next keyframe may still decode
            last_error = exc
            continue
        for frame in frames:
            return int(frame.rotation) % 360
    detail = str(last_error) if last_error else "no frame could be decoded"
    raise errors.InvalidMedia("the video track could not be decoded", detail=detail)


def _duration_s(path: Path, container: av.container.InputContainer, tracks: list[Track]) -> float:
    """The container's duration, else the longest track's, else a scan of the packets."""
    if container.duration and container.duration > 0:
        return container.duration / _AV_TIME_BASE
    track_durations = [track.duration_s for track in tracks if track.duration_s]
    if track_durations:
        return max(track_durations)
    video = next(track for track in tracks if track.type == "video")
    scanned_s = _scan_duration_s(path, video.fps)
    if scanned_s > 0:
        return scanned_s
    raise errors.InvalidMedia(
        ffmpeg.MESSAGE_BAD_INPUT, detail="the duration of the file cannot be determined"
    )


def _scan_duration_s(path: Path, fps: float | None) -> float:
    """Demux the first video track without decoding; return its end time in seconds.

    Elementary streams (a raw ``.h264``) carry no timestamps: their packets are counted instead.
    A fresh container is opened because such inputs cannot seek back to the start.
    """
    end_s = 0.0
    packets = 0
    with av.open(str(path), mode="r", metadata_errors="replace") as container:
        for packet in container.demux(container.streams.video[0]):
            if packet.size == 0:  # the flush packet demux() yields at the end
                continue
            packets += 1
            if packet.pts is not None and packet.time_base is not None:
                end = (packet.pts + (packet.duration or 0)) * packet.time_base
                end_s = max(end_s, float(end))
    if end_s == 0.0 and fps:
        end_s = packets / fps
    return end_s


def _stream_duration_s(stream: av.stream.Stream) -> float | None:
    if stream.duration is None or stream.time_base is None or stream.duration <= 0:
        return None
    return float(stream.duration * Fraction(stream.time_base))


def _format_name(container: av.container.InputContainer) -> str:
    """Livepeer-style container name: ``mp4`` rather than ``mov,mp4,m4a,3gp,3g2,mj2``."""
    names = container.format.name.split(",")
    if "mp4" in names:
        brand = container.metadata.get("major_brand", "").strip().lower()
        return "mov" if brand == "qt" else "mp4"
    return names[0]


def _positive(value: int | None) -> int | None:
    return value if value is not None and value > 0 else None


def _require(value: int | None, what: str) -> int:
    if not value:
        raise errors.InvalidMedia(f"the video track has no {what}")
    return value
