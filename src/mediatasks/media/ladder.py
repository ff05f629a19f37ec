"""Transcode profiles and the rendition ladder (reference §5.2).

A :class:`Profile` is one output rendition, in Livepeer's ``transcode-profile`` shape.
:func:`resolve_profiles` turns what a client asked for into the exact list to encode:

* ``None`` (no ``profiles`` key) means :func:`default_ladder`;
* a single profile holding only a ``bitrate`` means one rendition at the source resolution;
* otherwise every profile needs ``width``, ``height`` and ``bitrate``.

Resolved profiles always have a name (used as the rendition's directory), even dimensions
(H.264 in 4:2:0 needs them) and are never larger than the source: mediatasks does not upscale.
All dimensions are *display* dimensions: a phone video stored as 1920x1080 with a 90° rotation is
treated as 1080x1920, and FFmpeg rotates the pixels while decoding.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Final, Literal, TypeVar, cast, get_args

from mediatasks import errors
from mediatasks.media import probe

__all__ = [
    "DEFAULT_QUALITY",
    "MAX_VIDEO_BITRATE_BPS",
    "H264Profile",
    "Profile",
    "default_ladder",
    "resolve_profiles",
    "source_bitrate_bps",
]

_T = TypeVar("_T")

H264Profile = Literal["H264Baseline", "H264Main", "H264High", "H264ConstrainedHigh"]

#: The CRF-like quality Livepeer uses for its default ladder and single-bitrate renditions.
DEFAULT_QUALITY: Final = 27
#: Ceiling for the source-resolution rendition's bitrate.
MAX_VIDEO_BITRATE_BPS: Final = 288_000_000
#: The low-bitrate fallback's floor, unless the source itself is below it.
MIN_VIDEO_BITRATE_BPS: Final = 100_000
#: The low-bitrate fallback's absolute floor.
ABSOLUTE_MIN_VIDEO_BITRATE_BPS: Final = 5_000
#: Rendition names become directory names and FFmpeg ``var_stream_map`` tokens.
NAME_PATTERN: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")

_INVALID: Final = "invalid transcode profile requested"
_ENCODERS: Final = frozenset({"h.264", "h264"})
#: Livepeer's default candidates: (name, height, nominal width, maximum bitrate).
_DEFAULT_CANDIDATES: Final = (("360p0", 360, 640, 1_000_000), ("720p0", 720, 1280, 4_000_000))


@dataclass(frozen=True, kw_only=True)
class Profile:
    """One output rendition: name, frame size, bitrate and optional encoder settings."""

    #: Directory and variant name (``"720p0"``); see :data:`NAME_PATTERN`.
    name: str
    width: int
    height: int
    #: Target video bitrate in bits per second.
    bitrate: int
    #: Frame-rate cap numerator; ``None`` or 0 keeps the source rate.
    fps: int | None = None
    #: Frame-rate denominator (``fps=30000, fps_den=1001`` is 29.97).
    fps_den: int | None = None
    #: CRF-like quality, 0 (best) to 44; when set, :attr:`bitrate` becomes a cap.
    quality: int | None = None
    #: Keyframe interval: seconds as a string (``"2"``, ``"0.5"``) or ``"intra"``.
    gop: str | None = None
    #: H.264 profile.
    profile: H264Profile | None = None
    #: Always H.264 for now (``None`` means H.264).
    encoder: str | None = None

    def __post_init__(self) -> None:
        if not NAME_PATTERN.fullmatch(self.name):
            raise errors.Unretriable(
                f"{_INVALID}: name {self.name!r} must be 1 to 100 letters, digits, '.', '_' or '-'"
            )
        for field in ("width", "height", "bitrate"):
            if getattr(self, field) <= 0:
                raise errors.Unretriable(f"{_INVALID}: {field} must be positive")
        if self.fps is not None and self.fps < 0:
            raise errors.Unretriable(f"{_INVALID}: fps must not be negative")
        if self.fps_den is not None and self.fps_den < 1:
            raise errors.Unretriable(f"{_INVALID}: fpsDen must be at least 1")
        if self.quality is not None and not 0 <= self.quality <= 44:
            raise errors.Unretriable(f"{_INVALID}: quality must be between 0 and 44")
        if self.gop is not None and self.gop != "intra":
            seconds = _parse_float(self.gop)
            if seconds is None or seconds < 0:
                raise errors.Unretriable(f"{_INVALID}: gop must be 'intra' or seconds")
        if self.profile is not None and self.profile not in get_args(H264Profile):
            raise errors.Unretriable(f"{_INVALID}: unknown profile {self.profile!r}")
        if self.encoder is not None and self.encoder.lower() not in _ENCODERS:
            raise errors.Unretriable(f"encoder {self.encoder} is not supported, use H.264")

    @property
    def frame_rate(self) -> Fraction | None:
        """The frame-rate cap, or ``None`` to keep the source's."""
        if not self.fps:
            return None
        return Fraction(self.fps, self.fps_den or 1)

    @property
    def gop_s(self) -> float | None:
        """The keyframe interval in seconds; 0.0 for ``"intra"``, ``None`` for the default."""
        if self.gop is None:
            return None
        if self.gop == "intra":
            return 0.0
        seconds = _parse_float(self.gop)
        return seconds if seconds else None

    @classmethod
    def from_wire(cls, wire: Mapping[str, object]) -> Profile:
        """Build from Livepeer's JSON (camelCase ``fpsDen``); unknown keys are ignored.

        Raises :class:`~mediatasks.errors.Unretriable` when a field is missing or invalid.
        """
        requested = _Requested.parse(wire)
        missing = [
            key for key in ("name", "width", "height", "bitrate") if getattr(requested, key) is None
        ]
        if missing:
            raise errors.Unretriable(f"{_INVALID}: missing {', '.join(missing)}")
        return requested.build()

    def to_wire(self) -> dict[str, object]:
        """Livepeer's JSON shape; unset fields are omitted."""
        wire: dict[str, object | None] = {
            "name": self.name,
            "width": self.width,
            "height": self.height,
            "bitrate": self.bitrate,
            "fps": self.fps,
            "fpsDen": self.fps_den,
            "quality": self.quality,
            "gop": self.gop,
            "profile": self.profile,
            "encoder": self.encoder,
        }
        return {key: value for key, value in wire.items() if value is not None}


