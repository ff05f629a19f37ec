"""Transcode a source into an HLS rendition ladder laid out like Livepeer's (reference §5.3).

One FFmpeg process decodes the source once, ``split``s the frames into one scaler per rendition
and encodes each with libx264; the audio is decoded once and AAC-encoded once per rendition,
because the HLS muxer's ``var_stream_map`` needs every variant to own its audio stream (Livepeer
muxes the audio into every rendition's segments as well).  The layout::

    <out_dir>/index.m3u8                 master playlist (written by write_master_playlist)
    <out_dir>/<profile.name>/index.m3u8  VOD media playlist, with #EXT-X-ENDLIST
    <out_dir>/<profile.name>/<n>.ts      segments 0.ts, 1.ts, ...

FFmpeg writes a master playlist too; :func:`write_master_playlist` replaces it with Livepeer's
shape (``NAME="<i>-<profile>"``, ``FRAME-RATE``, Livepeer's ordering) and keeps FFmpeg's
``CODECS`` strings, which only the muxer can compute.

Static MP4s (``<mp4_dir>/<profile.name>.mp4``) come from the same encode: once the ladder is
written, one more FFmpeg process *remuxes* each rendition's segments into an MP4 with ``-c copy``
(:func:`build_mp4_remux_command`), so the MP4 holds exactly the HLS rendition's packets, moved
into another container, at the cost of reading the segments once.  Livepeer's ``low-bitrate``
fallback rendition gets no MP4 (:data:`NO_MP4_RENDITIONS`).  Fragmented MP4 for DASH (and HLS
with fMP4 segments) is remuxed the same way, by :func:`remux_fmp4`.

Rotation: FFmpeg applies the display matrix while decoding (autorotate), so the frames reaching
the scalers are upright, and the profiles, which :mod:`mediatasks.media.ladder` computes from
display dimensions, are the exact output sizes.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Final

from mediatasks.media import ffmpeg, ladder, preview, probe

__all__ = [
    "AUDIO_BITRATE_BPS",
    "DASH_MANIFEST",
    "DEFAULT_SEGMENT_S",
    "FMP4_MASTER_PLAYLIST",
    "MASTER_PLAYLIST",
    "MAX_SEGMENT_S",
    "MEDIA_PLAYLIST",
    "NO_MP4_RENDITIONS",
    "HlsOutput",
    "Rendition",
    "build_fmp4_remux_command",
    "build_ladder_command",
    "build_mp4_remux_command",
    "cascade",
    "master_order",
    "measure_rendition",
    "mp4_renditions",
    "output_frame_rate",
    "remux_fmp4",
    "remux_mp4s",
    "segment_size_s",
    "transcode_hls",
    "write_master_playlist",
]

#: Segment length when the request gives none (Livepeer ``DefaultSegmentSizeSecs``).
DEFAULT_SEGMENT_S: Final = 10.0
#: Longest allowed segment (Livepeer ``MaxSegmentSizeSecs``).
MAX_SEGMENT_S: Final = 20.0
#: AAC bitrate of every rendition's audio.
AUDIO_BITRATE_BPS: Final = 128_000
#: Master playlist file name, in ``out_dir``.
MASTER_PLAYLIST: Final = "index.m3u8"
#: Media playlist file name, in ``out_dir/<profile.name>``.
MEDIA_PLAYLIST: Final = "index.m3u8"
#: The DASH manifest and the fMP4 HLS master playlist that :func:`remux_fmp4` writes.
DASH_MANIFEST: Final = "index.mpd"
FMP4_MASTER_PLAYLIST: Final = "master.m3u8"
#: Renditions that never get a static MP4 (Livepeer skips its fallback rendition).
NO_MP4_RENDITIONS: Final = frozenset({"low-bitrate"})
#: A rendition at least this wide or tall is not listed first: players start with the first.
_LARGE_FIRST_PX: Final = 960
#: AAC above 48 kHz buys nothing for playback.
_MAX_AUDIO_SAMPLE_RATE: Final = 48_000
_H264_PROFILES: Final = {
    "H264Baseline": "baseline",
    "H264Main": "main",
    "H264High": "high",
    "H264ConstrainedHigh": "high",  # plus no B-frames, below
}
_ATTRIBUTE: Final = re.compile(r'([A-Z0-9-]+)=("[^"]*"|[^,]*)')


@dataclass(frozen=True, kw_only=True)
class Rendition:
    """One rendition as written: what the master playlist lists."""

    profile: ladder.Profile
    #: Media playlist path relative to ``out_dir`` (``"720p0/index.m3u8"``).
    playlist: str
    segment_count: int
    duration_s: float
    #: Highest segment bitrate (HLS ``BANDWIDTH``), video and audio.
    peak_bandwidth_bps: int
    #: Whole-rendition bitrate (HLS ``AVERAGE-BANDWIDTH``).
    average_bandwidth_bps: int
    #: The frame rate after the profile's cap, when known.
    frame_rate: float | None = None
    #: RFC 6381 codecs string from FFmpeg's own master playlist, when it wrote one.
    codecs: str | None = None


@dataclass(frozen=True, kw_only=True)
class HlsOutput:
    """The result of :func:`transcode_hls`."""

    #: ``out_dir/index.m3u8``.
    master_playlist: Path
    #: In master-playlist order.
    renditions: tuple[Rendition, ...]
    run: ffmpeg.FFmpegRun
    #: Seconds of media the encode read (the clip's length for a clip).
    duration_s: float = 0.0
    #: ``<mp4_dir>/<name>.mp4`` per rendition that has one, in master-playlist order.
    mp4s: tuple[Path, ...] = ()
    #: The remux that wrote them, when ``mp4_dir`` was given.
    mp4_run: ffmpeg.FFmpegRun | None = None
    #: Thumbnails and storyboard, when a preview plan was given.
    previews: preview.Previews | None = None

    @property
    def speed(self) -> float:
        """FFmpeg's speed: seconds of media encoded per second of wall time (``2.0`` is 2x)."""
        return self.duration_s / self.run.elapsed_s if self.run.elapsed_s > 0 else 0.0


