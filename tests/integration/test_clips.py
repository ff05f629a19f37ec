"""Clips: a range of an asset cut into a new asset with its own ladder, in one encode."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mediatasks import settings, taskstore
from mediatasks.api.runtime import Runtime
from tests import hlscheck, inprocess, mediagen, processes

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def source_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("clip-src")
    mediagen.make_video(root / "four.mp4", seconds=4)
    with processes.file_server(root) as base:
        yield f"{base}/four.mp4"


@pytest.fixture
async def service(
    store: taskstore.TaskStore, tmp_path: Path
) -> AsyncIterator[tuple[httpx.AsyncClient, Runtime, str]]:
    config = settings.Settings(
        data_dir=tmp_path, allow_private_urls=True, poll_interval_s=0.05, heartbeat_interval_s=0.2
    )
    other = await store.create_project("other")
    _, other_secret = await store.create_api_key(other.id, "k")
    async with inprocess.running(store, config) as running:
        yield running.client, running.runtime, other_secret


async def done(client: httpx.AsyncClient, task_id: str) -> dict[str, Any]:
    async with asyncio.timeout(60):
        while True:
            task: dict[str, Any] = (await client.get(f"/task/{task_id}")).json()
            if task["status"]["phase"] in ("completed", "failed"):
                return task
            await asyncio.sleep(0.05)


async def test_clip_of_an_asset(
    service: tuple[httpx.AsyncClient, Runtime, str], source_url: str
) -> None:
    client, runtime, other_secret = service
    created = (await client.post("/asset/upload/url", json={"name": "s", "url": source_url})).json()
    assert (await done(client, created["task"]["id"]))["status"]["phase"] == "completed"
    playback_id = created["asset"]["playbackId"]

    body = {"playbackId": playback_id, "startTime": 1000, "endTime": 3000, "name": "middle"}
    clipped = await client.post("/clip", json=body)
    assert clipped.status_code == 200, clipped.text
    asset = clipped.json()["asset"]
    assert asset["source"]["type"] == "clip" and asset["name"] == "middle"
    task = await done(client, clipped.json()["task"]["id"])
    assert task["status"]["phase"] == "completed", task
    assert task["type"] == "clip"
    assert task["params"]["clip"]["clipStrategy"]["startTime"] == 1000
    ready = (await client.get(f"/asset/{asset['id']}")).json()
    assert ready["status"]["phase"] == "ready"
    # The clip's asset describes the clip itself: its own file, probed and hashed.
    assert ready["videoSpec"]["duration"] == pytest.approx(2.0, abs=0.1)
    source = (await client.get(f"/asset/{created['asset']['id']}")).json()
    assert ready["videoSpec"]["bitrate"] != source["videoSpec"]["bitrate"]
    assert ready["downloadUrl"].endswith(".mp4")
    mp4 = runtime.settings.media_dir / ready["downloadUrl"].split("/media/", 1)[1]
    assert ready["size"] == mp4.stat().st_size
    assert ready["hash"] == [
        {"hash": hashlib.sha256(mp4.read_bytes()).hexdigest(), "algorithm": "sha256"}
    ]
    master = runtime.settings.media_dir / "asset" / asset["playbackId"] / "hls" / "index.m3u8"
    for rendition in hlscheck.renditions(master):
        assert abs(rendition.duration_s - 2.0) < 0.1, rendition

    for bad, status in (
        ({**body, "endTime": 1000}, 422),
        ({**body, "endTime": 500}, 422),
        ({**body, "endTime": 9000}, 422),
        ({**body, "startTime": -5}, 422),
        ({**body, "playbackId": "nope"}, 404),
    ):
        response = await client.post("/clip", json=bad)
        assert response.status_code == status, (bad, response.text)
        assert response.json()["errors"]
    foreign = await client.post(
        "/clip", json=body, headers={"Authorization": f"Bearer {other_secret}"}
    )
    assert foreign.status_code == 404
    waiting = (
        await client.post("/asset/upload/url", json={"name": "w", "url": source_url + "?x"})
    ).json()
    not_ready = await client.post(
        "/clip", json={**body, "playbackId": waiting["asset"]["playbackId"]}
    )
    assert not_ready.status_code == 422

    # Without endTime a clip runs to the end; a clip can itself be clipped.
    tail = await client.post("/clip", json={"playbackId": playback_id, "startTime": 3000})
    assert tail.status_code == 200, tail.text
    tail_task = await done(client, tail.json()["task"]["id"])
    assert tail_task["params"]["clip"]["clipStrategy"]["endTime"] == pytest.approx(4000, abs=50)
    tail_asset = (await client.get(f"/asset/{tail.json()['asset']['id']}")).json()
    assert tail_asset["videoSpec"]["duration"] == pytest.approx(1.0, abs=0.1)
    again = await client.post(
        "/clip", json={"playbackId": asset["playbackId"], "startTime": 0, "endTime": 1000}
    )
    assert again.status_code == 200, again.text
    assert (await done(client, again.json()["task"]["id"]))["status"]["phase"] == "completed"