def source_bitrate_bps(spec: probe.VideoSpec) -> int:
    """The source's video bitrate: the video track's, else the container's, else size/duration."""
    video = spec.video
    if video is not None and video.bitrate:
        return video.bitrate
    if spec.bitrate > 0:
        return spec.bitrate
    if spec.size_bytes and spec.duration_s > 0:
        return round(spec.size_bytes * 8 / spec.duration_s)
    raise errors.InvalidMedia("the bitrate of the file cannot be determined")


def default_ladder(spec: probe.VideoSpec) -> list[Profile]:
    """Livepeer's default ladder for a source (``GetDefaultPlaybackProfiles``, reference §5.2).

    1. ``360p0`` (≤1 Mbps) and ``720p0`` (≤4 Mbps) are kept when both their height and their
       maximum bitrate are below the source's; the bitrate becomes
       ``min(1.2 * w*h * source bitrate / (source w*h), maximum)`` and the width follows the
       source's aspect ratio (even).
    2. If neither is kept: ``low-bitrate`` at the source size, half the source bitrate, floored
       at 100 kbps (5 kbps when the source itself is below 100 kbps).
    3. Always, last: ``<height>p0`` at the source size (rounded up to even, as Livepeer does) and
       ``min(1.2 * source bitrate, 288 Mbps)``.
    """
    source_w, source_h = spec.display_width, spec.display_height
    source_bps = source_bitrate_bps(spec)
    profiles: list[Profile] = []
    for name, height, _nominal_width, max_bps in _DEFAULT_CANDIDATES:
        if not (height < source_h and max_bps < source_bps):
            continue
        width = _even(height * source_w / source_h)
        scaled_bps = int(1.2 * width * height * source_bps / (source_w * source_h))
        profiles.append(
            Profile(
                name=name,
                width=width,
                height=height,
                bitrate=min(scaled_bps, max_bps),
                quality=DEFAULT_QUALITY,
            )
        )
    even_w, even_h = _even_up(source_w), _even_up(source_h)
    if not profiles:
        low_bps = int(source_bps * 0.5)
        if low_bps < MIN_VIDEO_BITRATE_BPS and source_bps > MIN_VIDEO_BITRATE_BPS:
            low_bps = MIN_VIDEO_BITRATE_BPS
        elif low_bps < ABSOLUTE_MIN_VIDEO_BITRATE_BPS:
            low_bps = ABSOLUTE_MIN_VIDEO_BITRATE_BPS
        profiles.append(
            Profile(
                name="low-bitrate",
                width=even_w,
                height=even_h,
                bitrate=low_bps,
                quality=DEFAULT_QUALITY,
            )
        )
    profiles.append(
        Profile(
            name=f"{even_h}p0",
            width=even_w,
            height=even_h,
            bitrate=min(int(1.2 * source_bps), MAX_VIDEO_BITRATE_BPS),
            quality=DEFAULT_QUALITY,
        )
    )
    return profiles