def segment_size_s(target: float | None) -> float:
    """A request's ``targetSegmentSizeSecs`` made usable: 10 when absent or ≤0, at most 20."""
    if target is None or target <= 0:
        return DEFAULT_SEGMENT_S
    return min(float(target), MAX_SEGMENT_S)


def output_frame_rate(profile: ladder.Profile, source_fps: float | None) -> Fraction | None:
    """The frame rate a rendition is *forced* to, or ``None`` to keep the source's.

    A profile's rate is a cap: a 24 fps source stays 24 fps under a 30 fps profile.
    """
    cap = profile.frame_rate
    if cap is None:
        return None
    if source_fps is not None and source_fps <= cap:
        return None
    return cap


def build_ladder_command(
    *,
    binary: str,
    source: Path | str,
    spec: probe.VideoSpec,
    profiles: Sequence[ladder.Profile],
    out_dir: Path,
    segment_s: float,
    preset: str = "veryfast",
    threads: int | None = None,
    clip: tuple[float, float] | None = None,
    previews: preview.Plan | None = None,
    scale_cascade: bool = False,
) -> list[str]:
    """The FFmpeg argv that writes the whole ladder in one process with one decode.

    Give it to :func:`mediatasks.media.ffmpeg.run_ffmpeg`, which adds the progress flags.
    ``profiles`` must come from :func:`mediatasks.media.ladder.resolve_profiles` (even sizes,
    unique names).  ``clip`` is ``(start_s, end_s)`` of the source to keep: input options, so
    FFmpeg decodes from there and cuts exactly, in the same single encode.  With ``previews``,
    the same decode also feeds the thumbnails and the storyboard (:mod:`.preview`).  With
    ``scale_cascade``, a rendition is scaled from the next larger one's frames (1080 -> 720 ->
    360) rather than each from the source: smaller scalers' input (see :func:`cascade`).
    """
    if not profiles:
        raise ValueError("at least one profile is needed")
    for profile in profiles:
        if profile.width % 2 or profile.height % 2:
            raise ValueError(f"profile {profile.name!r} has an odd frame size")
    video = spec.video
    source_fps = video.fps if video is not None else None
    audio = spec.audio
    count = len(profiles)

    parents = cascade(profiles, source_fps) if scale_cascade else [None] * count
    children: dict[int, list[int]] = {}
    for i, parent in enumerate(parents):
        if parent is not None:
            children.setdefault(parent, []).append(i)
    branches = [f"in{i}" for i in range(count) if parents[i] is None]
    if previews is not None:
        branches += ["thumbs_in", "tiles_in"]
    graph = [f"[0:v:0]split={len(branches)}" + "".join(f"[{label}]" for label in branches)]
    for i, profile in enumerate(profiles):
        filters = []
        rate = output_frame_rate(profile, source_fps)
        if rate is not None and parents[i] is None:
            filters.append(f"fps={rate.numerator}/{rate.denominator}")
        filters += [f"scale={profile.width}:{profile.height}", "format=yuv420p"]
        outputs = f"[v{i}]"
        if i in children:
            taps = [f"[c{i}_{child}]" for child in children[i]]
            filters.append(f"split={1 + len(taps)}")
            outputs += "".join(taps)
        source_label = f"in{i}" if parents[i] is None else f"c{parents[i]}_{i}"
        graph.append(f"[{source_label}]{','.join(filters)}{outputs}")
    if previews is not None:
        graph += preview.filter_chains(previews, "thumbs_in", "tiles_in")

    argv = [binary]
    if threads is not None:
        argv += ["-threads", str(threads), "-filter_complex_threads", str(threads)]
    if clip is not None:
        start_s, end_s = clip
        argv += ["-ss", f"{start_s:.3f}", "-t", f"{end_s - start_s:.3f}"]
    argv += ["-i", str(source), "-filter_complex", ";".join(graph)]
    for i in range(count):
        argv += ["-map", f"[v{i}]"]
        if audio is not None:
            argv += ["-map", "0:a:0"]
    argv += ["-map_metadata", "-1", "-map_chapters", "-1"]

    seconds = _number(segment_s)
    argv += ["-c:v", "libx264", "-preset", preset]
    if threads is not None:
        argv += ["-threads", str(threads)]
    # Keyframes on every segment boundary, so that every rendition's segments line up.
    argv += ["-force_key_frames:v", f"expr:gte(t,n_forced*{seconds})"]
    for i, profile in enumerate(profiles):
        argv += _video_options(i, profile, output_frame_rate(profile, source_fps) or source_fps)
    if audio is not None:
        argv += ["-c:a", "aac", "-b:a", str(AUDIO_BITRATE_BPS)]
        argv += ["-ac", str(min(audio.channels or 2, 2))]
        if audio.sample_rate and audio.sample_rate > _MAX_AUDIO_SAMPLE_RATE:
            argv += ["-ar", str(_MAX_AUDIO_SAMPLE_RATE)]

    stream_map = " ".join(
        f"v:{i},a:{i},name:{profile.name}" if audio is not None else f"v:{i},name:{profile.name}"
        for i, profile in enumerate(profiles)
    )
    argv += [
        "-f",
        "hls",
        "-hls_time",
        seconds,
        "-hls_playlist_type",
        "vod",
        "-hls_list_size",
        "0",
        "-hls_segment_type",
        "mpegts",
        "-start_number",
        "0",
        "-hls_segment_filename",
        str(out_dir / "%v" / "%d.ts"),
        "-master_pl_name",
        MASTER_PLAYLIST,
        "-var_stream_map",
        stream_map,
        str(out_dir / "%v" / MEDIA_PLAYLIST),
    ]
    if previews is not None:
        argv += preview.output_args(previews)
    return argv


