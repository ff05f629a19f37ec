"""Run FFmpeg as a child process: progress, error mapping and cancellation.

:func:`run_ffmpeg` is the only place where mediatasks waits on FFmpeg.  It owns three policies:

* **Progress.**  FFmpeg is started with ``-progress pipe:1``; its ``key=value`` blocks are turned
  into a fraction of the expected duration by :class:`ProgressParser` (never decreasing), and the
  caller's ``on_progress`` coroutine is awaited whenever that fraction changes.
* **Errors.**  A non-zero exit becomes :class:`~mediatasks.errors.InvalidMedia` (unretriable) when
  the stderr tail shows that the *input* is bad, and :class:`~mediatasks.errors.TaskFailure`
  (retriable) otherwise.  Messages are Livepeer's humanized ones; ``detail`` holds the stderr tail.
* **Cancellation.**  Cancelling the awaiting task sends SIGTERM, waits
  :data:`TERMINATE_GRACE_S`, then sends SIGKILL and reaps the process before re-raising.  On Linux
  the child also asks the kernel (``PR_SET_PDEATHSIG``) to SIGKILL it when its parent dies, so a
  SIGKILLed worker never leaves an orphan FFmpeg running.

stdout and stderr are drained concurrently, so neither pipe can fill up and stall FFmpeg.
"""

from __future__ import annotations

import asyncio
import codecs
import collections
import ctypes
import ctypes.util
import functools
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Final

import imageio_ffmpeg

from mediatasks import errors

__all__ = [
    "MESSAGE_BAD_CODEC",
    "MESSAGE_BAD_INPUT",
    "MESSAGE_INTERNAL",
    "MESSAGE_STORAGE",
    "STDERR_TAIL_LINES",
    "TERMINATE_GRACE_S",
    "FFmpegRun",
    "ProgressParser",
    "failure_from_stderr",
    "ffmpeg_binary",
    "ffmpeg_version",
    "prepare_argv",
    "run_ffmpeg",
]

#: How many of FFmpeg's last stderr lines are kept for error details.
STDERR_TAIL_LINES: Final = 30
#: Seconds between SIGTERM and SIGKILL when a run is cancelled.
TERMINATE_GRACE_S: Final = 1.0

#: Humanized messages (Livepeer task-runner wording), shown to API clients as ``errorMessage``.
MESSAGE_BAD_INPUT: Final = (
    "failed to probe or open file, "
    "check your input file against the input codec and container support matrix"
)
MESSAGE_BAD_CODEC: Final = (
    "invalid video file codec or container, "
    "check your input file against the input codec and container support matrix"
)
MESSAGE_INTERNAL: Final = "internal error processing file"
MESSAGE_STORAGE: Final = "error saving file to storage"

_READ_CHUNK_BYTES: Final = 64 * 1024
_PR_SET_PDEATHSIG: Final = 1

# Stderr fragments (lower case) that blame the environment or the output side.  They are checked
# before the input fragments: a full disk after a few decoding warnings must stay retriable.
_OUTPUT_FAULTS: Final[tuple[tuple[str, str], ...]] = (
    ("no space left on device", MESSAGE_STORAGE),
    ("disk quota exceeded", MESSAGE_STORAGE),
    ("cannot allocate memory", MESSAGE_INTERNAL),
    ("matches no streams", MESSAGE_INTERNAL),  # our command and the probe disagree
)
# Stderr fragments (lower case) that blame the input file: retrying cannot help.
_INPUT_FAULTS: Final[tuple[tuple[str, str], ...]] = (
    ("invalid data found when processing input", MESSAGE_BAD_INPUT),
    ("moov atom not found", MESSAGE_BAD_INPUT),
    ("could not find codec parameters", MESSAGE_BAD_CODEC),
    ("decoding requested, but no decoder found", MESSAGE_BAD_CODEC),
    ("unknown decoder", MESSAGE_BAD_CODEC),
    ("no decoder found", MESSAGE_BAD_CODEC),
    ("unsupported codec", MESSAGE_BAD_CODEC),
    ("error while decoding", MESSAGE_BAD_INPUT),
    ("error submitting packet to decoder", MESSAGE_BAD_INPUT),
    ("corrupt", MESSAGE_BAD_INPUT),
    ("partial file", MESSAGE_BAD_INPUT),
    ("invalid nal unit", MESSAGE_BAD_INPUT),
    ("error opening input", MESSAGE_BAD_INPUT),
)


