"""The upload task with real FFmpeg, through the API and a worker in this process: bad sources fail
with a clear message and leave nothing behind; a cancelled transcode is really stopped."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mediatasks import settings, taskstore
from mediatasks.api.runtime import Runtime
from mediatasks.worker.handlers import upload
from tests import inprocess, mediagen, processes

pytestmark = pytest.mark.slow


@contextlib.contextmanager
def silent_server() -> Iterator[str]:
    """A server that accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError, OSError):
                held.append(listener.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/video.mp4"
    finally:
        stop.set()
        thread.join()
        for conn in held:
            conn.close()
        listener.close()


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("sources")
    mediagen.make_video(root / "good.mp4", seconds=2)
    mediagen.make_video(root / "long.mp4", seconds=12, width=1280, height=720)
    mediagen.make_text_file(root / "text.mp4")
    mediagen.make_truncated_mp4(root / "truncated.mp4")
    (root / "empty.mp4").write_bytes(b"")
    with processes.file_server(root) as base:
        yield base


def ffmpeg_reading_a_pipe(workdir: Path) -> bool:
    """Whether an FFmpeg of ours writes into ``workdir`` while reading its input from a pipe."""
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv = cmdline.read_bytes().split(b"\0")
        except OSError:  # gone meanwhile
            continue
        if b"pipe:0" in argv and any(str(workdir).encode() in arg for arg in argv):
            return True
    return False


@pytest.fixture(scope="module")
def faststart(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """6 s of 720p with its index first (as web servers serve MP4s): about 6 MB."""
    path = tmp_path_factory.mktemp("faststart") / "fast.mp4"
    mediagen.make_video(
        path,
        seconds=6,
        width=1280,
        height=720,
        extra_args=["-crf", "4", "-movflags", "+faststart"],
    )
    data = path.read_bytes()
    assert len(data) > 2 * upload.STREAM_AFTER_BYTES
    return data


@pytest.fixture
async def service(
    store: taskstore.TaskStore, tmp_path: Path
) -> AsyncIterator[tuple[httpx.AsyncClient, Runtime]]:
    config = settings.Settings(
        data_dir=tmp_path / "data",
        allow_private_urls=True,
        download_timeout_s=0.5,
        retry_backoff_s=[0.05],
        lease_s=10,
        heartbeat_interval_s=0.5,
        poll_interval_s=0.05,
        shutdown_grace_s=0,
    )
    async with inprocess.running(store, config) as running:
        yield running.client, running.runtime


async def finish(client: httpx.AsyncClient, task_id: str, timeout_s: float = 60) -> dict[str, Any]:
    async with asyncio.timeout(timeout_s):
        while True:
            task: dict[str, Any] = (await client.get(f"/task/{task_id}")).json()
            if task["status"]["phase"] in ("completed", "failed", "cancelled"):
                return task
            await asyncio.sleep(0.05)


def media_files(runtime: Runtime) -> list[Path]:
    root = runtime.settings.media_dir
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


@pytest.mark.parametrize(
    ("name", "message", "retries"),
    [
        ("missing.mp4", "404", 0),
        ("text.mp4", "failed to probe or open file", 0),
        ("truncated.mp4", "failed to probe or open file", 0),
        ("empty.mp4", "empty", 0),
    ],
)
async def test_bad_sources_fail_clearly(
    service: tuple[httpx.AsyncClient, Runtime],
    sources: str,
    name: str,
    message: str,
    retries: int,
) -> None:
    client, runtime = service
    created = await client.post(
        "/asset/upload/url", json={"name": name, "url": f"{sources}/{name}"}
    )
    assert created.status_code == 201
    task = await finish(client, created.json()["task"]["id"])
    assert task["status"]["phase"] == "failed"
    assert message in task["status"]["errorMessage"]
    assert task["status"]["retries"] == retries
    asset = (await client.get(f"/asset/{created.json()['asset']['id']}")).json()
    assert asset["status"]["phase"] == "failed"
    assert asset["status"]["errorMessage"] == task["status"]["errorMessage"]
    assert media_files(runtime) == []
    assert not any(runtime.settings.work_dir.iterdir())


async def test_a_source_that_never_answers_is_retried_then_fails(
    service: tuple[httpx.AsyncClient, Runtime],
) -> None:
    client, runtime = service
    with silent_server() as url:
        created = await client.post("/asset/upload/url", json={"name": "silent", "url": url})
        task = await finish(client, created.json()["task"]["id"])
    assert task["status"]["phase"] == "failed"
    assert (
        "did not answer" in task["status"]["errorMessage"]
        or "time" in task["status"]["errorMessage"]
    )
    assert task["status"]["retries"] == 2
    assert media_files(runtime) == []


async def test_a_good_source_completes(
    service: tuple[httpx.AsyncClient, Runtime], sources: str
) -> None:
    client, runtime = service
    created = await client.post(
        "/asset/upload/url",
        json={
            "name": "good",
            "url": f"{sources}/good.mp4",
            "profiles": [{"name": "small", "width": 320, "height": 180, "bitrate": 300_000}],
            "targetSegmentSizeSecs": 1,
        },
    )
    task = await finish(client, created.json()["task"]["id"])
    assert task["status"]["phase"] == "completed", task
    spec = task["output"]["upload"]["assetSpec"]
    assert spec["id"] == created.json()["asset"]["id"]
    assert spec["videoSpec"]["duration"] == pytest.approx(2.0, abs=0.1)
    names = sorted(
        p.relative_to(runtime.settings.media_dir).as_posix() for p in media_files(runtime)
    )
    playback = created.json()["asset"]["playbackId"]
    assert f"asset/{playback}/hls/index.m3u8" in names
    assert f"asset/{playback}/hls/small/index.m3u8" in names
    assert sum(name.endswith(".ts") for name in names) == 2  # 1 s segments of a 2 s source


async def test_thumbnails_and_storyboard_are_served_and_go_with_the_asset(
    service: tuple[httpx.AsyncClient, Runtime], sources: str
) -> None:
    client, runtime = service
    created = (
        await client.post(
            "/asset/upload/url",
            json={"name": "good", "url": f"{sources}/good.mp4", "targetSegmentSizeSecs": 1},
        )
    ).json()
    task = await finish(client, created["task"]["id"])
    assert task["status"]["phase"] == "completed", task
    asset_id, playback = created["asset"]["id"], created["asset"]["playbackId"]
    media = (await runtime.store.get_asset(asset_id)).media
    prefix = f"asset/{playback}"
    assert media["thumbnails"] == {
        "vtt": f"{prefix}/thumbnails/thumbnails.vtt",
        "first": f"{prefix}/thumbnails/keyframes_0.jpg",
        "count": 2,
        "width": 640,
        "height": 360,
    }
    board = media["storyboard"]
    assert board["vtt"] == f"{prefix}/storyboard/storyboard.vtt"
    assert board["sheets"] == [f"{prefix}/storyboard/storyboard_0.jpg"]
    assert board["tiles"] == 2 and board["intervalS"] == 1.0

    served = "http://testserver/media"
    vtt = await client.get(f"{served}/{media['thumbnails']['vtt']}")
    assert vtt.status_code == 200 and vtt.headers["content-type"].startswith("text/vtt")
    assert vtt.text.split("\n\n")[1:] == [
        "00:00:00.000 --> 00:00:01.000\nkeyframes_0.jpg",
        "00:00:01.000 --> 00:00:02.000\nkeyframes_1.jpg\n",
    ]
    for key in (f"{prefix}/thumbnails/keyframes_1.jpg", *board["sheets"]):
        image = await client.get(f"{served}/{key}")
        assert image.status_code == 200 and image.headers["content-type"] == "image/jpeg"
        assert image.content[:3] == b"\xff\xd8\xff"
    storyboard = await client.get(f"{served}/{board['vtt']}")
    assert "storyboard_0.jpg#xywh=160,0,160,90" in storyboard.text
    # Playback info lists them, as Livepeer's does.
    info = (await client.get(f"/playback/{playback}")).json()
    listed = {source["hrn"]: source for source in info["meta"]["source"]}
    assert listed["Thumbnails"]["type"] == "text/vtt"
    assert listed["Thumbnails"]["url"].endswith(f"/media/{media['thumbnails']['vtt']}")
    assert listed["Thumbnail (JPEG)"]["url"].endswith(f"/media/{media['thumbnails']['first']}")

    assert (await client.delete(f"/asset/{asset_id}")).status_code == 204
    assert media_files(runtime) == []
    assert (await client.get(f"{served}/{board['sheets'][0]}")).status_code == 404


async def test_ffmpeg_reads_a_faststart_mp4_while_it_downloads(
    service: tuple[httpx.AsyncClient, Runtime], faststart: bytes
) -> None:
    client, runtime = service
    # About 3 s to download: 256 KiB every 0.12 s.
    with processes.trickle_server(faststart, chunk_bytes=256 * 1024, pause_s=0.12) as url:
        created = await client.post(
            "/asset/upload/url",
            json={"name": "fast", "url": url, "targetSegmentSizeSecs": 2},
        )
        task_id = created.json()["task"]["id"]
        encoding_while_downloading = False
        async with asyncio.timeout(60):
            while True:
                workdir = runtime.settings.work_dir / task_id / "1"  # the first attempt's
                partial = workdir / "source"
                if ffmpeg_reading_a_pipe(workdir) and partial.exists():
                    encoding_while_downloading |= partial.stat().st_size < len(faststart)
                task = (await client.get(f"/task/{task_id}")).json()
                if task["status"]["phase"] in ("completed", "failed"):
                    break
                await asyncio.sleep(0.05)
    assert task["status"]["phase"] == "completed", task
    assert encoding_while_downloading, "FFmpeg should have started before the last byte arrived"
    asset = (await client.get(f"/asset/{created.json()['asset']['id']}")).json()
    assert asset["size"] == len(faststart)
    assert asset["hash"][0]["hash"] == hashlib.sha256(faststart).hexdigest()
    assert asset["videoSpec"]["duration"] == pytest.approx(6.0, abs=0.1)
    playback = asset["playbackId"]
    stored = runtime.settings.media_dir / "asset" / playback / "video"
    assert stored.read_bytes() == faststart
    names = sorted(p.name for p in (stored.parent / "hls" / "720p0").iterdir())
    assert names == ["0.ts", "1.ts", "2.ts", "index.m3u8"]


async def test_cancel_while_ffmpeg_reads_the_download_stops_both(
    service: tuple[httpx.AsyncClient, Runtime], faststart: bytes
) -> None:
    client, runtime = service
    # About 10 s to download: FFmpeg is reading the pipe when the task is cancelled.
    with processes.trickle_server(faststart, chunk_bytes=128 * 1024, pause_s=0.2) as url:
        created = await client.post("/asset/upload/url", json={"name": "stop", "url": url})
        task_id = created.json()["task"]["id"]
        workdir = runtime.settings.work_dir / task_id
        async with asyncio.timeout(60):
            while not ffmpeg_reading_a_pipe(workdir):
                await asyncio.sleep(0.05)
        cancelled = await client.post(f"/task/{task_id}/cancel")
        assert cancelled.json()["status"]["phase"] == "cancelled"
        loop_time = asyncio.get_running_loop().time
        started = loop_time()
        async with asyncio.timeout(5):
            while workdir.exists() or ffmpeg_reading_a_pipe(workdir):
                await asyncio.sleep(0.05)
        print(f"\ncancel to FFmpeg gone and work folder removed: {loop_time() - started:.2f} s")
        assert loop_time() - started < 2.5
    assert media_files(runtime) == []


async def test_a_download_that_breaks_while_ffmpeg_reads_it_is_retried(
    service: tuple[httpx.AsyncClient, Runtime], faststart: bytes
) -> None:
    client, runtime = service
    half = len(faststart) // 2
    with processes.trickle_server(
        faststart, chunk_bytes=256 * 1024, pause_s=0.02, stop_at=half
    ) as url:
        created = await client.post("/asset/upload/url", json={"name": "cut", "url": url})
        task = await finish(client, created.json()["task"]["id"])
    assert task["status"]["phase"] == "failed", task
    assert task["status"]["retries"] == 2, "a lost connection is worth retrying"
    assert "before the whole file arrived" in task["status"]["errorMessage"], task
    timeline = (await client.get(f"/task/{task['id']}/events")).json()
    assert "pipe:0" in json.dumps(timeline), "FFmpeg was reading the download as it arrived"
    assert media_files(runtime) == []


async def test_cancel_kills_the_transcode_and_removes_its_output(
    service: tuple[httpx.AsyncClient, Runtime], sources: str
) -> None:
    client, runtime = service
    created = await client.post(
        "/asset/upload/url",
        json={"name": "long", "url": f"{sources}/long.mp4", "targetSegmentSizeSecs": 1},
    )
    task_id = created.json()["task"]["id"]
    async with asyncio.timeout(60):
        while (await client.get(f"/task/{task_id}")).json()["status"].get("progress", 0) < 0.4:
            await asyncio.sleep(0.05)
    workdir = runtime.settings.work_dir / task_id
    assert any(workdir.rglob("*.ts")), "the transcode should have written segments"
    cancelled = await client.post(f"/task/{task_id}/cancel")
    assert cancelled.json()["status"]["phase"] == "cancelled"
    loop_time = asyncio.get_running_loop().time
    started = loop_time()
    async with asyncio.timeout(5):
        while workdir.exists():
            await asyncio.sleep(0.05)
    print(f"\ncancel to work folder removed: {loop_time() - started:.2f} s")
    assert loop_time() - started < 2.5
    assert media_files(runtime) == []
    asset = (await client.get(f"/asset/{created.json()['asset']['id']}")).json()
    assert asset["status"]["phase"] == "failed"
    assert "playbackUrl" not in asset


async def test_loopback_source_is_refused_at_creation(
    store: taskstore.TaskStore, tmp_path: Path, sources: str
) -> None:
    config = settings.Settings(data_dir=tmp_path, allow_private_urls=False)
    async with inprocess.running(store, config, worker=False) as running:
        client = running.client
        response = await client.post(
            "/asset/upload/url", json={"name": "x", "url": f"{sources}/good.mp4"}
        )
    assert response.status_code == 422
    assert "loopback" in response.json()["errors"][0]
    assert await store.count_tasks() == 0