def cascade(profiles: Sequence[ladder.Profile], source_fps: float | None) -> list[int | None]:
    """For each profile, the index of the profile whose scaled frames it is scaled from.

    That is the smallest rendition at least as wide and as tall, larger, and at the same frame
    rate; ``None`` (scaled from the source) when there is none.
    """
    rates = [output_frame_rate(profile, source_fps) for profile in profiles]
    parents: list[int | None] = []
    for i, profile in enumerate(profiles):
        larger = [
            j
            for j, other in enumerate(profiles)
            if j != i
            and rates[j] == rates[i]
            and other.width >= profile.width
            and other.height >= profile.height
            and other.width * other.height > profile.width * profile.height
        ]
        parents.append(
            min(larger, key=lambda j: profiles[j].width * profiles[j].height, default=None)
        )
    return parents


def mp4_renditions(profiles: Sequence[ladder.Profile]) -> list[ladder.Profile]:
    """The renditions that get a static MP4, in master-playlist order."""
    return [p for p in master_order(profiles) if p.name not in NO_MP4_RENDITIONS]


def build_mp4_remux_command(
    *, binary: str, out_dir: Path, names: Sequence[str], mp4_dir: Path
) -> list[str]:
    """The FFmpeg argv that copies written renditions into ``mp4_dir/<name>.mp4``, no encoding.

    Every output takes its rendition's video and (if any) audio with ``-c copy``; the AAC
    bitstream filter the MP4 muxer needs is inserted by FFmpeg itself.  ``+faststart`` puts the
    index first, so a player can start before the download ends.
    """
    if not names:
        raise ValueError("at least one rendition is needed")
    argv = [binary]
    for name in names:
        argv += ["-i", str(out_dir / name / MEDIA_PLAYLIST)]
    for index, name in enumerate(names):
        argv += ["-map", f"{index}:v:0", "-map", f"{index}:a:0?", "-c", "copy"]
        argv += ["-map_metadata", "-1", "-movflags", "+faststart", "-f", "mp4"]
        argv.append(str(mp4_dir / f"{name}.mp4"))
    return argv


