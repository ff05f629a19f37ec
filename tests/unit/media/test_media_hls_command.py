"""The HLS ladder command, segment sizes and the master playlist, without running FFmpeg."""

from __future__ import annotations

from pathlib import Path

import pytest

from mediatasks.media import hls, ladder, probe

VIDEO = probe.Track(type="video", codec="h264", width=1280, height=720, fps=30.0, bitrate=3_000_000)
AUDIO = probe.Track(type="audio", codec="aac", channels=6, sample_rate=96_000)


def spec_of(*tracks: probe.Track) -> probe.VideoSpec:
    return probe.VideoSpec(format="mp4", duration_s=12.0, bitrate=3_200_000, tracks=tracks)


def profile(name: str, width: int, height: int, bitrate: int, **extra: object) -> ladder.Profile:
    return ladder.Profile.from_wire(
        {"name": name, "width": width, "height": height, "bitrate": bitrate, **extra}
    )


SMALL = profile("240p0", 426, 240, 300_000)
MEDIUM = profile("360p0", 640, 360, 800_000, quality=27)


def build(spec: probe.VideoSpec, profiles: list[ladder.Profile], **kwargs: object) -> list[str]:
    options: dict[str, object] = {
        "binary": "ffmpeg",
        "source": Path("/in/source.mp4"),
        "spec": spec,
        "profiles": profiles,
        "out_dir": Path("/out"),
        "segment_s": 6.0,
        **kwargs,
    }
    return hls.build_ladder_command(**options)  # type: ignore[arg-type]


def value_after(argv: list[str], flag: str) -> str:
    return argv[argv.index(flag) + 1]


class TestBuildLadderCommand:
    def test_one_input_one_split_one_scale_per_rendition(self) -> None:
        argv = build(spec_of(VIDEO, AUDIO), [SMALL, MEDIUM])
        assert argv[0] == "ffmpeg"
        assert argv.count("-i") == 1
        assert value_after(argv, "-i") == "/in/source.mp4"
        graph = value_after(argv, "-filter_complex")
        assert graph == (
            "[0:v:0]split=2[in0][in1];"
            "[in0]scale=426:240,format=yuv420p[v0];"
            "[in1]scale=640:360,format=yuv420p[v1]"
        )

    def test_each_variant_maps_its_video_and_the_audio(self) -> None:
        argv = build(spec_of(VIDEO, AUDIO), [SMALL, MEDIUM])
        maps = [argv[i + 1] for i, arg in enumerate(argv) if arg == "-map"]
        assert maps == ["[v0]", "0:a:0", "[v1]", "0:a:0"]
        assert value_after(argv, "-var_stream_map") == "v:0,a:0,name:240p0 v:1,a:1,name:360p0"

    def test_audio_is_aac_stereo_at_most_48_khz(self) -> None:
        argv = build(spec_of(VIDEO, AUDIO), [SMALL])
        assert value_after(argv, "-c:a") == "aac"
        assert value_after(argv, "-ac") == "2"
        assert value_after(argv, "-ar") == "48000"

    def test_mono_audio_stays_mono(self) -> None:
        mono = probe.Track(type="audio", codec="aac", channels=1, sample_rate=44_100)
        argv = build(spec_of(VIDEO, mono), [SMALL])
        assert value_after(argv, "-ac") == "1"
        assert "-ar" not in argv

    def test_no_audio_track_maps_no_audio(self) -> None:
        argv = build(spec_of(VIDEO), [SMALL, MEDIUM])
        assert "0:a:0" not in argv
        assert "-c:a" not in argv
        assert value_after(argv, "-var_stream_map") == "v:0,name:240p0 v:1,name:360p0"

    def test_hls_layout_matches_livepeer(self) -> None:
        argv = build(spec_of(VIDEO, AUDIO), [SMALL])
        assert value_after(argv, "-f") == "hls"
        assert value_after(argv, "-hls_time") == "6"
        assert value_after(argv, "-hls_playlist_type") == "vod"
        assert value_after(argv, "-start_number") == "0"
        assert value_after(argv, "-hls_segment_filename") == "/out/%v/%d.ts"
        assert value_after(argv, "-master_pl_name") == "index.m3u8"
        assert argv[-1] == "/out/%v/index.m3u8"

    def test_keyframes_are_forced_on_segment_boundaries(self) -> None:
        argv = build(spec_of(VIDEO), [SMALL], segment_s=2.5)
        assert value_after(argv, "-force_key_frames:v") == "expr:gte(t,n_forced*2.5)"
        assert value_after(argv, "-hls_time") == "2.5"

    def test_bitrate_or_capped_quality_per_rendition(self) -> None:
        argv = build(spec_of(VIDEO), [SMALL, MEDIUM])
        assert value_after(argv, "-b:v:0") == "300000"
        assert value_after(argv, "-maxrate:v:0") == "300000"
        assert value_after(argv, "-bufsize:v:0") == "600000"
        assert "-crf:v:0" not in argv
        assert value_after(argv, "-crf:v:1") == "27"
        assert value_after(argv, "-maxrate:v:1") == "800000"
        assert "-b:v:1" not in argv
        assert value_after(argv, "-c:v") == "libx264"
        assert value_after(argv, "-preset") == "veryfast"

    @pytest.mark.parametrize(
        ("h264_profile", "x264_profile", "no_b_frames"),
        [
            ("H264Baseline", "baseline", False),
            ("H264Main", "main", False),
            ("H264High", "high", False),
            ("H264ConstrainedHigh", "high", True),
        ],
    )
    def test_h264_profiles(self, h264_profile: str, x264_profile: str, no_b_frames: bool) -> None:
        argv = build(spec_of(VIDEO), [profile("a", 640, 360, 800_000, profile=h264_profile)])
        assert value_after(argv, "-profile:v:0") == x264_profile
        assert ("-bf:v:0" in argv) is no_b_frames

    def test_frame_rate_is_capped_not_raised(self) -> None:
        slow = profile("slow", 640, 360, 800_000, fps=15)
        fast = profile("fast", 640, 360, 800_000, fps=60)
        ntsc = profile("ntsc", 640, 360, 800_000, fps=24000, fpsDen=1001)
        graph = value_after(build(spec_of(VIDEO), [slow, fast, ntsc]), "-filter_complex")
        assert "[in0]fps=15/1,scale=640:360" in graph
        assert "[in1]scale=640:360" in graph
        assert "[in2]fps=24000/1001,scale=640:360" in graph

    def test_gop_in_seconds_becomes_frames_at_the_output_rate(self) -> None:
        argv = build(
            spec_of(VIDEO),
            [
                profile("a", 640, 360, 800_000, gop="2"),
                profile("b", 640, 360, 800_000, gop="intra"),
                profile("c", 640, 360, 800_000, gop="1", fps=15),
            ],
        )
        assert value_after(argv, "-g:v:0") == "60"
        assert value_after(argv, "-g:v:1") == "1"
        assert value_after(argv, "-g:v:2") == "15"

    def test_threads(self) -> None:
        argv = build(spec_of(VIDEO), [SMALL], threads=2)
        assert value_after(argv, "-threads") == "2"
        assert value_after(argv, "-filter_complex_threads") == "2"
        assert "-threads" not in build(spec_of(VIDEO), [SMALL])

    def test_refuses_odd_sizes_and_empty_ladders(self) -> None:
        with pytest.raises(ValueError, match="odd"):
            build(spec_of(VIDEO), [ladder.Profile(name="odd", width=641, height=360, bitrate=1)])
        with pytest.raises(ValueError, match="at least one"):
            build(spec_of(VIDEO), [])