@dataclass(frozen=True, kw_only=True)
class FFmpegRun:
    """A finished, successful FFmpeg run."""

    #: The argv actually executed (with the progress and banner flags added).
    argv: tuple[str, ...]
    #: Wall-clock seconds between spawning FFmpeg and its exit.
    elapsed_s: float
    #: FFmpeg's last :data:`STDERR_TAIL_LINES` stderr lines, joined by newlines.
    stderr_tail: str


def ffmpeg_binary(configured: str = "") -> str:
    """Return the FFmpeg executable to run.

    The configured path wins when it is non-empty; otherwise the binary bundled with the
    ``imageio-ffmpeg`` wheel is used.  (That wheel ships no ffprobe: probing uses PyAV.)
    """
    if configured:
        return configured
    return _bundled_binary()


@functools.cache
def _bundled_binary() -> str:
    # imageio-ffmpeg runs the binary once to check it: do that once per process, not per task.
    try:
        return str(imageio_ffmpeg.get_ffmpeg_exe())
    except RuntimeError as exc:
        raise errors.ConfigurationError(f"no FFmpeg binary found: {exc}") from exc


async def ffmpeg_version(binary: str) -> str:
    """Return the first line of ``binary -version`` (``"ffmpeg version n7.1 ..."``)."""
    try:
        proc = await asyncio.create_subprocess_exec(
            binary,
            "-version",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            preexec_fn=_death_signal_preexec(),
        )
    except OSError as exc:
        raise errors.ConfigurationError(f"cannot run FFmpeg at {binary!r}: {exc}") from exc
    try:
        stdout, _ = await proc.communicate()
    except BaseException:
        await _stop(proc, grace_s=0.0)
        raise
    lines = stdout.decode(errors="replace").strip().splitlines()
    if proc.returncode != 0 or not lines:
        raise errors.ConfigurationError(
            f"{binary!r} -version exited with {proc.returncode}; is it FFmpeg?"
        )
    return lines[0].strip()


def prepare_argv(argv: Sequence[str]) -> list[str]:
    """Add the global flags :func:`run_ffmpeg` relies on, unless the caller already set them.

    ``-hide_banner -nostdin -nostats -progress pipe:1`` and ``-y`` (unless ``-n`` is given) go
    right after the binary, where FFmpeg expects global options.
    """
    if not argv:
        raise ValueError("argv must start with the FFmpeg binary")
    present = set(argv[1:])
    added: list[str] = []
    for flag in ("-hide_banner", "-nostdin", "-nostats"):
        if flag not in present:
            added.append(flag)
    if "-progress" not in present:
        added += ["-progress", "pipe:1"]
    if "-y" not in present and "-n" not in present:
        added.append("-y")
    return [argv[0], *added, *argv[1:]]


class ProgressParser:
    """Turn FFmpeg ``-progress`` output into a non-decreasing fraction of ``duration_s``.

    FFmpeg writes blocks of ``key=value`` lines, each ended by ``progress=continue`` or, once,
    ``progress=end``.  The position comes from ``out_time_us`` (``out_time_ms`` is, despite its
    name, also in microseconds; ``out_time`` is ``HH:MM:SS.ffffff``).  Values are ``N/A`` or
    negative before the first frame is written; those are ignored.  Without a known duration only
    ``progress=end`` moves the fraction (to 1.0).
    """

    def __init__(self, duration_s: float | None) -> None:
        self._duration_s = duration_s if duration_s is not None and duration_s > 0 else None
        self._position_s: float | None = None
        #: The last fraction reported, 0.0 to 1.0.
        self.fraction = 0.0

    def feed(self, line: str) -> float | None:
        """Consume one line; return the new fraction when a block ends and the fraction rose."""
        key, sep, value = line.strip().partition("=")
        if not sep:
            return None
        value = value.strip()
        if key in ("out_time_us", "out_time_ms"):
            position_us = _parse_int(value)
            if position_us is not None and position_us >= 0:
                self._position_s = position_us / 1_000_000
        elif key == "out_time":
            position_s = _parse_clock(value)
            if position_s is not None and position_s >= 0:
                self._position_s = position_s
        elif key == "progress":
            return self._end_block(finished=value == "end")
        return None

    def _end_block(self, *, finished: bool) -> float | None:
        if finished:
            candidate = 1.0
        elif self._duration_s is not None and self._position_s is not None:
            candidate = min(self._position_s / self._duration_s, 1.0)
        else:
            return None
        if candidate <= self.fraction:
            return None
        self.fraction = candidate
        return candidate


