"""run_ffmpeg against the real FFmpeg: progress, failures, cancellation and orphan protection."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from mediatasks import errors
from mediatasks.media import ffmpeg
from tests import mediagen

pytestmark = pytest.mark.slow

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def children_of(pid: int) -> set[int]:
    """Live child processes of ``pid``, from /proc."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        state, ppid = stat.rsplit(")", 1)[1].split()[:2]
        if int(ppid) == pid and state not in ("Z", "X"):
            found.add(int(entry.name))
    return found


def cmdline(pid: int) -> bytes:
    """The command line of ``pid``, or nothing if it is already gone."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def is_running(pid: int) -> bool:
    """True unless the process is gone or a zombie (dead, waiting for a reaper)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def our_children(marker: bytes) -> set[int]:
    """Children of this process whose command line contains ``marker``.

    Other children may live as long as the test session (a storage server a fixture started),
    so a test looks only for the process it started itself.
    """
    return {pid for pid in children_of(os.getpid()) if marker in cmdline(pid)}


async def wait_for_child(marker: bytes, timeout_s: float = 5.0) -> int:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        pids = our_children(marker)
        if pids:
            return pids.pop()
        await asyncio.sleep(0.02)
    raise AssertionError("FFmpeg did not start")


def realtime_source(seconds: float) -> list[str]:
    """A tiny lavfi input read at native speed: FFmpeg runs for ``seconds`` seconds."""
    return ["-re", "-f", "lavfi", "-i", f"testsrc2=size=160x90:rate=15:duration={seconds}"]


async def test_progress_rises_monotonically_to_one() -> None:
    seen: list[float] = []

    async def on_progress(fraction: float) -> None:
        seen.append(fraction)

    binary = ffmpeg.ffmpeg_binary()
    argv = [binary, "-stats_period", "0.1", *realtime_source(1.5), "-f", "null", "-"]
    run = await ffmpeg.run_ffmpeg(argv, duration_s=1.5, on_progress=on_progress)

    assert len(seen) >= 5, seen
    assert seen == sorted(seen)
    assert len(set(seen)) == len(seen)  # reported only when it changed
    assert 0.0 < seen[0] < 0.7
    assert seen[-1] == 1.0
    assert run.argv[:7] == (
        binary,
        "-hide_banner",
        "-nostdin",
        "-nostats",
        "-progress",
        "pipe:1",
        "-y",
    )
    assert run.elapsed_s >= 0.5  # -re, after an initial burst


async def test_success_keeps_a_stderr_tail(tmp_path: Path, clip: Path) -> None:
    argv = [ffmpeg.ffmpeg_binary(), "-i", str(clip), "-t", "0.5", "-c", "copy"]
    run = await ffmpeg.run_ffmpeg([*argv, str(tmp_path / "cut.mp4")], duration_s=0.5)
    assert (tmp_path / "cut.mp4").stat().st_size > 0
    assert 0 < len(run.stderr_tail.splitlines()) <= ffmpeg.STDERR_TAIL_LINES
    assert "-progress" in run.argv


async def test_a_bad_input_is_invalid_media(tmp_path: Path) -> None:
    text = mediagen.make_text_file(tmp_path / "notes.mp4")
    argv = [ffmpeg.ffmpeg_binary(), "-i", str(text), "-f", "null", "-"]
    with pytest.raises(errors.InvalidMedia) as caught:
        await ffmpeg.run_ffmpeg(argv, duration_s=None)
    assert caught.value.message == ffmpeg.MESSAGE_BAD_INPUT
    assert caught.value.detail is not None
    assert "Invalid data found" in caught.value.detail


async def test_a_truncated_mp4_is_invalid_media(tmp_path: Path) -> None:
    truncated = mediagen.make_truncated_mp4(tmp_path / "half.mp4")
    argv = [ffmpeg.ffmpeg_binary(), "-i", str(truncated), "-f", "null", "-"]
    with pytest.raises(errors.InvalidMedia):
        await ffmpeg.run_ffmpeg(argv, duration_s=1.0)


async def test_an_output_problem_is_retriable(clip: Path, tmp_path: Path) -> None:
    output = tmp_path / "missing-dir" / "out.mp4"
    argv = [ffmpeg.ffmpeg_binary(), "-i", str(clip), "-c", "copy", str(output)]
    with pytest.raises(errors.TaskFailure) as caught:
        await ffmpeg.run_ffmpeg(argv, duration_s=2.0)
    assert not isinstance(caught.value, errors.Unretriable)
    assert caught.value.message == ffmpeg.MESSAGE_INTERNAL
    assert caught.value.detail is not None
    assert "No such file or directory" in caught.value.detail


