"""How fast is the upload task, against FFmpeg run by hand, on the same machine in the same run?

Usage::

    .venv/bin/python bench/transcode.py [--seconds 30] [--runs 1] [--quality psnr]

Makes (once, in ``bench/.media/``) a ``--seconds`` long 1080p30 source with sound, its index
first (``+faststart``, as web servers serve MP4s), then times, round after round:

1. ``task``: the whole upload task (download from a loopback server, which FFmpeg reads as it
   arrives; probe, hash, the ladder as HLS + MP4 + thumbnails + storyboard, publish) through a
   real worker and SQLite task store, from creation to completion;
2. ``ladder``: our ladder alone, as the task runs it (one FFmpeg process, one decode: HLS,
   thumbnails and storyboard, then the MP4 remux);
3. ``ladder, no previews``: the same without thumbnails and storyboard;
4. variants of our ladder: without the scale cascade that it uses (1080 -> 720 -> 360, each
   rendition scaled from the next larger one; here each is scaled from the source), and with
   fixed thread counts;
5. ``raw ffmpeg``: the best single commands for the same renditions, typed by hand: one decode,
   ``split``, every rendition to HLS and, by the ``tee`` muxer from the same encode, to MP4;
   once with the ladder's own rate control (capped CRF 27, as Livepeer encodes: the same
   pictures, so the one the ratios compare with) and once in plain ABR at each rendition's
   bitrate (the anchor of earlier runs, which spends more bits for a higher PSNR);
6. ``ffmpeg per rendition``: one FFmpeg process per rendition (each decodes the source), one
   after the other, as a naive pipeline does.

For each it prints the wall time (the median of ``--runs``), the CPU time of its FFmpeg
processes (a busy machine changes wall times far more than CPU times), and each rendition's
quality against the source (``--quality psnr``, the default; ``vmaf`` adds libvmaf's score, from
every 5th frame; ``none`` skips it), so that a faster graph cannot win by looking worse.  Then
the ratios the project aims at: the task within 1.05 x the raw command, and the ladder
with thumbnails and storyboard within 1.05 x the ladder without.  It writes nothing but the
source and temporary folders.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# Python puts this script's folder first on the path, where bench/queue.py would shadow the
# standard library's queue module: take it off, and put the project root on.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

from mediatasks import service, settings, taskstore  # noqa: E402
from mediatasks.blobstore.local import LocalBlobStore  # noqa: E402
from mediatasks.media import ffmpeg, hls, ladder, preview, probe  # noqa: E402
from mediatasks.worker import handlers, loop  # noqa: E402
from tests import processes  # noqa: E402

MEDIA = ROOT / "bench" / ".media"


def make_source(seconds: int) -> Path:
    """A 1080p30 H.264 + AAC test source with its index first, made once."""
    path = MEDIA / f"source-1080p-{seconds}s-faststart.mp4"
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
            "-c:a", "aac", "-b:a", "128k", "-shortest", "-movflags", "+faststart", str(path),
        ],
        check=True,
    )  # fmt: skip
    return path


def raw_command(
    binary: str,
    source: Path,
    profiles: list[ladder.Profile],
    out: Path,
    segment_s: float,
    *,
    abr: bool,
) -> list[str]:
    """The hand-written single command: one decode, HLS and MP4 of each rendition via tee.

    ``abr`` encodes at each rendition's bitrate; otherwise with the ladder's capped CRF.
    """
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
        argv += [f"-c:v:{i}", "libx264"]
        if abr:
            argv += [f"-b:v:{i}", rate]
        else:
            argv += [f"-crf:v:{i}", str(profile.quality or ladder.DEFAULT_QUALITY)]
        argv += [f"-maxrate:v:{i}", rate, f"-bufsize:v:{i}", str(2 * profile.bitrate)]
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


def children_cpu_s() -> float:
    """User and system CPU seconds of every finished child process so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@dataclasses.dataclass
class Case:
    """One way of making the ladder: how to run it, and where its renditions land."""

    name: str
    run: Callable[[Path], Awaitable[object]]
    #: ``out`` -> the media playlist of a rendition, by rendition name (``None``: not measured).
    playlist: Callable[[Path, str], Path] | None
    wall_s: list[float] = dataclasses.field(default_factory=list)
    cpu_s: list[float] = dataclasses.field(default_factory=list)
    quality: dict[str, str] = dataclasses.field(default_factory=dict)


