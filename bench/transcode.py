"""How fast is the upload task, against FFmpeg run by hand, on the same machine in the same run?

Usage::

    .venv/bin/python bench/transcode.py [--seconds 30] [--runs 1]

Makes (once, in ``bench/.media/``) a ``--seconds`` long 1080p source with sound, then times:

1. ``task``: the whole upload task (download from a loopback server, probe, hash, the ladder as
   HLS + MP4, publish) through a real worker and SQLite task store, from creation to completion;
2. ``ladder hls+mp4``: our ladder alone (one FFmpeg process, one decode, the MP4 remux);
3. ``ladder hls``: the same without MP4s;
4. ``raw ffmpeg``: the best single FFmpeg command for the same renditions, typed by hand: one
   decode, ``split``, every rendition to HLS, and each rendition also written as an MP4 by the
   ``tee`` muxer from the same encode;
5. ``ffmpeg per rendition``: one FFmpeg process per rendition (each decodes the source), run one
   after the other, as a naive pipeline does.

It prints wall times and the ratios the project aims at: the task within 1.05 x the raw command,
and HLS+MP4 within 1.05 x HLS alone.  It writes nothing but the source and temporary folders.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Python puts this script's folder first on the path, where bench/queue.py would shadow the
# standard library's queue module: take it off, and put the project root on.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

from mediatasks import service, settings, taskstore  # noqa: E402
from mediatasks.blobstore.local import LocalBlobStore  # noqa: E402
from mediatasks.media import ffmpeg, hls, ladder, probe  # noqa: E402
from mediatasks.worker import handlers, loop  # noqa: E402
from tests import processes  # noqa: E402

MEDIA = ROOT / "bench" / ".media"


def make_source(seconds: int) -> Path:
    """A 1080p30 H.264 + AAC test source, made once."""
    path = MEDIA / f"source-1080p-{seconds}s.mp4"
    if path.exists():
        return path
    MEDIA.mkdir(parents=True, exist_ok=True)
    binary = ffmpeg.ffmpeg_binary()
    subprocess.run(
        [
            binary, "-hide_banner", "-loglevel", "error", "-y",
            "-f", "lavfi", "-i", f"testsrc2=size=1920x1080:rate=30:duration={seconds}",
            "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds}",
            "-c:v", "libx264", "-preset", "fast", "-crf", "20", "-pix_fmt", "yuv420p",
            "-c:a", "aac", "-b:a", "128k", "-shortest", str(path),
        ],
        check=True,
    )  # fmt: skip
    return path


def raw_command(
    binary: str, source: Path, profiles: list[ladder.Profile], out: Path, segment_s: float
) -> list[str]:
    """The hand-written single command: one decode, HLS and MP4 of each rendition via tee."""
    count = len(profiles)
    graph = [f"[0:v]split={count}" + "".join(f"[s{i}]" for i in range(count))]
    for i, profile in enumerate(profiles):
        graph.append(f"[s{i}]scale={profile.width}:{profile.height},format=yuv420p[v{i}]")
    argv = [binary, "-hide_banner", "-loglevel", "error", "-y", "-i", str(source)]
    argv += ["-filter_complex", ";".join(graph)]
    for i in range(count):
        argv += ["-map", f"[v{i}]", "-map", "0:a:0"]
    for i, profile in enumerate(profiles):
        rate = str(profile.bitrate)
        argv += [f"-c:v:{i}", "libx264", f"-b:v:{i}", rate, f"-maxrate:v:{i}", rate]
        argv += [f"-bufsize:v:{i}", str(2 * profile.bitrate)]
    argv += ["-preset", "veryfast", "-force_key_frames", f"expr:gte(t,n_forced*{segment_s:g})"]
    argv += ["-c:a", "aac", "-b:a", "128k", "-flags", "+global_header"]
    slaves = []
    for i, profile in enumerate(profiles):
        folder = out / profile.name
        folder.mkdir(parents=True, exist_ok=True)
        pick = f"select=\\'v:{i},a:{i}\\'"
        slaves.append(
            f"[{pick}:f=hls:hls_time={segment_s:g}:hls_playlist_type=vod:"
            f"hls_segment_filename={folder}/%d.ts]{folder}/index.m3u8"
        )
        slaves.append(f"[{pick}:f=mp4:movflags=+faststart]{out}/{profile.name}.mp4")
    return [*argv, "-f", "tee", "|".join(slaves)]


def per_rendition(
    binary: str, source: Path, profile: ladder.Profile, out: Path, segment_s: float
) -> list[str]:
    """One FFmpeg process for one rendition, as a naive pipeline runs it."""
    folder = out / profile.name
    folder.mkdir(parents=True, exist_ok=True)
    return [
        binary, "-hide_banner", "-loglevel", "error", "-y", "-i", str(source),
        "-vf", f"scale={profile.width}:{profile.height},format=yuv420p",
        "-c:v", "libx264", "-preset", "veryfast", "-b:v", str(profile.bitrate),
        "-force_key_frames", f"expr:gte(t,n_forced*{segment_s:g})",
        "-c:a", "aac", "-b:a", "128k",
        "-f", "hls", "-hls_time", f"{segment_s:g}", "-hls_playlist_type", "vod",
        "-hls_segment_filename", f"{folder}/%d.ts", f"{folder}/index.m3u8",
    ]  # fmt: skip


async def timed(fn: Callable[[], Awaitable[object]], runs: int) -> float:
    """The median wall time of ``runs`` calls."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        await fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


