"""Videos as people really make them, through the whole upload task with real FFmpeg.

Each one either completes with a playable ladder (right orientation, right duration) or fails at
once, unretriable, with a clear message; none leaves output behind.  The task store does not
matter here, so these run on SQLite only.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import av
import httpx
import pytest

from mediatasks import settings, taskstore
from mediatasks.api.runtime import Runtime
from tests import hlscheck, inprocess, mediagen, processes, vttcheck

pytestmark = pytest.mark.slow


def _video(**kw: Any) -> Callable[[Path], Path]:
    return lambda path: mediagen.make_video(path, **kw)


#: name -> (file name, maker, expected display size or None for a failure, duration)
CORPUS: dict[str, tuple[str, Callable[[Path], Path], tuple[int, int] | None, float]] = {
    "truncated": ("truncated.mp4", mediagen.make_truncated_mp4, None, 0),
    "zero-byte": ("empty.mp4", lambda p: (p.write_bytes(b""), p)[1], None, 0),
    "text named .mp4": ("text.mp4", mediagen.make_text_file, None, 0),
    "audio only": ("audio.m4a", lambda p: mediagen.make_audio(p, seconds=2), None, 0),
    "no audio": ("silent.mp4", _video(seconds=2, audio=False), (640, 360), 2),
    "one second": ("short.mp4", _video(seconds=1), (640, 360), 1),
    "odd dimensions": (
        "odd.mp4",
        _video(seconds=2, width=853, height=479, extra_args=["-pix_fmt", "yuv444p"]),
        (853, 479),
        2,
    ),
    "rotated phone video": (
        "phone.mp4",
        _video(seconds=2, width=640, height=360, display_rotation_deg=90),
        (360, 640),
        2,
    ),
    "variable frame rate": (
        "vfr.mp4",
        _video(
            seconds=3,
            extra_args=["-vf", "select='not(between(n,20,50))'", "-fps_mode", "vfr"],
        ),
        (640, 360),
        3,
    ),
    "10-bit": (
        "tenbit.mp4",
        _video(seconds=2, extra_args=["-pix_fmt", "yuv420p10le"]),
        (640, 360),
        2,
    ),
    "HEVC": (
        "hevc.mp4",
        _video(seconds=2, codec="libx265", extra_args=["-tag:v", "hvc1"]),
        (640, 360),
        2,
    ),
    "VP9 in WebM": (
        "vp9.webm",
        _video(seconds=2, codec="libvpx-vp9", extra_args=["-c:a", "libopus"]),
        (640, 360),
        2,
    ),
    "MOV with PCM audio": (
        "pcm.mov",
        _video(seconds=2, extra_args=["-c:a", "pcm_s16le"]),
        (640, 360),
        2,
    ),
    "two frames an hour apart": ("hour.mp4", mediagen.make_sparse_video, None, 0),
    "ten hours in a few kilobytes": (
        "tenhours.mp4",
        lambda p: mediagen.make_sparse_video(p, gap_s=36_000, width=320, height=240),
        None,
        0,
    ),
    "interlaced": (
        "interlaced.mp4",
        _video(seconds=2, extra_args=["-vf", "tinterlace=interleave_top", "-flags", "+ilme+ildct"]),
        (640, 360),
        2,
    ),
}


#: Files refused by a limit before any encoding, and what their message says.
REFUSED_BEFORE_ENCODING = {
    "two frames an hour apart": "bits per second",
    "ten hours in a few kilobytes": "bits per second",
}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("wild")
    for file_name, make, _, _ in CORPUS.values():
        make(root / file_name)
    with processes.file_server(root) as base:
        yield base


@pytest.fixture
async def service(
    sqlite_url: str, tmp_path: Path
) -> AsyncIterator[tuple[httpx.AsyncClient, Runtime]]:
    store = taskstore.open_task_store(sqlite_url)
    await store.migrate()
    config = settings.Settings(
        data_dir=tmp_path / "data",
        allow_private_urls=True,
        retry_backoff_s=[0.05],
        poll_interval_s=0.05,
        heartbeat_interval_s=0.5,
    )
    async with inprocess.running(store, config) as running:
        yield running.client, running.runtime
    await store.close()


async def assert_not_encoded(client: httpx.AsyncClient, task_id: str) -> None:
    """No ladder command on the task's timeline: the task failed before FFmpeg encoded."""
    timeline = (await client.get(f"/task/{task_id}/events")).json()
    assert "-filter_complex" not in json.dumps(timeline), timeline