async def remux_mp4s(
    *,
    binary: str,
    out_dir: Path,
    profiles: Sequence[ladder.Profile],
    mp4_dir: Path,
    duration_s: float | None = None,
) -> tuple[tuple[Path, ...], ffmpeg.FFmpegRun | None]:
    """Write the static MP4s of a written ladder (see :func:`build_mp4_remux_command`).

    Returns the files in master-playlist order and the run (``None`` when no rendition gets an
    MP4).
    """
    names = [profile.name for profile in mp4_renditions(profiles)]
    if not names:
        return (), None
    mp4_dir.mkdir(parents=True, exist_ok=True)
    argv = build_mp4_remux_command(binary=binary, out_dir=out_dir, names=names, mp4_dir=mp4_dir)
    run = await ffmpeg.run_ffmpeg(argv, duration_s=duration_s)
    return tuple(mp4_dir / f"{name}.mp4" for name in names), run


def build_fmp4_remux_command(
    *,
    binary: str,
    out_dir: Path,
    names: Sequence[str],
    fmp4_dir: Path,
    segment_s: float,
    with_audio: bool,
) -> list[str]:
    """The FFmpeg argv that copies written renditions into fragmented MP4, no encoding.

    One DASH presentation (``index.mpd``) with a video representation per rendition and one
    audio representation (the first rendition's: every rendition's audio is the same encode),
    plus an HLS master playlist (``master.m3u8``) over the same fMP4 segments.  The renditions'
    keyframes sit on every segment boundary, so ``segment_s`` cuts them cleanly.
    """
    if not names:
        raise ValueError("at least one rendition is needed")
    argv = [binary]
    for name in names:
        argv += ["-i", str(out_dir / name / MEDIA_PLAYLIST)]
    for index in range(len(names)):
        argv += ["-map", f"{index}:v:0"]
    sets = "id=0,streams=v"
    if with_audio:
        argv += ["-map", "0:a:0"]
        sets += " id=1,streams=a"
    # MPEG-TS codec tags mean nothing to MP4: name the MP4 ones.
    argv += ["-c", "copy", "-tag:v", "avc1", "-tag:a", "mp4a", "-map_metadata", "-1"]
    argv += [
        "-f",
        "dash",
        "-seg_duration",
        _number(segment_s),
        "-use_template",
        "1",
        "-use_timeline",
        "1",
        "-hls_playlist",
        "1",
        "-hls_master_name",
        FMP4_MASTER_PLAYLIST,
        "-adaptation_sets",
        sets,
        "-init_seg_name",
        "init-$RepresentationID$.m4s",
        "-media_seg_name",
        "chunk-$RepresentationID$-$Number%05d$.m4s",
        str(fmp4_dir / DASH_MANIFEST),
    ]
    return argv