async def run_task(source: Path, data: Path) -> None:
    """The whole upload task through a real worker, from creation to completion."""
    with processes.file_server(source.parent) as files:
        config = settings.Settings(
            data_dir=data, allow_private_urls=True, poll_interval_s=0.01, concurrency=1
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
        # Polled every 50 ms: often enough to time it, rarely enough to leave FFmpeg the cores.
        while (current := await store.get_task(task.id)).phase.value not in ("completed", "failed"):
            await asyncio.sleep(0.05)
        worker.stop()
        await job
        await store.close()
        if current.phase.value != "completed":
            raise RuntimeError(f"the task failed: {current.error_message}")


def measure_quality(
    binary: str, source: Path, playlist: Path, profile: ladder.Profile, vmaf: bool
) -> str:
    """``PSNR-Y dB`` (and ``/ VMAF``) of a rendition against the source scaled to its size."""
    size = f"{profile.width}:{profile.height}"
    graph = f"[1:v]scale={size}:flags=bicubic,format=yuv420p[ref];[0:v]format=yuv420p[dist];"
    if vmaf:
        graph += "[dist]split[d1][d2];[ref]split[r1][r2];[d1][r1]psnr;"
        graph += "[d2][r2]libvmaf=n_threads=2:n_subsample=5"
    else:
        graph += "[dist][ref]psnr"
    argv = [binary, "-hide_banner", "-nostdin", "-i", str(playlist), "-i", str(source)]
    argv += ["-lavfi", graph, "-f", "null", "-"]
    stderr = subprocess.run(argv, capture_output=True, text=True, check=True).stderr
    psnr = re.search(r"PSNR y:([0-9.]+|inf)", stderr)
    text = (
        "?"
        if psnr is None
        else psnr.group(1)
        if psnr.group(1) == "inf"
        else f"{float(psnr.group(1)):.2f}"
    )
    if vmaf:
        score = re.search(r"VMAF score: ([0-9.]+)", stderr)
        text += f" / {float(score.group(1)):.2f}" if score else " / ?"
    return text


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=30, help="source length")
    parser.add_argument("--runs", type=int, default=1, help="rounds of every case; medians shown")
    parser.add_argument("--quality", choices=("psnr", "vmaf", "none"), default="psnr")
    parser.add_argument("--no-variants", action="store_true", help="skip the ladder variants")
    args = parser.parse_args()

    source = make_source(args.seconds)
    spec = probe.probe(source)
    profiles = ladder.resolve_profiles(None, spec)
    segment_s = hls.segment_size_s(None)
    binary = ffmpeg.ffmpeg_binary()
    work = Path(tempfile.mkdtemp(prefix="bench-transcode-"))
    defaults = settings.Settings()

    def ours(**options: Any) -> Callable[[Path], Awaitable[object]]:
        previews = options.pop("previews", True)
        options.setdefault("scale_cascade", True)  # as worker.handler.encode_ladder runs it

        async def run(out: Path) -> None:
            plan = None
            if previews:
                plan = preview.plan(
                    out_dir=out,
                    display_width=spec.display_width,
                    display_height=spec.display_height,
                    duration_s=spec.duration_s,
                    segment_s=segment_s,
                    tile_px=defaults.storyboard_tile_px,
                    max_tiles=defaults.storyboard_max_tiles,
                    min_interval_s=defaults.storyboard_interval_s,
                )
            await hls.transcode_hls(
                binary=binary,
                source=source,
                spec=spec,
                profiles=profiles,
                out_dir=out / "hls",
                segment_s=segment_s,
                mp4_dir=out / "mp4",
                previews=plan,
                preset=defaults.x264_preset,
                **options,
            )

        return run

    def raw(abr: bool) -> Callable[[Path], Awaitable[object]]:
        async def run(out: Path) -> None:
            argv = raw_command(binary, source, profiles, out, segment_s, abr=abr)
            await asyncio.to_thread(subprocess.run, argv, check=True)

        return run

    async def separate(out: Path) -> None:
        for profile in profiles:
            argv = per_rendition(binary, source, profile, out, segment_s)
            await asyncio.to_thread(subprocess.run, argv, check=True)

    def ours_playlist(out: Path, name: str) -> Path:
        return out / "hls" / name / hls.MEDIA_PLAYLIST

    def raw_playlist(out: Path, name: str) -> Path:
        return out / name / hls.MEDIA_PLAYLIST

    def task_playlist(out: Path, name: str) -> Path:
        return next((out / "media" / "asset").glob(f"*/hls/{name}/{hls.MEDIA_PLAYLIST}"))

    async def task(out: Path) -> None:
        await run_task(source, out)

    cases = [
        Case("task (end to end: HLS, MP4, thumbnails, storyboard)", task, task_playlist),
        Case("ladder (as the task runs it)", ours(), ours_playlist),
        Case("ladder, no thumbnails or storyboard", ours(previews=False), ours_playlist),
    ]
    if not args.no_variants:
        cases += [
            Case(
                "ladder, each rendition scaled from the source (no cascade)",
                ours(scale_cascade=False),
                ours_playlist,
            ),
            Case("ladder, 1 thread per encoder", ours(threads=1), ours_playlist),
            Case("ladder, 2 threads per encoder", ours(threads=2), ours_playlist),
        ]
    raw_crf = Case("raw ffmpeg, one command, ladder's rate control", raw(abr=False), raw_playlist)
    raw_abr = Case("raw ffmpeg, one command, ABR at each bitrate", raw(abr=True), raw_playlist)
    cases += [raw_crf, raw_abr, Case("ffmpeg per rendition (HLS only, ABR)", separate, None)]

    load = open("/proc/loadavg").read().split()[0]
    try:
        for _ in range(args.runs):
            for case in cases:
                out = work / "out"
                shutil.rmtree(out, ignore_errors=True)
                out.mkdir()
                cpu, started = children_cpu_s(), time.perf_counter()
                await case.run(out)
                case.wall_s.append(time.perf_counter() - started)
                case.cpu_s.append(children_cpu_s() - cpu)
                if args.quality != "none" and case.playlist is not None and not case.quality:
                    for profile in profiles:
                        case.quality[profile.name] = await asyncio.to_thread(
                            measure_quality,
                            binary,
                            source,
                            case.playlist(out, profile.name),
                            profile,
                            args.quality == "vmaf",
                        )
    finally:
        shutil.rmtree(work, ignore_errors=True)

    def wall(case: Case) -> float:
        return statistics.median(case.wall_s)

    # The anchor makes the same pictures: the ladder's own rate control, typed by hand (ABR at
    # the full bitrates spends more bits for a higher PSNR, so it is shown but not compared).
    best_raw = raw_crf
    print(
        f"source: {args.seconds} s 1920x1080 30 fps; ladder: "
        + ", ".join(f"{p.name} {p.width}x{p.height} {p.bitrate // 1000} kb/s" for p in profiles)
    )
    print(f"runs: {args.runs} (median); load average before the run: {load}")
    print(
        f"quality: {'PSNR-Y dB / VMAF' if args.quality == 'vmaf' else 'PSNR-Y dB'} per rendition\n"
    )
    names = [p.name for p in profiles]
    print("| what | wall (s) | FFmpeg CPU (s) | vs raw | " + " | ".join(names) + " |")
    print("| --- | ---: | ---: | ---: | " + " | ".join("---:" for _ in names) + " |")
    for case in cases:
        quality = " | ".join(case.quality.get(name, "") for name in names)
        print(
            f"| {case.name} | {wall(case):.2f} | {statistics.median(case.cpu_s):.2f} | "
            f"{wall(case) / wall(best_raw):.3f} | {quality} |"
        )
    task, ladder_case, bare = cases[0], cases[1], cases[2]
    print(f"\nthe raw command compared: {best_raw.name}")
    print(f"task / raw ffmpeg: {wall(task) / wall(best_raw):.3f} (aim: <= 1.05)")
    cpu_ratio = statistics.median(ladder_case.cpu_s) / statistics.median(bare.cpu_s)
    print(
        f"ladder with thumbnails and storyboard / without: {wall(ladder_case) / wall(bare):.3f} "
        f"(aim: <= 1.05); FFmpeg CPU: {cpu_ratio:.3f}"
    )


if __name__ == "__main__":
    asyncio.run(main())
