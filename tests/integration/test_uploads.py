"""Direct uploads, repeated imports and idempotency keys, in process on each task store."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mediatasks import errors, service, settings, taskstore
from mediatasks.blobstore import local
from tests import inprocess, mediagen

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return mediagen.make_video(tmp_path_factory.mktemp("src") / "c.mp4", seconds=1).read_bytes()


@pytest.fixture
async def client(store: taskstore.TaskStore, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    config = settings.Settings(data_dir=tmp_path, poll_interval_s=0.05, heartbeat_interval_s=0.2)
    async with inprocess.running(store, config) as running:
        yield running.client


async def wait_phase(client: httpx.AsyncClient, task_id: str, *phases: str) -> dict[str, Any]:
    async with asyncio.timeout(60):
        while True:
            task: dict[str, Any] = (await client.get(f"/task/{task_id}")).json()
            if task["status"]["phase"] in phases:
                return task
            await asyncio.sleep(0.05)


async def test_request_upload_then_put(client: httpx.AsyncClient, clip: bytes) -> None:
    created = await client.post("/asset/request-upload", json={"name": "direct.mp4"})
    assert created.status_code == 200
    body = created.json()
    assert body["asset"]["status"]["phase"] == "uploading"
    assert body["asset"]["source"] == {"type": "directUpload"}
    assert "/asset/upload/tus?token=" in body["tusEndpoint"]
    task_id = body["task"]["id"]
    waiting = (await client.get(f"/task/{task_id}")).json()
    assert waiting["status"]["phase"] == "pending"
    await asyncio.sleep(0.3)
    assert (await client.get(f"/task/{task_id}")).json()["status"]["phase"] == "pending"

    put = await client.put(body["url"], content=clip, headers={"Authorization": ""})
    assert put.status_code == 200, put.text
    done = await wait_phase(client, task_id, "completed", "failed")
    assert done["status"]["phase"] == "completed", done
    asset = (await client.get(f"/asset/{body['asset']['id']}")).json()
    assert asset["status"]["phase"] == "ready"
    assert asset["size"] == len(clip)
    # Hashed while the ladder was encoded, from the file where the upload left it.
    assert asset["hash"] == [{"hash": hashlib.sha256(clip).hexdigest(), "algorithm": "sha256"}]
    source = await client.get(f"http://testserver/media/asset/{asset['playbackId']}/video")
    assert source.content == clip
    again = await client.put(body["url"], content=clip)
    assert again.status_code == 422
    assert again.json() == {"errors": ["asset has already been uploaded"]}


async def test_upload_urls_are_signed(client: httpx.AsyncClient) -> None:
    body = (await client.post("/asset/request-upload", json={"name": "x"})).json()
    forged = body["url"].replace("token=", "token=0")
    assert (await client.put(forged, content=b"x")).status_code == 403
    other = (await client.post("/asset/request-upload", json={"name": "y"})).json()
    token = other["url"].split("token=")[1]
    asset_id = body["asset"]["id"]
    patched = await client.patch(
        f"/asset/upload/tus/{asset_id}?token={token}",
        content=b"x",
        headers={"Content-Type": "application/offset+octet-stream", "Upload-Offset": "0"},
    )
    assert patched.status_code == 403
    for bad in (
        {},
        {"name": "x", "creatorId": {"value": "no type"}},
        {"name": "x", "storage": {"ipfs": {"spec": {}, "junk": 1}}},
        {"name": "x", "storage": {"ipfs": {"spec": {"nftMetadataTemplate": "poster"}}}},
        {"name": "x", "targetSegmentSizeSecs": 4e107},
        {"name": "x", "encryption": {"encryptedKey": "k"}},
    ):
        response = await client.post("/asset/request-upload", json=bad)
        assert response.status_code == 422, (bad, response.text)
        assert response.json()["errors"]


async def test_a_repeated_url_import_returns_the_first(client: httpx.AsyncClient) -> None:
    body = {"name": "a", "url": "https://media.example.com/a.mp4"}
    first = await client.post("/asset/upload/url", json=body)
    second = await client.post("/asset/upload/url", json=body)
    assert (first.status_code, second.status_code) == (201, 200)
    assert second.json()["asset"]["id"] == first.json()["asset"]["id"]
    assert second.json()["task"]["id"] == first.json()["task"]["id"]
    other = await client.post("/asset/upload/url", json={**body, "url": body["url"] + "?v=2"})
    assert other.status_code == 201


async def test_idempotency_keys(client: httpx.AsyncClient) -> None:
    body = {"name": "i", "url": "https://media.example.com/i.mp4"}
    key = {"Idempotency-Key": "k-1"}
    first = await client.post("/asset/request-upload", json={"name": "i"}, headers=key)
    again = await client.post("/asset/request-upload", json={"name": "i"}, headers=key)
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    clash = await client.post("/asset/request-upload", json={"name": "other"}, headers=key)
    assert clash.status_code == 409 and clash.json()["errors"]
    fresh = await client.post("/asset/request-upload", json={"name": "i"})
    assert fresh.json()["asset"]["id"] != first.json()["asset"]["id"]
    url_key = {"Idempotency-Key": "k-2"}
    created = await client.post("/asset/upload/url", json=body, headers=url_key)
    replay = await client.post("/asset/upload/url", json=body, headers=url_key)
    assert created.status_code == replay.status_code == 201
    assert replay.json()["task"]["id"] == created.json()["task"]["id"]
    invalid = await client.post(
        "/asset/upload/url", json={"name": "x"}, headers={"Idempotency-Key": "k-3"}
    )
    assert invalid.status_code == 422
    tasks = (await client.get("/task", params={"limit": 100})).json()
    assert len(tasks) == 3  # request-upload twice (one replayed), one import


async def test_upload_urls_answer_browsers_of_any_origin(client: httpx.AsyncClient) -> None:
    """The signed upload URLs speak CORS (a page on another site uploads with tus-js-client):
    preflights are answered, every answer (a refusal too) carries the origin header and exposes
    the tus headers; the rest of ``/api`` (keyed by a bearer token) does not."""
    origin = {"Origin": "http://127.0.0.1:9"}
    body = (await client.post("/asset/request-upload", json={"name": "cors.mp4"})).json()
    preflight = await client.options(
        body["tusEndpoint"],
        headers={
            **origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "tus-resumable, upload-length, upload-metadata",
        },
    )
    assert preflight.status_code == 200, preflight.text
    assert preflight.headers["access-control-allow-origin"] == "*"
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert "Upload-Length" in preflight.headers["access-control-allow-headers"]
    created = await client.post(
        body["tusEndpoint"],
        headers={**origin, "Tus-Resumable": "1.0.0", "Upload-Length": "10", "Authorization": ""},
    )
    assert created.status_code == 201, created.text
    assert created.headers["access-control-allow-origin"] == "*"
    exposed = created.headers["access-control-expose-headers"]
    assert {"Location", "Upload-Offset", "Tus-Resumable"} <= set(exposed.split(", "))
    forged = body["url"].replace("token=", "token=x")
    refused = await client.put(forged, content=b"x", headers={**origin, "Authorization": ""})
    assert refused.status_code == 403
    assert refused.json() == {"errors": ["invalid or expired signed upload URL"]}
    assert refused.headers["access-control-allow-origin"] == "*"
    keyed = await client.get("/task", headers=origin)
    assert keyed.status_code == 200
    assert "access-control-allow-origin" not in keyed.headers


async def test_a_pending_upload_is_found_only_while_its_bytes_are_awaited(
    store: taskstore.TaskStore, tmp_path: Path
) -> None:
    """What a reloaded page asks before it goes on with an upload it had begun."""
    config = settings.Settings(data_dir=tmp_path)
    mine = (await store.create_project("mine")).id
    theirs = (await store.create_project("theirs")).id
    asset, task = await service.request_upload(
        store, config, project_id=mine, name="begun", options={}
    )
    found, its_task = await service.pending_upload(store, project_id=mine, asset_id=asset.id)
    assert (found.id, its_task.id) == (asset.id, task.id)
    with pytest.raises(errors.NotFound):
        await service.pending_upload(store, project_id=theirs, asset_id=asset.id)
    with pytest.raises(errors.NotFound):
        await service.pending_upload(store, project_id=mine, asset_id="no-such-asset")

    await store.schedule(task.id)  # every byte arrived
    with pytest.raises(errors.Conflict):
        await service.pending_upload(store, project_id=mine, asset_id=asset.id)

    deleted, _ = await service.request_upload(
        store, config, project_id=mine, name="deleted", options={}
    )
    blobs = local.LocalBlobStore(tmp_path / "blobs")
    await service.delete_asset(store, blobs, deleted.id, mine)
    with pytest.raises(errors.NotFound):
        await service.pending_upload(store, project_id=mine, asset_id=deleted.id)