async def test_a_missing_binary_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(errors.ConfigurationError):
        await ffmpeg.run_ffmpeg([str(tmp_path / "no-ffmpeg"), "-version"], duration_s=None)
    with pytest.raises(errors.ConfigurationError):
        await ffmpeg.ffmpeg_version(str(tmp_path / "no-ffmpeg"))


async def test_version() -> None:
    version = await ffmpeg.ffmpeg_version(ffmpeg.ffmpeg_binary())
    assert version.startswith("ffmpeg version")


async def test_an_exception_from_on_progress_stops_ffmpeg() -> None:
    async def on_progress(fraction: float) -> None:
        raise RuntimeError("progress sink broke")

    argv = [ffmpeg.ffmpeg_binary(), "-stats_period", "0.1", *realtime_source(30), "-f", "null", "-"]
    started = time.monotonic()
    with pytest.raises(RuntimeError, match="progress sink broke"):
        await ffmpeg.run_ffmpeg(argv, duration_s=30.0, on_progress=on_progress)
    assert time.monotonic() - started < 5
    assert our_children(b"testsrc2") == set()


@linux_only
async def test_cancelling_kills_ffmpeg_within_two_seconds() -> None:
    argv = [ffmpeg.ffmpeg_binary(), *realtime_source(60), "-f", "null", "-"]
    task = asyncio.create_task(ffmpeg.run_ffmpeg(argv, duration_s=60.0))
    pid = await wait_for_child(b"testsrc2")
    await asyncio.sleep(0.3)  # let it get going
    assert is_running(pid)

    cancelled_at = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    elapsed_s = time.monotonic() - cancelled_at

    assert elapsed_s < 2.0
    assert not Path(f"/proc/{pid}").exists()  # killed *and* reaped
    print(f"cancelled FFmpeg in {elapsed_s:.3f} s")


@linux_only
async def test_cancelling_escalates_to_sigkill(tmp_path: Path) -> None:
    """A child that ignores SIGTERM is SIGKILLed after the grace period."""
    stubborn = tmp_path / "stubborn"
    stubborn.write_text(
        f"#!{sys.executable}\n"
        "import signal, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "time.sleep(60)\n"
    )
    stubborn.chmod(0o755)
    task = asyncio.create_task(
        ffmpeg.run_ffmpeg([str(stubborn)], duration_s=None, terminate_grace_s=0.3)
    )
    pid = await wait_for_child(str(stubborn).encode())
    await asyncio.sleep(0.3)  # past the interpreter start-up, SIGTERM is now ignored

    cancelled_at = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    elapsed_s = time.monotonic() - cancelled_at

    assert 0.25 <= elapsed_s < 2.0
    assert not Path(f"/proc/{pid}").exists()


@linux_only
def test_ffmpeg_dies_with_a_sigkilled_parent(tmp_path: Path) -> None:
    """PR_SET_PDEATHSIG: SIGKILL the Python parent, and its FFmpeg child follows."""
    script = tmp_path / "parent.py"
    script.write_text(
        textwrap.dedent(
            """
            import asyncio, sys
            from mediatasks.media import ffmpeg

            async def main():
                argv = [ffmpeg.ffmpeg_binary(), "-re", "-f", "lavfi",
                        "-i", "testsrc2=size=160x90:rate=15:duration=60", "-f", "null", "-"]
                async def on_progress(fraction):
                    pass
                await ffmpeg.run_ffmpeg(argv, duration_s=60.0, on_progress=on_progress)

            asyncio.run(main())
            """
        )
    )
    parent = subprocess.Popen([sys.executable, str(script)])
    try:
        deadline = time.monotonic() + 10
        children: set[int] = set()
        while not children and time.monotonic() < deadline:
            time.sleep(0.05)
            # Only the transcode: imageio-ffmpeg briefly runs `ffmpeg -version` first.
            children = {pid for pid in children_of(parent.pid) if b"testsrc2" in cmdline(pid)}
        assert children, "the parent did not start FFmpeg"
        [ffmpeg_pid] = children
        time.sleep(0.2)
        assert is_running(ffmpeg_pid)

        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=5)

        deadline = time.monotonic() + 2
        while is_running(ffmpeg_pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not is_running(ffmpeg_pid)
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