async def remux_fmp4(
    *,
    binary: str,
    out_dir: Path,
    profiles: Sequence[ladder.Profile],
    fmp4_dir: Path,
    segment_s: float,
    with_audio: bool,
    duration_s: float | None = None,
) -> ffmpeg.FFmpegRun:
    """Write ``fmp4_dir/index.mpd`` and ``fmp4_dir/master.m3u8`` from a written ladder."""
    fmp4_dir.mkdir(parents=True, exist_ok=True)
    names = [profile.name for profile in master_order(profiles)]
    argv = build_fmp4_remux_command(
        binary=binary,
        out_dir=out_dir,
        names=names,
        fmp4_dir=fmp4_dir,
        segment_s=segment_s,
        with_audio=with_audio,
    )
    return await ffmpeg.run_ffmpeg(argv, duration_s=duration_s)


def master_order(profiles: Sequence[ladder.Profile]) -> list[ladder.Profile]:
    """Livepeer's master-playlist order.

    Highest bitrate first (larger frame first on ties); then, if that first rendition is
    960 px or more in either dimension, it trades places with the second so that players,
    which start with the first variant, do not begin with a large download.
    """
    ordered = sorted(profiles, key=lambda p: (p.bitrate, p.width * p.height), reverse=True)
    first = ordered[0] if ordered else None
    if (
        first is not None
        and len(ordered) >= 2
        and max(first.width, first.height) >= _LARGE_FIRST_PX
    ):
        ordered[0], ordered[1] = ordered[1], ordered[0]
    return ordered


def measure_rendition(
    out_dir: Path,
    profile: ladder.Profile,
    *,
    source_fps: float | None = None,
    codecs: str | None = None,
) -> Rendition:
    """Read a written rendition's media playlist and segment sizes.

    Bandwidths fall back to the profile's bitrate (plus audio) when nothing was written.
    """
    playlist = f"{profile.name}/{MEDIA_PLAYLIST}"
    segments = _read_media_playlist(out_dir / playlist)
    duration_s = sum(seconds for _, seconds in segments)
    peak_bps = 0
    total_bits = 0
    for uri, seconds in segments:
        bits = (out_dir / profile.name / uri).stat().st_size * 8
        total_bits += bits
        if seconds > 0:
            peak_bps = max(peak_bps, round(bits / seconds))
    nominal_bps = profile.bitrate + AUDIO_BITRATE_BPS
    rate = output_frame_rate(profile, source_fps)
    frame_rate = float(rate) if rate is not None else source_fps
    return Rendition(
        profile=profile,
        playlist=playlist,
        segment_count=len(segments),
        duration_s=duration_s,
        peak_bandwidth_bps=peak_bps or nominal_bps,
        average_bandwidth_bps=round(total_bits / duration_s) if duration_s > 0 else nominal_bps,
        frame_rate=frame_rate,
        codecs=codecs,
    )


