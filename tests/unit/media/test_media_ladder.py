"""Profiles and the rendition ladder: reference §5.2, without FFmpeg."""

from __future__ import annotations

import dataclasses

import pytest

from mediatasks import errors
from mediatasks.media import ladder, probe


def spec_of(
    width: int,
    height: int,
    bitrate: int | None,
    *,
    rotation_deg: int = 0,
    container_bitrate: int = 0,
    size_bytes: int | None = None,
    duration_s: float = 10.0,
) -> probe.VideoSpec:
    video = probe.Track(
        type="video",
        codec="h264",
        width=width,
        height=height,
        bitrate=bitrate,
        fps=30.0,
        rotation_deg=rotation_deg,
    )
    return probe.VideoSpec(
        format="mp4",
        duration_s=duration_s,
        bitrate=container_bitrate,
        size_bytes=size_bytes,
        tracks=(video,),
    )


def summary(profiles: list[ladder.Profile]) -> list[tuple[str, int, int, int]]:
    return [(p.name, p.width, p.height, p.bitrate) for p in profiles]


class TestDefaultLadder:
    def test_1080p_source_gets_both_candidates_and_the_source_rendition(self) -> None:
        profiles = ladder.default_ladder(spec_of(1920, 1080, 5_000_000))
        assert summary(profiles) == [
            # min(1.2 * 640*360 * 5M / (1920*1080), 1M) = 666_666
            ("360p0", 640, 360, 666_666),
            # min(1.2 * 1280*720 * 5M / (1920*1080), 4M) = 2_666_666
            ("720p0", 1280, 720, 2_666_666),
            ("1080p0", 1920, 1080, 6_000_000),
        ]
        assert all(p.quality == ladder.DEFAULT_QUALITY for p in profiles)

    def test_candidate_bitrate_is_capped_at_its_maximum(self) -> None:
        profiles = ladder.default_ladder(spec_of(1920, 1080, 40_000_000))
        assert summary(profiles)[:2] == [
            ("360p0", 640, 360, 1_000_000),
            ("720p0", 1280, 720, 4_000_000),
        ]

    def test_720p_source_keeps_only_360p0(self) -> None:
        # 720p0 needs a height *below* the source's.
        profiles = ladder.default_ladder(spec_of(1280, 720, 3_000_000))
        assert summary(profiles) == [
            ("360p0", 640, 360, 900_000),
            ("720p0", 1280, 720, 3_600_000),
        ]

    def test_candidate_needs_a_lower_bitrate_than_the_source(self) -> None:
        # 360 < 480 but 1 Mbps is not below 900 kbps: neither candidate; low-bitrate instead.
        profiles = ladder.default_ladder(spec_of(854, 480, 900_000))
        assert summary(profiles) == [
            ("low-bitrate", 854, 480, 450_000),
            ("480p0", 854, 480, 1_080_000),
        ]

    def test_720p_candidate_needs_more_than_4_mbps(self) -> None:
        profiles = ladder.default_ladder(spec_of(1920, 1080, 4_000_000))
        assert [p.name for p in profiles] == ["360p0", "1080p0"]

    def test_low_bitrate_fallback_is_floored_at_100_kbps(self) -> None:
        profiles = ladder.default_ladder(spec_of(320, 240, 150_000))
        assert summary(profiles) == [
            ("low-bitrate", 320, 240, 100_000),
            ("240p0", 320, 240, 180_000),
        ]

    def test_low_bitrate_fallback_below_100_kbps_source_is_half(self) -> None:
        profiles = ladder.default_ladder(spec_of(320, 240, 60_000))
        assert summary(profiles)[0] == ("low-bitrate", 320, 240, 30_000)

    def test_low_bitrate_fallback_absolute_floor_is_5_kbps(self) -> None:
        profiles = ladder.default_ladder(spec_of(320, 240, 6_000))
        assert summary(profiles)[0] == ("low-bitrate", 320, 240, 5_000)

    def test_odd_source_sizes_are_rounded_up_to_even_like_livepeer(self) -> None:
        profiles = ladder.default_ladder(spec_of(641, 361, 50_000))
        assert summary(profiles) == [
            ("low-bitrate", 642, 362, 25_000),
            ("362p0", 642, 362, 60_000),
        ]

    def test_source_rendition_bitrate_is_capped_at_288_mbps(self) -> None:
        profiles = ladder.default_ladder(spec_of(3840, 2160, 400_000_000))
        assert profiles[-1].name == "2160p0"
        assert profiles[-1].bitrate == ladder.MAX_VIDEO_BITRATE_BPS

    def test_candidate_width_follows_the_source_aspect_ratio(self) -> None:
        profiles = ladder.default_ladder(spec_of(1440, 1080, 6_000_000))  # 4:3
        assert [(p.name, p.width, p.height) for p in profiles] == [
            ("360p0", 480, 360),
            ("720p0", 960, 720),
            ("1080p0", 1440, 1080),
        ]
        # The bitrate scales with the actual pixels: 1.2 * 480*360 * 6M / (1440*1080).
        assert profiles[0].bitrate == 800_000
        assert profiles[1].bitrate == 3_200_000

    def test_rotated_source_uses_display_dimensions(self) -> None:
        # Stored 1920x1080 with a 90° display matrix: a 1080x1920 portrait video.
        profiles = ladder.default_ladder(spec_of(1920, 1080, 5_000_000, rotation_deg=90))
        assert [(p.name, p.width, p.height) for p in profiles] == [
            ("360p0", 202, 360),
            ("720p0", 406, 720),
            ("1920p0", 1080, 1920),
        ]

    def test_unknown_track_bitrate_uses_the_container_bitrate(self) -> None:
        profiles = ladder.default_ladder(spec_of(1280, 720, None, container_bitrate=2_000_000))
        assert profiles[-1].bitrate == 2_400_000

    def test_unknown_bitrate_is_estimated_from_size_and_duration(self) -> None:
        spec = spec_of(1280, 720, None, size_bytes=2_500_000, duration_s=10.0)
        assert ladder.source_bitrate_bps(spec) == 2_000_000
        assert ladder.default_ladder(spec)[-1].bitrate == 2_400_000

    def test_a_spec_without_video_is_invalid_media(self) -> None:
        spec = probe.VideoSpec(format="mp4", duration_s=1.0, bitrate=1000)
        with pytest.raises(errors.InvalidMedia, match="no video track"):
            ladder.default_ladder(spec)