@pytest.mark.parametrize(
    ("target", "seconds"), [(None, 10.0), (0, 10.0), (-3, 10.0), (2, 2.0), (6.5, 6.5), (60, 20.0)]
)
def test_segment_size(target: float | None, seconds: float) -> None:
    assert hls.segment_size_s(target) == seconds


class TestMasterOrder:
    def test_highest_bitrate_first(self) -> None:
        low = profile("low", 426, 240, 300_000)
        mid = profile("mid", 640, 360, 800_000)
        assert hls.master_order([low, mid]) == [mid, low]

    def test_large_first_rendition_swaps_with_the_second(self) -> None:
        p360 = profile("360p0", 640, 360, 1_000_000)
        p720 = profile("720p0", 1280, 720, 4_000_000)
        p1080 = profile("1080p0", 1920, 1080, 6_000_000)
        assert hls.master_order([p360, p720, p1080]) == [p720, p1080, p360]

    def test_tall_portrait_first_rendition_also_swaps(self) -> None:
        portrait = profile("p", 540, 960, 2_000_000)
        small = profile("s", 270, 480, 500_000)
        assert hls.master_order([small, portrait]) == [small, portrait]

    def test_equal_bitrates_put_the_larger_frame_first(self) -> None:
        a = profile("a", 426, 240, 500_000)
        b = profile("b", 640, 360, 500_000)
        assert hls.master_order([a, b]) == [b, a]

    def test_single_large_rendition_stays(self) -> None:
        big = profile("big", 1920, 1080, 6_000_000)
        assert hls.master_order([big]) == [big]