def write_master_playlist(
    out_dir: Path, profiles: Sequence[ladder.Profile], *, source_fps: float | None = None
) -> tuple[Rendition, ...]:
    """Write ``out_dir/index.m3u8`` in Livepeer's shape; return the renditions in its order.

    Each variant reads ``#EXT-X-STREAM-INF:BANDWIDTH=…,AVERAGE-BANDWIDTH=…,RESOLUTION=WxH,
    FRAME-RATE=…,CODECS="…",NAME="<i>-<name>"`` followed by ``<name>/index.m3u8``; the order is
    :func:`master_order`.  Bandwidths are measured from the written segments.
    """
    master = out_dir / MASTER_PLAYLIST
    codecs_by_uri = _read_codecs(master)
    renditions = tuple(
        measure_rendition(
            out_dir,
            profile,
            source_fps=source_fps,
            codecs=codecs_by_uri.get(f"{profile.name}/{MEDIA_PLAYLIST}"),
        )
        for profile in master_order(profiles)
    )
    lines = ["#EXTM3U", "#EXT-X-VERSION:3"]
    for index, rendition in enumerate(renditions):
        profile = rendition.profile
        attributes = [
            f"BANDWIDTH={rendition.peak_bandwidth_bps}",
            f"AVERAGE-BANDWIDTH={rendition.average_bandwidth_bps}",
            f"RESOLUTION={profile.width}x{profile.height}",
        ]
        if rendition.frame_rate:
            attributes.append(f"FRAME-RATE={rendition.frame_rate:.3f}")
        if rendition.codecs:
            attributes.append(f'CODECS="{rendition.codecs}"')
        attributes.append(f'NAME="{index}-{profile.name}"')
        lines += [f"#EXT-X-STREAM-INF:{','.join(attributes)}", rendition.playlist]
    master.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return renditions