def failure_from_stderr(returncode: int, stderr_tail: str) -> errors.TaskFailure:
    """Map a failed FFmpeg exit to the exception :func:`run_ffmpeg` raises.

    Only a non-zero exit is a failure: FFmpeg logs recoverable decoding glitches too.
    """
    lowered = stderr_tail.lower()
    if returncode < 0:
        signame = _signal_name(-returncode)
        detail = f"FFmpeg was killed by {signame}\n{stderr_tail}".rstrip()
        return errors.TaskFailure(MESSAGE_INTERNAL, detail=detail)
    for fragment, message in _OUTPUT_FAULTS:
        if fragment in lowered:
            return errors.TaskFailure(message, detail=stderr_tail)
    for fragment, message in _INPUT_FAULTS:
        if fragment in lowered:
            return errors.InvalidMedia(message, detail=stderr_tail)
    detail = f"FFmpeg exited with status {returncode}\n{stderr_tail}".rstrip()
    return errors.TaskFailure(MESSAGE_INTERNAL, detail=detail)


async def run_ffmpeg(
    argv: Sequence[str],
    *,
    duration_s: float | None,
    on_progress: Callable[[float], Awaitable[None]] | None = None,
    terminate_grace_s: float = TERMINATE_GRACE_S,
    stdin_feed: Callable[[asyncio.StreamWriter], Awaitable[None]] | None = None,
) -> FFmpegRun:
    """Run FFmpeg to completion and return what it did.

    Parameters
    ----------
    argv
        The full command, ``argv[0]`` being the binary; see :func:`prepare_argv` for the flags
        added to it.
    duration_s
        The expected output duration, the denominator of the progress fraction; ``None`` when
        unknown (progress then only jumps to 1.0 at the end).
    on_progress
        Awaited with the fraction (0.0 to 1.0, never decreasing) each time it changes.  It runs
        on the stdout reader, so it should be quick; an exception from it stops FFmpeg and
        propagates.
    terminate_grace_s
        Seconds between SIGTERM and SIGKILL when the run is cancelled.
    stdin_feed
        Writes FFmpeg's input (``-i pipe:0``) to the pipe it is given, and closes it at the end.
        Should it raise, FFmpeg is stopped and its exception propagates (an input that failed to
        arrive is the input's failure, not FFmpeg's); should FFmpeg stop reading, the feed's
        broken pipe is ignored and FFmpeg's exit status speaks.

    Raises
    ------
    errors.InvalidMedia
        FFmpeg failed and its stderr blames the input.
    errors.TaskFailure
        FFmpeg failed for any other reason (retriable).
    errors.ConfigurationError
        The binary cannot be executed.
    """
    full_argv = tuple(prepare_argv(argv))
    parser = ProgressParser(duration_s)
    tail: collections.deque[str] = collections.deque(maxlen=STDERR_TAIL_LINES)
    started = time.monotonic()
    try:
        proc = await asyncio.create_subprocess_exec(
            *full_argv,
            stdin=asyncio.subprocess.DEVNULL if stdin_feed is None else asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            # Its own session: a Ctrl-C on our terminal must not reach FFmpeg; the worker
            # decides when FFmpeg stops (the graceful shutdown policy).
            start_new_session=True,
            preexec_fn=_death_signal_preexec(),
        )
    except OSError as exc:
        raise errors.ConfigurationError(f"cannot run FFmpeg at {full_argv[0]!r}: {exc}") from exc
    assert proc.stdout is not None and proc.stderr is not None  # both are PIPE

    async def pump_progress(stream: asyncio.StreamReader) -> None:
        async for line in _lines(stream):
            fraction = parser.feed(line)
            if fraction is not None and on_progress is not None:
                await on_progress(fraction)

    async def pump_stderr(stream: asyncio.StreamReader) -> None:
        async for line in _lines(stream):
            if line.strip():
                tail.append(line.rstrip())

    async def feed(stream: asyncio.StreamWriter) -> None:
        assert stdin_feed is not None
        try:
            await stdin_feed(stream)
            await stream.drain()
        except (BrokenPipeError, ConnectionResetError):
            pass  # FFmpeg stopped reading: its exit status says why
        finally:
            stream.close()

    pumps = [
        asyncio.ensure_future(pump_progress(proc.stdout)),
        asyncio.ensure_future(pump_stderr(proc.stderr)),
    ]
    if stdin_feed is not None:
        assert proc.stdin is not None
        pumps.append(asyncio.ensure_future(feed(proc.stdin)))
    try:
        # Both pumps end at EOF, that is when FFmpeg exits (it closes its pipes then).
        await asyncio.gather(*pumps)
        returncode = await proc.wait()
    except BaseException:
        for pump in pumps:
            pump.cancel()
        await _stop(proc, grace_s=terminate_grace_s)
        await asyncio.gather(*pumps, return_exceptions=True)
        raise
    elapsed_s = time.monotonic() - started
    stderr_tail = "\n".join(tail)
    if returncode != 0:
        raise failure_from_stderr(returncode, stderr_tail)
    return FFmpegRun(argv=full_argv, elapsed_s=elapsed_s, stderr_tail=stderr_tail)