class TestResolveProfiles:
    SOURCE = spec_of(1280, 720, 3_000_000)

    def test_none_means_the_default_ladder(self) -> None:
        assert ladder.resolve_profiles(None, self.SOURCE) == ladder.default_ladder(self.SOURCE)

    def test_empty_list_cannot_be_resolved(self) -> None:
        with pytest.raises(errors.Unretriable, match="no transcode profiles"):
            ladder.resolve_profiles([], self.SOURCE)

    def test_single_bitrate_only_profile_is_the_source_size(self) -> None:
        [profile] = ladder.resolve_profiles([{"bitrate": 500_000}], self.SOURCE)
        assert (profile.name, profile.width, profile.height, profile.bitrate) == (
            "720p0",
            1280,
            720,
            500_000,
        )
        assert profile.quality == ladder.DEFAULT_QUALITY

    def test_single_bitrate_only_profile_keeps_its_name_and_quality(self) -> None:
        [profile] = ladder.resolve_profiles(
            [{"name": "hq", "bitrate": 500_000, "quality": 20}], self.SOURCE
        )
        assert (profile.name, profile.quality) == ("hq", 20)

    def test_zero_width_and_height_count_as_missing(self) -> None:
        [profile] = ladder.resolve_profiles(
            [{"bitrate": 500_000, "width": 0, "height": 0}], self.SOURCE
        )
        assert (profile.width, profile.height) == (1280, 720)

    def test_explicit_profiles_are_kept_in_order(self) -> None:
        profiles = ladder.resolve_profiles(
            [
                {"name": "small", "width": 426, "height": 240, "bitrate": 300_000},
                {"name": "medium", "width": 640, "height": 360, "bitrate": 800_000, "fps": 24},
            ],
            self.SOURCE,
        )
        assert summary(profiles) == [
            ("small", 426, 240, 300_000),
            ("medium", 640, 360, 800_000),
        ]
        assert profiles[1].fps == 24

    @pytest.mark.parametrize(
        "wire",
        [
            {"width": 640, "height": 360},
            {"width": 640, "bitrate": 1_000_000},
            {"height": 360, "bitrate": 1_000_000},
        ],
    )
    def test_each_profile_needs_width_height_and_bitrate(self, wire: dict[str, object]) -> None:
        requested: list[dict[str, object]] = [
            wire,
            {"width": 426, "height": 240, "bitrate": 300_000},
        ]
        with pytest.raises(errors.Unretriable, match="invalid transcode profile requested"):
            ladder.resolve_profiles(requested, self.SOURCE)

    def test_single_profile_with_only_a_width_is_invalid(self) -> None:
        with pytest.raises(errors.Unretriable, match="invalid transcode profile requested"):
            ladder.resolve_profiles([{"width": 640, "bitrate": 1_000_000}], self.SOURCE)

    def test_single_profile_without_bitrate_is_invalid(self) -> None:
        with pytest.raises(errors.Unretriable, match="invalid transcode profile requested"):
            ladder.resolve_profiles([{"name": "x"}], self.SOURCE)

    def test_missing_names_are_derived_from_height_and_index(self) -> None:
        profiles = ladder.resolve_profiles(
            [
                {"width": 640, "height": 360, "bitrate": 800_000},
                {"width": 426, "height": 240, "bitrate": 300_000},
            ],
            self.SOURCE,
        )
        assert [p.name for p in profiles] == ["360p0", "240p1"]

    def test_duplicate_names_are_refused(self) -> None:
        with pytest.raises(errors.Unretriable, match="duplicate profile name 'a'"):
            ladder.resolve_profiles(
                [
                    {"name": "a", "width": 640, "height": 360, "bitrate": 800_000},
                    {"name": "a", "width": 426, "height": 240, "bitrate": 300_000},
                ],
                self.SOURCE,
            )

    def test_larger_than_source_is_fitted_inside_keeping_aspect(self) -> None:
        [big, wide] = ladder.resolve_profiles(
            [
                {"name": "big", "width": 1920, "height": 1080, "bitrate": 6_000_000},
                {"name": "wide", "width": 2560, "height": 720, "bitrate": 6_000_000},
            ],
            self.SOURCE,
        )
        assert (big.width, big.height) == (1280, 720)
        assert (wide.width, wide.height) == (1280, 360)

    def test_portrait_profile_on_landscape_source_is_fitted_by_height(self) -> None:
        [profile, _] = ladder.resolve_profiles(
            [
                {"name": "p", "width": 720, "height": 1280, "bitrate": 1_000_000},
                {"name": "q", "width": 320, "height": 180, "bitrate": 200_000},
            ],
            self.SOURCE,
        )
        assert (profile.width, profile.height) == (404, 720)

    def test_upscaling_check_uses_display_dimensions(self) -> None:
        portrait = spec_of(1280, 720, 3_000_000, rotation_deg=270)  # displayed 720x1280
        [a, b] = ladder.resolve_profiles(
            [
                {"name": "a", "width": 720, "height": 1280, "bitrate": 1_000_000},
                {"name": "b", "width": 1280, "height": 720, "bitrate": 1_000_000},
            ],
            portrait,
        )
        assert (a.width, a.height) == (720, 1280)
        assert (b.width, b.height) == (720, 404)

    def test_odd_requested_sizes_become_even(self) -> None:
        [a, _] = ladder.resolve_profiles(
            [
                {"name": "a", "width": 427, "height": 241, "bitrate": 300_000},
                {"name": "b", "width": 640, "height": 360, "bitrate": 800_000},
            ],
            self.SOURCE,
        )
        assert (a.width, a.height) == (426, 240)

    @pytest.mark.parametrize(
        ("wire", "match"),
        [
            ({"width": "640", "height": 360, "bitrate": 1}, "width must be an integer"),
            ({"width": 640.5, "height": 360, "bitrate": 1}, "width must be an integer"),
            ({"width": True, "height": 360, "bitrate": 1}, "width must be an integer"),
            ({"width": 640, "height": 360, "bitrate": -5}, "bitrate must be positive"),
            ({"width": 640, "height": 360, "bitrate": 1, "quality": 45}, "quality"),
            ({"width": 640, "height": 360, "bitrate": 1, "fpsDen": 0}, "fpsDen"),
            ({"width": 640, "height": 360, "bitrate": 1, "gop": "often"}, "gop"),
            ({"width": 640, "height": 360, "bitrate": 1, "gop": 2}, "gop must be a string"),
            ({"width": 640, "height": 360, "bitrate": 1, "profile": "H265Main"}, "profile"),
            ({"width": 640, "height": 360, "bitrate": 1, "encoder": "VP9"}, "not supported"),
            ({"width": 640, "height": 360, "bitrate": 1, "name": "a/b"}, "name"),
            ({"width": 640, "height": 360, "bitrate": 1, "name": "a b"}, "name"),
            ({"width": 640, "height": 360, "bitrate": 1, "name": ".."}, "name"),
        ],
    )
    def test_invalid_fields_are_unretriable(self, wire: dict[str, object], match: str) -> None:
        requested: list[dict[str, object]] = [
            wire,
            {"name": "other", "width": 426, "height": 240, "bitrate": 300_000},
        ]
        with pytest.raises(errors.Unretriable, match=match):
            ladder.resolve_profiles(requested, self.SOURCE)

    def test_integral_floats_are_accepted(self) -> None:
        [profile, _] = ladder.resolve_profiles(
            [
                {"name": "a", "width": 640.0, "height": 360.0, "bitrate": 8e5},
                {"name": "b", "width": 426, "height": 240, "bitrate": 300_000},
            ],
            self.SOURCE,
        )
        assert (profile.width, profile.bitrate) == (640, 800_000)