async def transcode_hls(
    *,
    binary: str,
    source: Path | str,
    spec: probe.VideoSpec,
    profiles: Sequence[ladder.Profile],
    out_dir: Path,
    segment_s: float,
    on_progress: Callable[[float], Awaitable[None]] | None = None,
    on_command: Callable[[list[str]], None] | None = None,
    preset: str = "veryfast",
    threads: int | None = None,
    mp4_dir: Path | None = None,
    clip: tuple[float, float] | None = None,
    previews: preview.Plan | None = None,
    stdin_feed: Callable[[asyncio.StreamWriter], Awaitable[None]] | None = None,
    scale_cascade: bool = False,
) -> HlsOutput:
    """Run :func:`build_ladder_command`, then :func:`write_master_playlist`.

    ``source`` ``"pipe:0"`` with a ``stdin_feed`` reads the source as the feed writes it (see
    :func:`mediatasks.media.ffmpeg.run_ffmpeg`).

    With ``mp4_dir``, :func:`remux_mp4s` then copies the renditions into static MP4s there.
    With ``previews``, the same encode writes thumbnails and storyboard tiles, and
    :func:`mediatasks.media.preview.finish` then writes their VTTs and sprite sheets.
    With ``clip`` (``start_s, end_s``), only that part of the source is transcoded.
    ``on_command`` is told the exact command line of the encode before FFmpeg starts (for the
    task's timeline); ``on_progress`` follows the encode (the remux is a small fraction of it).
    Raises what :func:`mediatasks.media.ffmpeg.run_ffmpeg` raises; cancelling it stops FFmpeg.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    argv = build_ladder_command(
        binary=binary,
        source=source,
        spec=spec,
        profiles=profiles,
        out_dir=out_dir,
        segment_s=segment_s,
        preset=preset,
        threads=threads,
        clip=clip,
        previews=previews,
        scale_cascade=scale_cascade,
    )
    if previews is not None:
        await asyncio.to_thread(preview.prepare, previews)
    if on_command is not None:
        on_command(ffmpeg.prepare_argv(argv))
    duration_s = spec.duration_s if clip is None else clip[1] - clip[0]
    run = await ffmpeg.run_ffmpeg(
        argv, duration_s=duration_s, on_progress=on_progress, stdin_feed=stdin_feed
    )
    source_fps = spec.video.fps if spec.video is not None else None
    renditions = await asyncio.to_thread(
        write_master_playlist, out_dir, profiles, source_fps=source_fps
    )
    mp4s: tuple[Path, ...] = ()
    mp4_run = None
    if mp4_dir is not None:
        mp4s, mp4_run = await remux_mp4s(
            binary=binary,
            out_dir=out_dir,
            profiles=profiles,
            mp4_dir=mp4_dir,
            duration_s=duration_s,
        )
    written_previews = None
    if previews is not None:
        segments = await asyncio.to_thread(_read_media_playlist, out_dir / renditions[0].playlist)
        written_previews = await preview.finish(
            previews,
            binary=binary,
            segments_s=[seconds for _, seconds in segments],
            duration_s=duration_s,
        )
    return HlsOutput(
        master_playlist=out_dir / MASTER_PLAYLIST,
        renditions=renditions,
        run=run,
        mp4s=mp4s,
        mp4_run=mp4_run,
        previews=written_previews,
        duration_s=duration_s,
    )


def _video_options(
    index: int, profile: ladder.Profile, frame_rate: float | Fraction | None
) -> list[str]:
    """libx264 options for output video stream ``index``."""
    stream = f"v:{index}"
    bitrate = str(profile.bitrate)
    options: list[str] = []
    if profile.quality is not None:
        # Capped CRF: constant quality, never above the profile's bitrate.
        options += [f"-crf:{stream}", str(profile.quality)]
    else:
        options += [f"-b:{stream}", bitrate]
    options += [f"-maxrate:{stream}", bitrate, f"-bufsize:{stream}", str(2 * profile.bitrate)]
    if profile.profile is not None:
        options += [f"-profile:{stream}", _H264_PROFILES[profile.profile]]
        if profile.profile == "H264ConstrainedHigh":
            options += [f"-bf:{stream}", "0"]
    gop_s = profile.gop_s
    if gop_s == 0.0:
        options += [f"-g:{stream}", "1"]
    elif gop_s is not None and frame_rate:
        options += [f"-g:{stream}", str(max(1, round(gop_s * float(frame_rate))))]
    return options


def _read_media_playlist(path: Path) -> list[tuple[str, float]]:
    """``(uri, seconds)`` of each segment of a media playlist; empty if it does not exist."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    segments: list[tuple[str, float]] = []
    seconds: float | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("#EXTINF:"):
            seconds = float(line[len("#EXTINF:") :].split(",", 1)[0])
        elif line and not line.startswith("#") and seconds is not None:
            segments.append((line, seconds))
            seconds = None
    return segments


def _read_codecs(master: Path) -> dict[str, str]:
    """Variant URI to ``CODECS`` from a master playlist (FFmpeg's); empty if there is none."""
    try:
        text = master.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    codecs: dict[str, str] = {}
    pending: str | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("#EXT-X-STREAM-INF:"):
            attributes = dict(_ATTRIBUTE.findall(line[len("#EXT-X-STREAM-INF:") :]))
            pending = attributes.get("CODECS", "").strip('"') or None
        elif line and not line.startswith("#"):
            if pending:
                codecs[line] = pending
            pending = None
    return codecs


def _number(value: float) -> str:
    """``10.0`` as ``"10"``, ``2.5`` as ``"2.5"``: FFmpeg option and expression syntax."""
    return f"{value:g}"