async def run_task(source: Path) -> None:
    """The whole upload task through a real worker, from creation to completion."""
    with tempfile.TemporaryDirectory() as tmp, processes.file_server(source.parent) as files:
        config = settings.Settings(
            data_dir=Path(tmp), allow_private_urls=True, poll_interval_s=0.01, concurrency=1
        )
        store = taskstore.open_task_store(config.resolved_database_url)
        await store.migrate()
        blobs = LocalBlobStore(config.media_dir)
        worker = loop.Worker(config, store, blobs, handlers.registry())
        job = asyncio.create_task(worker.run())
        project = await store.create_project("bench")
        _, task, _ = await service.import_from_url(
            store,
            config,
            project_id=project.id,
            name="bench",
            url=f"{files}/{source.name}",
            options={"staticMp4": True},
        )
        while (current := await store.get_task(task.id)).phase.value not in ("completed", "failed"):
            await asyncio.sleep(0.02)
        worker.stop()
        await job
        await store.close()
        if current.phase.value != "completed":
            raise RuntimeError(f"the task failed: {current.error_message}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=30, help="source length")
    parser.add_argument("--runs", type=int, default=1, help="runs of each, median reported")
    args = parser.parse_args()

    source = make_source(args.seconds)
    spec = probe.probe(source)
    profiles = ladder.resolve_profiles(None, spec)
    segment_s = hls.segment_size_s(None)
    binary = ffmpeg.ffmpeg_binary()
    work = Path(tempfile.mkdtemp(prefix="bench-transcode-"))

    async def ours(mp4: bool) -> None:
        out = work / ("ours-mp4" if mp4 else "ours")
        shutil.rmtree(out, ignore_errors=True)
        await hls.transcode_hls(
            binary=binary,
            source=source,
            spec=spec,
            profiles=profiles,
            out_dir=out / "hls",
            segment_s=segment_s,
            mp4_dir=out / "mp4" if mp4 else None,
        )

    async def raw() -> None:
        out = work / "raw"
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir()
        await asyncio.to_thread(
            subprocess.run, raw_command(binary, source, profiles, out, segment_s), check=True
        )

    async def separate() -> None:
        out = work / "separate"
        shutil.rmtree(out, ignore_errors=True)
        for profile in profiles:
            argv = per_rendition(binary, source, profile, out, segment_s)
            await asyncio.to_thread(subprocess.run, argv, check=True)

    try:
        results = {
            "task (HLS + MP4, end to end)": await timed(lambda: run_task(source), args.runs),
            "ladder HLS + MP4": await timed(lambda: ours(True), args.runs),
            "ladder HLS only": await timed(lambda: ours(False), args.runs),
            "raw ffmpeg, one command (HLS + MP4 via tee)": await timed(raw, args.runs),
            "ffmpeg per rendition (HLS only)": await timed(separate, args.runs),
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)

    raw_s = results["raw ffmpeg, one command (HLS + MP4 via tee)"]
    print(
        f"source: {args.seconds} s 1920x1080 30 fps; ladder: "
        + ", ".join(f"{p.name} {p.width}x{p.height} {p.bitrate // 1000} kb/s" for p in profiles)
    )
    print(f"runs: {args.runs} (median)\n")
    print("| what | wall time (s) | vs raw ffmpeg |")
    print("| --- | ---: | ---: |")
    for name, seconds in results.items():
        print(f"| {name} | {seconds:.2f} | {seconds / raw_s:.2f} |")
    task_s = results["task (HLS + MP4, end to end)"]
    both, alone = results["ladder HLS + MP4"], results["ladder HLS only"]
    print(f"\ntask / raw ffmpeg: {task_s / raw_s:.3f} (aim: <= 1.05)")
    print(f"HLS+MP4 / HLS alone: {both / alone:.3f} (aim: <= 1.05)")


if __name__ == "__main__":
    asyncio.run(main())