def write_rendition(out_dir: Path, name: str, segments: list[tuple[float, int]]) -> None:
    directory = out_dir / name
    directory.mkdir(parents=True)
    lines = ["#EXTM3U", "#EXT-X-VERSION:3", "#EXT-X-TARGETDURATION:2", "#EXT-X-MEDIA-SEQUENCE:0"]
    for index, (seconds, size_bytes) in enumerate(segments):
        (directory / f"{index}.ts").write_bytes(b"\0" * size_bytes)
        lines += [f"#EXTINF:{seconds:.6f},", f"{index}.ts"]
    lines.append("#EXT-X-ENDLIST")
    (directory / "index.m3u8").write_text("\n".join(lines) + "\n")


class TestWriteMasterPlaylist:
    def test_livepeer_shape_with_measured_bandwidth_and_ffmpeg_codecs(self, tmp_path: Path) -> None:
        small = profile("240p0", 426, 240, 300_000)
        medium = profile("360p0", 640, 360, 800_000, fps=24)
        write_rendition(tmp_path, "240p0", [(2.0, 50_000), (1.0, 10_000)])
        write_rendition(tmp_path, "360p0", [(2.0, 200_000), (1.0, 100_000)])
        # What FFmpeg's own master looks like; only its CODECS survive.
        (tmp_path / "index.m3u8").write_text(
            "#EXTM3U\n#EXT-X-VERSION:3\n"
            '#EXT-X-STREAM-INF:BANDWIDTH=1,RESOLUTION=426x240,CODECS="avc1.640015,mp4a.40.2"\n'
            "240p0/index.m3u8\n\n"
            '#EXT-X-STREAM-INF:BANDWIDTH=2,RESOLUTION=640x360,CODECS="avc1.64001e,mp4a.40.2"\n'
            "360p0/index.m3u8\n"
        )

        renditions = hls.write_master_playlist(tmp_path, [small, medium], source_fps=30.0)

        assert (tmp_path / "index.m3u8").read_text() == (
            "#EXTM3U\n"
            "#EXT-X-VERSION:3\n"
            "#EXT-X-STREAM-INF:BANDWIDTH=800000,AVERAGE-BANDWIDTH=800000,RESOLUTION=640x360,"
            'FRAME-RATE=24.000,CODECS="avc1.64001e,mp4a.40.2",NAME="0-360p0"\n'
            "360p0/index.m3u8\n"
            "#EXT-X-STREAM-INF:BANDWIDTH=200000,AVERAGE-BANDWIDTH=160000,RESOLUTION=426x240,"
            'FRAME-RATE=30.000,CODECS="avc1.640015,mp4a.40.2",NAME="1-240p0"\n'
            "240p0/index.m3u8\n"
        )
        assert [r.profile for r in renditions] == [medium, small]
        assert renditions[1].segment_count == 2
        assert renditions[1].duration_s == 3.0

    def test_without_outputs_it_falls_back_to_nominal_bitrates(self, tmp_path: Path) -> None:
        only = profile("a", 640, 360, 800_000)
        [rendition] = hls.write_master_playlist(tmp_path, [only])
        nominal = 800_000 + hls.AUDIO_BITRATE_BPS
        assert rendition.peak_bandwidth_bps == rendition.average_bandwidth_bps == nominal
        text = (tmp_path / "index.m3u8").read_text()
        assert "FRAME-RATE" not in text
        assert "CODECS" not in text
        assert 'NAME="0-a"' in text


class TestScaleCascade:
    LADDER = (
        profile("360p0", 640, 360, 1_000_000),
        profile("720p0", 1280, 720, 4_000_000),
        profile("1080p0", 1920, 1080, 9_000_000),
    )

    def test_each_rendition_is_scaled_from_the_next_larger_one(self) -> None:
        assert hls.cascade(self.LADDER, 30.0) == [1, 2, None]
        source = probe.Track(type="video", codec="h264", width=1920, height=1080, fps=30.0)
        argv = build(spec_of(source), list(self.LADDER), scale_cascade=True)
        assert value_after(argv, "-filter_complex") == (
            "[0:v:0]split=1[in2];"
            "[c1_0]scale=640:360,format=yuv420p[v0];"
            "[c2_1]scale=1280:720,format=yuv420p,split=2[v1][c1_0];"
            "[in2]scale=1920:1080,format=yuv420p,split=2[v2][c2_1]"
        )

    def test_only_from_a_rendition_as_large_both_ways_and_as_fast(self) -> None:
        wide = profile("wide", 1920, 200, 1_000_000)
        capped = profile("capped", 1280, 720, 1_000_000, fps=15)
        small = profile("small", 640, 360, 500_000)
        # "small" is scaled from neither: "wide" is not tall enough, "capped" drops frames.
        assert hls.cascade([wide, capped, small], 30.0) == [None, None, None]
        assert hls.cascade([wide, capped, small], 15.0) == [None, None, 1]
