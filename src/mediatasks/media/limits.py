"""What a request may ask an encode to do, and what a source may cost: checked before FFmpeg runs.

Two kinds of limit, each from a setting (``Settings.max_profile*`` and ``max_source*``,
``min_source*``, ``max_output_bytes``):

* :func:`check_profiles`, when a request arrives: how many renditions, how large, how many bits
  and frames per second, how far apart the keyframes.  A refusal is ``errors.InvalidInput``
  (422), naming the profile and the limit.
* :func:`check_source`, once the source is probed and before it is encoded: a file whose
  duration, frame count or segment count is out of proportion to its size (a few kilobytes that
  claim ten hours), that lasts longer than the limit, or whose ladder would write more than the
  output limit.  A refusal is ``errors.Unretriable``: the task fails at once, with a message
  saying what was found and what the limit is, before a minute of encoding is spent on it.

The encode itself keeps its outputs under ``max_output_bytes`` too (``worker.handler``): the
renditions' bitrates are caps (x264's VBV), which bound what :func:`check_source` predicts, and
the work folder is measured while FFmpeg writes, should a rendition overshoot.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction

from mediatasks import errors
from mediatasks import settings as settings_module
from mediatasks.media import hls, ladder, probe

__all__ = [
    "ProfileLimits",
    "SourceLimits",
    "check_profiles",
    "check_source",
    "predicted_output_bytes",
    "profile_limits",
    "source_limits",
]


@dataclass(frozen=True, kw_only=True)
class ProfileLimits:
    """What a request's profiles may ask for."""

    max_count: int
    #: Width and height, each.
    max_size_px: int
    max_bitrate_bps: int
    #: Frame rate, ``fps / fpsDen``.
    max_fps: float
    #: Keyframe interval, seconds.
    max_gop_s: float


@dataclass(frozen=True, kw_only=True)
class SourceLimits:
    """What a source may cost."""

    max_duration_s: float
    #: Bits of file per second of media, at least.
    min_bitrate_bps: float
    #: Bytes of file per frame the ladder would encode, at least.
    min_bytes_per_frame: float
    #: Segments per rendition, at most.
    max_segments: int
    #: Bytes the ladder may write (all renditions, their MP4s), at most.
    max_output_bytes: int


def profile_limits(settings: settings_module.Settings) -> ProfileLimits:
    """The profile limits that ``settings`` set."""
    return ProfileLimits(
        max_count=settings.max_profiles,
        max_size_px=settings.max_profile_size_px,
        max_bitrate_bps=settings.max_profile_bitrate_bps,
        max_fps=settings.max_profile_fps,
        max_gop_s=settings.max_profile_gop_s,
    )


def source_limits(settings: settings_module.Settings) -> SourceLimits:
    """The source limits that ``settings`` set."""
    return SourceLimits(
        max_duration_s=settings.max_source_duration_s,
        min_bitrate_bps=settings.min_source_bitrate_bps,
        min_bytes_per_frame=settings.min_source_bytes_per_frame,
        max_segments=settings.max_segments,
        max_output_bytes=settings.max_output_bytes,
    )


def check_profiles(requested: Sequence[Mapping[str, object]] | None, limits: ProfileLimits) -> None:
    """Refuse profiles beyond ``limits`` with ``errors.InvalidInput`` saying which and why.

    Only the ranges are checked here; types and required fields are the request schema's and
    :func:`mediatasks.media.ladder.resolve_profiles`' job.
    """
    if requested is None:
        return
    if len(requested) > limits.max_count:
        raise errors.InvalidInput(
            f"too many transcode profiles: {len(requested)}, at most {limits.max_count}"
        )
    for index, wire in enumerate(requested):
        if isinstance(wire, Mapping):
            _check_profile(f"profiles[{index}]", wire, limits)


def predicted_output_bytes(
    profiles: Sequence[ladder.Profile], duration_s: float, *, with_audio: bool, mp4: bool
) -> int:
    """The most the ladder writes: each rendition at its bitrate cap, twice with its MP4."""
    audio_bps = hls.AUDIO_BITRATE_BPS if with_audio else 0
    bits = sum(profile.bitrate + audio_bps for profile in profiles) * duration_s
    return math.ceil(bits / 8 * (2 if mp4 else 1))