class TestProfileWire:
    def test_round_trip_with_camel_case(self) -> None:
        wire: dict[str, object] = {
            "name": "720p0",
            "width": 1280,
            "height": 720,
            "bitrate": 3_000_000,
            "fps": 30000,
            "fpsDen": 1001,
            "quality": 23,
            "gop": "2.0",
            "profile": "H264High",
            "encoder": "H.264",
        }
        profile = ladder.Profile.from_wire(wire)
        assert profile.fps_den == 1001
        assert profile.to_wire() == wire

    def test_unset_fields_are_omitted_and_unknown_keys_ignored(self) -> None:
        profile = ladder.Profile.from_wire(
            {"name": "a", "width": 2, "height": 2, "bitrate": 400, "colorDepth": 8}
        )
        assert profile.to_wire() == {"name": "a", "width": 2, "height": 2, "bitrate": 400}

    def test_from_wire_requires_all_of_name_and_size(self) -> None:
        with pytest.raises(errors.Unretriable, match="missing name"):
            ladder.Profile.from_wire({"width": 2, "height": 2, "bitrate": 400})

    def test_is_frozen(self) -> None:
        profile = ladder.Profile(name="a", width=2, height=2, bitrate=400)
        with pytest.raises(dataclasses.FrozenInstanceError):
            profile.width = 4  # type: ignore[misc]

    @pytest.mark.parametrize(
        ("gop", "seconds"), [(None, None), ("intra", 0.0), ("2", 2.0), ("0.5", 0.5), ("0", None)]
    )
    def test_gop_seconds(self, gop: str | None, seconds: float | None) -> None:
        profile = ladder.Profile(name="a", width=2, height=2, bitrate=400, gop=gop)
        assert profile.gop_s == seconds

    def test_frame_rate(self) -> None:
        assert ladder.Profile(name="a", width=2, height=2, bitrate=1).frame_rate is None
        assert ladder.Profile(name="a", width=2, height=2, bitrate=1, fps=0).frame_rate is None
        ntsc = ladder.Profile(name="a", width=2, height=2, bitrate=1, fps=30000, fps_den=1001)
        assert ntsc.frame_rate is not None
        assert round(float(ntsc.frame_rate), 2) == 29.97
