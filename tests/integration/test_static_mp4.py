"""Static MP4s of upload assets, by Livepeer's rules, served with range requests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import av
import httpx
import pytest

from mediatasks import assets, settings, taskstore
from mediatasks.api.livepeer import wire
from mediatasks.api.runtime import Runtime
from tests import inprocess, mediagen, processes

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("sources")
    mediagen.make_video(root / "short.mp4", seconds=2, width=1280, height=720)
    mediagen.make_video(root / "small.mp4", seconds=1, width=320, height=180)
    # Just over Livepeer's two minutes, tiny and silent so that it transcodes in a moment.
    mediagen.make_video(root / "long.mp4", seconds=121, width=192, height=108, fps=5, audio=False)
    with processes.file_server(root) as base:
        yield base


@pytest.fixture
async def service(
    store: taskstore.TaskStore, tmp_path: Path
) -> AsyncIterator[tuple[httpx.AsyncClient, Runtime]]:
    config = settings.Settings(
        data_dir=tmp_path / "data",
        allow_private_urls=True,
        lease_s=10,
        heartbeat_interval_s=0.5,
        poll_interval_s=0.05,
        shutdown_grace_s=0,
    )
    async with inprocess.running(store, config) as running:
        yield running.client, running.runtime


async def imported(client: httpx.AsyncClient, **request: Any) -> dict[str, Any]:
    """Import by URL, wait for the task, return the asset."""
    created = await client.post("/asset/upload/url", json=request)
    assert created.status_code == 201, created.text
    task_id = created.json()["task"]["id"]
    async with asyncio.timeout(90):
        while True:
            task = (await client.get(f"/task/{task_id}")).json()
            if task["status"]["phase"] in ("completed", "failed"):
                break
            await asyncio.sleep(0.05)
    assert task["status"]["phase"] == "completed", task
    asset: dict[str, Any] = (await client.get(f"/asset/{created.json()['asset']['id']}")).json()
    return asset


def published(runtime: Runtime, playback_id: str) -> list[str]:
    root = runtime.settings.media_dir / "asset" / playback_id
    return sorted(p.relative_to(root).as_posix() for p in root.iterdir() if p.is_file())


async def test_static_mp4s_next_to_the_ladder_served_with_ranges(
    service: tuple[httpx.AsyncClient, Runtime], sources: str
) -> None:
    client, runtime = service
    asset = await imported(client, name="short", url=f"{sources}/short.mp4", staticMp4=True)
    playback = asset["playbackId"]
    folder = runtime.settings.media_dir / "asset" / playback
    assert published(runtime, playback) == ["360p0.mp4", "720p0.mp4", "video"]
    assert "staticMp4" not in asset  # write-only in the spec: asked for, never shown

    mp4 = folder / "720p0.mp4"
    mp4_url = f"http://testserver/media/asset/{playback}/720p0.mp4"
    whole = await client.get(mp4_url)
    assert whole.status_code == 200 and whole.headers["content-type"] == "video/mp4"
    assert whole.content == mp4.read_bytes()
    with av.open(str(mp4)) as container:
        video = container.streams.video[0]
        assert (video.codec_context.width, video.codec_context.height) == (1280, 720)
        assert container.duration is not None
        assert container.duration / 1_000_000 == pytest.approx(2.0, abs=0.1)

    # Range requests, on the MP4 and on downloadUrl: a player seeks, a download resumes.
    part = await client.get(mp4_url, headers={"Range": "bytes=0-99"})
    assert part.status_code == 206
    assert part.content == mp4.read_bytes()[:100]
    assert part.headers["content-range"] == f"bytes 0-99/{mp4.stat().st_size}"
    tail = await client.get(mp4_url, headers={"Range": "bytes=-10"})
    assert tail.status_code == 206 and tail.content == mp4.read_bytes()[-10:]
    # An upload downloads as it was sent (Studio's downloadUrl is the source, §5.3).
    assert asset["downloadUrl"] == f"http://testserver/media/asset/{playback}/video"
    source = (folder / "video").read_bytes()
    part = await client.get(asset["downloadUrl"], headers={"Range": "bytes=0-99"})
    assert part.status_code == 206 and part.content == source[:100]
    assert part.headers["content-range"] == f"bytes 0-99/{len(source)}"


def test_download_url_of_other_sources_is_the_best_mp4() -> None:
    now = datetime.now(UTC)
    clip = assets.Asset(
        id="a",
        project_id="p",
        name="clip",
        playback_id="abcd",
        phase=assets.AssetPhase.READY,
        source={"type": "clip", "playbackId": "efgh"},
        options={},
        media={"source": "asset/abcd/video", "download": "asset/abcd/720p0.mp4"},
        created_at=now,
        updated_at=now,
    )
    body = wire.asset_json(clip, base_url="http://host")
    assert body["downloadUrl"] == "http://host/media/asset/abcd/720p0.mp4"
    plain = wire.asset_json(clip.evolve(media={"source": "asset/abcd/video"}), base_url="http://h")
    assert plain["downloadUrl"] == "http://h/media/asset/abcd/video"


async def test_a_short_source_gets_mp4s_without_asking_but_low_bitrate_does_not(
    service: tuple[httpx.AsyncClient, Runtime], sources: str
) -> None:
    client, runtime = service
    asset = await imported(client, name="small", url=f"{sources}/small.mp4")
    # The default ladder of a tiny source is low-bitrate plus the source size (§5.2).
    assert published(runtime, asset["playbackId"]) == ["180p0.mp4", "video"]


async def test_a_source_over_two_minutes_gets_mp4s_only_when_asked(
    service: tuple[httpx.AsyncClient, Runtime], sources: str
) -> None:
    client, runtime = service
    profiles = [{"name": "tiny", "bitrate": 100_000}]  # one rendition at the source size
    request = {"url": f"{sources}/long.mp4", "profiles": profiles, "targetSegmentSizeSecs": 20}
    plain = await imported(client, name="long", **request)
    assert published(runtime, plain["playbackId"]) == ["video"]
    asked = await imported(client, name="long mp4", staticMp4=True, **request)
    assert published(runtime, asked["playbackId"]) == ["tiny.mp4", "video"]
