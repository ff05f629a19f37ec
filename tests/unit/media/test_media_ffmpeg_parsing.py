"""FFmpeg progress parsing, argv preparation and failure mapping, without running FFmpeg."""

from __future__ import annotations

import pytest

from mediatasks import errors
from mediatasks.media import ffmpeg

# Recorded from `ffmpeg -progress pipe:1 -stats_period 0.2 ...` on a 2 s clip with audio, plus
# the blocks FFmpeg prints before its first frame (N/A, then a negative audio-priming time).
RECORDED_PROGRESS = """\
frame=0
fps=0.00
stream_0_0_q=0.0
bitrate=N/A
total_size=N/A
out_time_us=N/A
out_time_ms=N/A
out_time=N/A
dup_frames=0
drop_frames=0
speed=N/A
progress=continue
frame=0
fps=0.00
stream_0_0_q=0.0
bitrate=N/A
total_size=48
out_time_us=-23220
out_time_ms=-23220
out_time=-00:00:00.023220
dup_frames=0
drop_frames=0
speed=N/A
progress=continue
frame=33
fps=0.00
stream_0_0_q=20.0
bitrate=N/A
total_size=N/A
out_time_us=1258667
out_time_ms=1258667
out_time=00:00:01.258667
dup_frames=0
drop_frames=0
speed=6.29x
progress=continue
frame=33
fps=0.00
stream_0_0_q=20.0
bitrate=N/A
total_size=N/A
out_time_us=1258667
out_time_ms=1258667
out_time=00:00:01.258667
dup_frames=0
drop_frames=0
speed=3.1x
progress=continue
frame=60
fps=0.00
stream_0_0_q=-1.0
bitrate=N/A
total_size=N/A
out_time_us=2000000
out_time_ms=2000000
out_time=00:00:02.000000
dup_frames=0
drop_frames=0
speed=5.34x
progress=end
"""


def feed_all(parser: ffmpeg.ProgressParser, text: str) -> list[float]:
    reported = []
    for line in text.splitlines():
        fraction = parser.feed(line)
        if fraction is not None:
            reported.append(fraction)
    return reported


class TestProgressParser:
    def test_recorded_blocks_give_rising_fractions_ending_at_one(self) -> None:
        parser = ffmpeg.ProgressParser(duration_s=2.0)
        reported = feed_all(parser, RECORDED_PROGRESS)
        # N/A and negative times report nothing; the repeated position reports once.
        assert reported == [pytest.approx(0.6293335), 1.0]
        assert parser.fraction == 1.0

    def test_never_decreases(self) -> None:
        parser = ffmpeg.ProgressParser(duration_s=10.0)
        text = "out_time_us=5000000\nprogress=continue\nout_time_us=4000000\nprogress=continue\n"
        assert feed_all(parser, text) == [0.5]
        assert parser.fraction == 0.5

    def test_is_capped_at_one_before_the_end(self) -> None:
        parser = ffmpeg.ProgressParser(duration_s=1.0)
        reported = feed_all(parser, "out_time_us=3000000\nprogress=continue\nprogress=end\n")
        assert reported == [1.0]

    def test_without_duration_only_the_end_reports(self) -> None:
        parser = ffmpeg.ProgressParser(duration_s=None)
        assert feed_all(parser, RECORDED_PROGRESS) == [1.0]

    def test_zero_duration_is_treated_as_unknown(self) -> None:
        parser = ffmpeg.ProgressParser(duration_s=0.0)
        assert feed_all(parser, RECORDED_PROGRESS) == [1.0]

    def test_out_time_clock_is_used_when_the_microseconds_are_missing(self) -> None:
        parser = ffmpeg.ProgressParser(duration_s=100.0)
        assert feed_all(parser, "out_time=00:01:15.000000\nprogress=continue\n") == [0.75]

    def test_ignores_garbage_and_whitespace(self) -> None:
        parser = ffmpeg.ProgressParser(duration_s=4.0)
        text = "garbage\n\n  out_time_us=1000000  \r\nprogress=continue\r\n"
        assert feed_all(parser, text) == [0.25]


class TestPrepareArgv:
    def test_adds_global_flags_after_the_binary(self) -> None:
        argv = ffmpeg.prepare_argv(["ffmpeg", "-i", "in.mp4", "out.mp4"])
        assert argv == [
            "ffmpeg",
            "-hide_banner",
            "-nostdin",
            "-nostats",
            "-progress",
            "pipe:1",
            "-y",
            "-i",
            "in.mp4",
            "out.mp4",
        ]

    def test_keeps_what_the_caller_set(self) -> None:
        argv = ffmpeg.prepare_argv(
            ["ffmpeg", "-n", "-progress", "file.txt", "-hide_banner", "-i", "a", "b"]
        )
        assert argv == ["ffmpeg", "-nostdin", "-nostats", *argv[3:]]
        assert "-y" not in argv
        assert argv.count("-progress") == 1

    def test_needs_a_binary(self) -> None:
        with pytest.raises(ValueError, match="binary"):
            ffmpeg.prepare_argv([])


class TestFailureFromStderr:
    @pytest.mark.parametrize(
        ("tail", "message"),
        [
            (
                "[in#0 @ 0x1] Error opening input: Invalid data found when processing input\n"
                "Error opening input file in.mp4.",
                ffmpeg.MESSAGE_BAD_INPUT,
            ),
            ("[mov,mp4 @ 0x1] moov atom not found\nin.mp4: Invalid data", ffmpeg.MESSAGE_BAD_INPUT),
            (
                "[mov @ 0x1] Could not find codec parameters for stream 0 (Video: none)",
                ffmpeg.MESSAGE_BAD_CODEC,
            ),
            (
                "Decoding requested, but no decoder found for: none",
                ffmpeg.MESSAGE_BAD_CODEC,
            ),
            ("[h264 @ 0x1] corrupted macroblock 3 4 (total_coeff=-1)", ffmpeg.MESSAGE_BAD_INPUT),
        ],
    )
    def test_input_problems_are_invalid_media(self, tail: str, message: str) -> None:
        failure = ffmpeg.failure_from_stderr(1, tail)
        assert isinstance(failure, errors.InvalidMedia)
        assert failure.message == message
        assert failure.detail == tail

    def test_full_disk_is_retriable_even_after_decoding_noise(self) -> None:
        tail = (
            "[h264 @ 0x1] error while decoding MB 3 4\n"
            "av_interleaved_write_frame(): No space left on device"
        )
        failure = ffmpeg.failure_from_stderr(1, tail)
        assert not isinstance(failure, errors.Unretriable)
        assert failure.message == ffmpeg.MESSAGE_STORAGE

    def test_unknown_errors_are_retriable_internal_errors(self) -> None:
        failure = ffmpeg.failure_from_stderr(187, "Conversion failed!")
        assert type(failure) is errors.TaskFailure
        assert failure.message == ffmpeg.MESSAGE_INTERNAL
        assert failure.detail is not None
        assert "status 187" in failure.detail
        assert "Conversion failed!" in failure.detail

    def test_killed_by_a_signal_is_retriable(self) -> None:
        failure = ffmpeg.failure_from_stderr(-9, "frame=10")
        assert type(failure) is errors.TaskFailure
        assert failure.detail is not None
        assert "SIGKILL" in failure.detail


def test_binary_defaults_to_the_bundled_ffmpeg() -> None:
    assert ffmpeg.ffmpeg_binary("/opt/ffmpeg") == "/opt/ffmpeg"
    assert "ffmpeg" in ffmpeg.ffmpeg_binary()