@pytest.mark.parametrize("name", list(CORPUS))
async def test_input_from_the_wild(
    service: tuple[httpx.AsyncClient, Runtime], corpus: str, name: str
) -> None:
    client, runtime = service
    file_name, _, size, duration_s = CORPUS[name]
    body = {"name": name, "url": f"{corpus}/{file_name}", "targetSegmentSizeSecs": 1}
    created = (await client.post("/asset/upload/url", json=body)).json()
    task_id = created["task"]["id"]
    async with asyncio.timeout(90):
        while True:
            task = (await client.get(f"/task/{task_id}")).json()
            if task["status"]["phase"] in ("completed", "failed"):
                break
            await asyncio.sleep(0.05)
    media_root = runtime.settings.media_dir
    if size is None:
        assert task["status"]["phase"] == "failed", task
        assert task["status"]["retries"] == 0, "an unusable file must not be retried"
        message = task["status"]["errorMessage"]
        assert message and "internal error" not in message, message
        assert not media_root.exists() or not any(media_root.rglob("*.*"))
        if name in REFUSED_BEFORE_ENCODING:
            assert REFUSED_BEFORE_ENCODING[name] in message, message
            await assert_not_encoded(client, task_id)
        print(f"\n{name}: failed as it should: {message}")
        return
    assert task["status"]["phase"] == "completed", task
    playback_id = created["asset"]["playbackId"]
    master = media_root / "asset" / playback_id / "hls" / "index.m3u8"
    renditions = hlscheck.renditions(master)
    assert renditions
    width, height = size
    for rendition in renditions:
        assert (rendition.width >= rendition.height) == (width >= height), rendition
        assert abs(rendition.duration_s - duration_s) < 0.5, rendition
    largest = max(renditions, key=lambda r: r.width * r.height)
    assert abs(largest.width - width) <= 1 and abs(largest.height - height) <= 1, largest
    # Thumbnails and a storyboard, upright, whose cues cover the whole video.
    previews = media_root / "asset" / playback_id
    for vtt in (previews / "thumbnails/thumbnails.vtt", previews / "storyboard/storyboard.vtt"):
        cues = vttcheck.read(vtt)
        vttcheck.assert_cover_without_gaps(cues, renditions[0].duration_s)
        for _, _, image in cues:
            assert (vtt.parent / image.split("#", 1)[0]).is_file(), image
    with av.open(str(previews / "thumbnails/keyframes_0.jpg")) as thumbnail:
        picture = thumbnail.streams.video[0].codec_context
        assert (picture.width >= picture.height) == (width >= height)
    print(f"\n{name}: {[(r.name, r.width, r.height, round(r.duration_s, 2)) for r in renditions]}")


#: name -> (request fields, settings, what the message says)
LIMITS: dict[str, tuple[dict[str, Any], dict[str, Any], str]] = {
    "a segment every 0.1 ms": ({"targetSegmentSizeSecs": 0.0001}, {}, "20,000 segments"),
    "longer than the maximum duration": ({}, {"max_source_duration_s": 1.5}, "longer than"),
    "more frames than its bytes can hold": (
        {},
        {"min_source_bytes_per_frame": 1_000_000},
        "for 60 frames of video",
    ),
    "renditions larger than the output limit": (
        {"profiles": [{"name": "big", "width": 640, "height": 360, "bitrate": 200_000_000}]},
        {},
        "more than the limit of 50.0 MiB",
    ),
}


@pytest.mark.parametrize("name", list(LIMITS))
async def test_limits_fail_the_task_before_encoding(
    sqlite_url: str, tmp_path: Path, corpus: str, name: str
) -> None:
    fields, overrides, fragment = LIMITS[name]
    store = taskstore.open_task_store(sqlite_url)
    await store.migrate()
    config = settings.Settings(
        data_dir=tmp_path / "data",
        allow_private_urls=True,
        poll_interval_s=0.05,
        max_output_bytes=50 * 1024**2,
        **overrides,
    )
    async with inprocess.running(store, config) as running:
        body = {"name": name, "url": f"{corpus}/silent.mp4", **fields}  # 2 s
        created = await running.client.post("/asset/upload/url", json=body)
        assert created.status_code == 201, created.text
        task = await running.finish(created.json()["task"]["id"])
        assert task["status"]["phase"] == "failed", task
        assert task["status"]["retries"] == 0
        message = task["status"]["errorMessage"]
        assert fragment in message, message
        print(f"\n{name}: failed before encoding: {message}")
        await assert_not_encoded(running.client, task["id"])
    await store.close()