async def _stop(proc: asyncio.subprocess.Process, *, grace_s: float) -> None:
    """SIGTERM, wait ``grace_s``, SIGKILL; always reap.  Survives a second cancellation."""
    try:
        if proc.returncode is None:
            if grace_s > 0:
                _signal(proc, signal.SIGTERM)
                try:
                    await asyncio.wait_for(proc.wait(), timeout=grace_s)
                except TimeoutError:
                    pass
            if proc.returncode is None:
                _signal(proc, signal.SIGKILL)
        await proc.wait()
    finally:
        # Reached with the process alive only if we were cancelled again while waiting.
        if proc.returncode is None:
            _signal(proc, signal.SIGKILL)


def _signal(proc: asyncio.subprocess.Process, signum: signal.Signals) -> None:
    try:
        proc.send_signal(signum)
    except ProcessLookupError:  # it exited in the meantime
        pass


async def _lines(stream: asyncio.StreamReader) -> AsyncIterator[str]:
    """Yield decoded lines, split on ``\\n`` or ``\\r``, whatever their length."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")  # chunks split characters
    pending = ""
    while chunk := await stream.read(_READ_CHUNK_BYTES):
        pending += decoder.decode(chunk).replace("\r", "\n")
        *complete, pending = pending.split("\n")
        for line in complete:
            yield line
    pending += decoder.decode(b"", final=True)
    if pending:
        yield pending


def _parse_int(value: str) -> int | None:
    try:
        return int(value)
    except ValueError:
        return None


def _parse_clock(value: str) -> float | None:
    """``HH:MM:SS.ffffff`` (FFmpeg prints a leading ``-`` before the first frame) to seconds."""
    sign = -1.0 if value.startswith("-") else 1.0
    parts = value.lstrip("-").split(":")
    if len(parts) != 3:
        return None
    try:
        hours, minutes, seconds = int(parts[0]), int(parts[1]), float(parts[2])
    except ValueError:
        return None
    return sign * (hours * 3600 + minutes * 60 + seconds)


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


@functools.cache
def _prctl() -> Callable[..., int] | None:
    """libc's ``prctl``, loaded in the parent (a forked child must not load libraries)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    except OSError:
        return None
    prctl: Callable[..., int] = libc.prctl
    return prctl


def _death_signal_preexec() -> Callable[[], None] | None:
    """A ``preexec_fn`` making the kernel SIGKILL the child when its parent dies (Linux only).

    The death signal fires when the *thread* that spawned the child exits, which for asyncio is
    the event loop's thread: run the loop in a thread that lives as long as the worker.
    """
    prctl = _prctl()
    if prctl is None:
        return None
    parent_pid = os.getpid()

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        # The parent may have died between fork() and prctl(): then nobody would ever kill us.
        if os.getppid() != parent_pid:
            os.kill(os.getpid(), signal.SIGKILL)

    return preexec