def resolve_profiles(
    requested: Sequence[Mapping[str, object]] | None, spec: probe.VideoSpec
) -> list[Profile]:
    """The renditions to encode for a request's ``profiles`` (see the module docstring).

    Raises :class:`~mediatasks.errors.Unretriable` for an empty list, a profile without width,
    height or bitrate, an invalid field, or two profiles with the same name.
    """
    if requested is None:
        return default_ladder(spec)
    if len(requested) == 0:
        raise errors.Unretriable("no transcode profiles could be resolved")
    parsed = [_Requested.parse(item) for item in requested]
    if len(parsed) == 1 and parsed[0].width is None and parsed[0].height is None:
        return [_at_source_size(parsed[0], spec)]
    profiles: list[Profile] = []
    for index, item in enumerate(parsed):
        if item.width is None or item.height is None or item.bitrate is None:
            raise errors.Unretriable(_INVALID)
        width, height = _fit_inside(
            item.width, item.height, spec.display_width, spec.display_height
        )
        profiles.append(
            item.build(name=item.name or f"{height}p{index}", width=width, height=height)
        )
    names = [profile.name for profile in profiles]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise errors.Unretriable(f"{_INVALID}: duplicate profile name {duplicates[0]!r}")
    return profiles


def _at_source_size(item: _Requested, spec: probe.VideoSpec) -> Profile:
    """Livepeer's single bitrate-only profile: the source size, quality 27 unless given."""
    if item.bitrate is None:
        raise errors.Unretriable(_INVALID)
    width, height = _even_up(spec.display_width), _even_up(spec.display_height)
    return item.build(
        name=item.name or f"{height}p0",
        width=width,
        height=height,
        quality=DEFAULT_QUALITY if item.quality is None else item.quality,
    )


@dataclass(frozen=True, kw_only=True)
class _Requested:
    """A wire profile whose field types are checked but whose fields may be missing."""

    name: str | None = None
    width: int | None = None
    height: int | None = None
    bitrate: int | None = None
    fps: int | None = None
    fps_den: int | None = None
    quality: int | None = None
    gop: str | None = None
    profile: H264Profile | None = None
    encoder: str | None = None

    @classmethod
    def parse(cls, wire: Mapping[str, object]) -> _Requested:
        if not isinstance(wire, Mapping):
            raise errors.Unretriable(f"{_INVALID}: a profile must be an object")
        profile = _wire_str(wire, "profile")
        if profile is not None and profile not in get_args(H264Profile):
            raise errors.Unretriable(f"{_INVALID}: unknown profile {profile!r}")
        return cls(
            name=_wire_str(wire, "name"),
            # Livepeer treats a 0 frame size as unset (Go zero values).
            width=_wire_int(wire, "width") or None,
            height=_wire_int(wire, "height") or None,
            bitrate=_wire_int(wire, "bitrate"),
            fps=_wire_int(wire, "fps"),
            fps_den=_wire_int(wire, "fpsDen"),
            quality=_wire_int(wire, "quality"),
            gop=_wire_str(wire, "gop") or None,
            profile=cast(H264Profile | None, profile or None),
            encoder=_wire_str(wire, "encoder") or None,
        )

    def build(
        self,
        *,
        name: str | None = None,
        width: int | None = None,
        height: int | None = None,
        quality: int | None = None,
    ) -> Profile:
        """A validated :class:`Profile`; the arguments override the requested values."""
        return Profile(
            name=_required(name if name is not None else self.name, "name"),
            width=_required(width or self.width, "width"),
            height=_required(height or self.height, "height"),
            bitrate=_required(self.bitrate, "bitrate"),
            fps=self.fps,
            fps_den=self.fps_den,
            quality=quality if quality is not None else self.quality,
            gop=self.gop,
            profile=self.profile,
            encoder=self.encoder,
        )


def _wire_int(wire: Mapping[str, object], key: str) -> int | None:
    value = wire.get(key)
    if value is None:
        return None
    number = _as_int(value)
    if number is None:
        raise errors.Unretriable(f"{_INVALID}: {key} must be an integer")
    return number


def _wire_str(wire: Mapping[str, object], key: str) -> str | None:
    value = wire.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise errors.Unretriable(f"{_INVALID}: {key} must be a string")
    return value


def _required(value: _T | None, key: str) -> _T:
    if value is None:
        raise errors.Unretriable(f"{_INVALID}: missing {key}")
    return value


def _fit_inside(width: int, height: int, max_width: int, max_height: int) -> tuple[int, int]:
    """Shrink (never grow) ``width``x``height`` to fit the source, keeping its aspect; even."""
    scale = min(1.0, max_width / width, max_height / height)
    if scale < 1.0:
        return _even_down(width * scale), _even_down(height * scale)
    return _even_down(width), _even_down(height)


def _even(value: float) -> int:
    """The nearest even integer (halves round up), at least 2."""
    return max(2, 2 * math.floor(value / 2 + 0.5))


def _even_up(value: int) -> int:
    """Round up to even, like Livepeer's ``nearestEven``."""
    return value + (value & 1)


def _even_down(value: float) -> int:
    return max(2, 2 * math.floor(value / 2))


def _as_int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _parse_float(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None