def check_source(
    spec: probe.VideoSpec,
    *,
    duration_s: float,
    profiles: Sequence[ladder.Profile],
    segment_s: float,
    mp4: bool,
    limits: SourceLimits,
) -> None:
    """Refuse, with ``errors.Unretriable``, a source that would cost out of proportion.

    ``duration_s`` is what the ladder encodes (a clip's length for a clip); the file's size and
    the proportions are the whole source's.
    """
    if duration_s > limits.max_duration_s:
        raise errors.Unretriable(
            f"the video lasts {_clock(duration_s)}, longer than the limit of "
            f"{_clock(limits.max_duration_s)}"
        )
    size_bytes = spec.size_bytes or 0
    if spec.duration_s > 0 and size_bytes * 8 / spec.duration_s < limits.min_bitrate_bps:
        raise errors.Unretriable(
            f"the file holds {_bytes(size_bytes)} for {_clock(spec.duration_s)} of video "
            f"({size_bytes * 8 / spec.duration_s:.3g} bits per second, at least "
            f"{limits.min_bitrate_bps:g} are needed): its timestamps say far more time than "
            "its data can fill, so it is damaged or crafted"
        )
    source_fps = spec.video.fps if spec.video is not None else None
    fps = max(float(hls.output_frame_rate(p, source_fps) or source_fps or 0) for p in profiles)
    frames = spec.duration_s * fps
    if frames > 0 and size_bytes / frames < limits.min_bytes_per_frame:
        raise errors.Unretriable(
            f"the file holds {_bytes(size_bytes)} for {frames:,.0f} frames of video "
            f"({fps:.6g} fps for {_clock(spec.duration_s)}; at least "
            f"{limits.min_bytes_per_frame:g} bytes a frame are needed), so it is damaged or "
            "crafted"
        )
    segments = math.ceil(duration_s / segment_s) if segment_s > 0 else 0
    if segments > limits.max_segments:
        raise errors.Unretriable(
            f"{_clock(duration_s)} in {segment_s:g} s segments makes {segments:,} segments per "
            f"rendition, more than the limit of {limits.max_segments:,}: ask for longer segments "
            "(targetSegmentSizeSecs)"
        )
    predicted = predicted_output_bytes(
        profiles, duration_s, with_audio=spec.audio is not None, mp4=mp4
    )
    if predicted > limits.max_output_bytes:
        raise errors.Unretriable(
            f"the renditions of {_clock(duration_s)} of video could take up to "
            f"{_bytes(predicted)}, more than the limit of {_bytes(limits.max_output_bytes)}: "
            "ask for fewer or smaller renditions, or lower bitrates"
        )


def _check_profile(where: str, wire: Mapping[str, object], limits: ProfileLimits) -> None:
    for key in ("width", "height"):
        size = _as_int(wire.get(key))
        if size is not None and size > limits.max_size_px:
            raise errors.InvalidInput(f"{where}.{key} is {size}: at most {limits.max_size_px}")
    bitrate = _as_int(wire.get("bitrate"))
    if bitrate is not None and bitrate > limits.max_bitrate_bps:
        raise errors.InvalidInput(
            f"{where}.bitrate is {bitrate}: at most {limits.max_bitrate_bps} bits per second"
        )
    fps, fps_den = _as_int(wire.get("fps")), _as_int(wire.get("fpsDen")) or 1
    if fps and fps_den > 0:
        rate = Fraction(fps, fps_den)
        if not 1 <= rate <= limits.max_fps:
            raise errors.InvalidInput(
                f"{where}: {fps}/{fps_den} = {float(rate):.6g} frames per second is out of range: "
                f"give 1 to {limits.max_fps:g} (fps / fpsDen), or fps 0 for the source's rate"
            )
    gop = wire.get("gop")
    if isinstance(gop, str) and gop and gop != "intra":
        try:
            seconds = float(gop)
        except ValueError:
            seconds = math.nan
        if not 0 <= seconds <= limits.max_gop_s:  # also refuses nan and inf
            raise errors.InvalidInput(
                f"{where}.gop is {gop[:40]!r}: give 'intra' or 0 to {limits.max_gop_s:g} seconds"
            )


def _as_int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _clock(seconds: float) -> str:
    """``10:00:00`` (or ``0:00:02.5`` under a minute, where tenths matter)."""
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if whole < 60:
        return f"0:00:{seconds:04.1f}"
    return f"{hours}:{minutes:02d}:{secs:02d}"


def _bytes(count: float) -> str:
    for unit, size in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if count >= size:
            return f"{count / size:.1f} {unit}"
    return f"{count:.0f} bytes"
