"""Exports end to end in one process: the real store on each backend, a worker, the API through
ASGI, and real HTTP servers on loopback as the custom export target and the IPFS service (whose
CIDs come from the reference JavaScript importer)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mediatasks import app, assets, settings, taskstore
from mediatasks.api.runtime import Runtime
from mediatasks.blobstore.memory import MemoryBlobStore
from mediatasks.ipfs import cid, nft
from mediatasks.webhooks import sender
from mediatasks.worker import handlers, loop
from tests.exporttargets import IpfsNode, Target, export_target, ipfs_node
from tests.ipfsref import reference_cids, require_reference
from tests.receiver import receiving

GATEWAY = "https://gateway.example"


def clip_bytes(size: int = 3 * cid.CHUNK_SIZE + 1000) -> bytes:
    """Stands for a video: the export sends bytes, whatever they are."""
    return random.Random(size).randbytes(size)


class Service:
    def __init__(
        self,
        runtime: Runtime,
        client: httpx.AsyncClient,
        other: httpx.AsyncClient,
        project: str,
        tmp_path: Path,
    ) -> None:
        self.runtime = runtime
        self.client = client
        #: A key of another project.
        self.other = other
        self.project = project
        self.tmp_path = tmp_path

    @property
    def store(self) -> taskstore.TaskStore:
        return self.runtime.store

    async def ready_asset(self, data: bytes | None = None, *, ready: bool = True) -> str:
        """An asset whose source file is ``data``: ready, as an upload would have left it."""
        data = clip_bytes() if data is None else data
        asset_id = str(uuid.uuid4())
        playback_id = assets.new_playback_id(asset_id)
        key = f"asset/{playback_id}/video"
        staged = self.tmp_path / f"{asset_id}.mp4"
        staged.write_bytes(data)
        await self.runtime.blobs.put_file(key, staged)
        await self.store.create_asset(
            taskstore.NewAsset(
                id=asset_id,
                project_id=self.project,
                name="clip.mp4",
                playback_id=playback_id,
                phase=assets.AssetPhase.WAITING,
                source={"type": "url", "url": "https://example.com/clip.mp4"},
                options={},
            ),
            # A type no worker runs, so that this test completes it with the media it wants.
            taskstore.NewTask(
                project_id=self.project, type="fixture", params={}, output_asset_id=asset_id
            ),
        )
        if ready:
            [claimed] = await self.store.claim("fixture", types=["fixture"], limit=1, lease_s=30)
            assert claimed.lease_token is not None
            await self.store.complete(
                claimed.id,
                claimed.lease_token,
                output={"upload": {}},
                asset_media={"source": key, "size": len(data)},
            )
        return asset_id

    async def finish(self, task_id: str, timeout_s: float = 30) -> dict[str, Any]:
        async with asyncio.timeout(timeout_s):
            while True:
                task: dict[str, Any] = (await self.client.get(f"/task/{task_id}")).json()
                if task["status"]["phase"] in ("completed", "failed", "cancelled"):
                    return task
                await asyncio.sleep(0.05)

    async def asset(self, asset_id: str) -> dict[str, Any]:
        response = await self.client.get(f"/asset/{asset_id}")
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]

    def reference_cid(self, data: bytes) -> str:
        path = self.tmp_path / f"ref-{uuid.uuid4().hex}"
        path.write_bytes(data)
        [found] = reference_cids([path])
        return found


@pytest.fixture
def node() -> Iterator[IpfsNode]:
    require_reference()
    with ipfs_node() as running:
        yield running


@pytest.fixture
def target() -> Iterator[Target]:
    with export_target() as running:
        yield running


def _settings(tmp_path: Path, **overrides: Any) -> settings.Settings:
    values: dict[str, Any] = {
        "data_dir": tmp_path / "data",
        "allow_private_urls": True,
        "poll_interval_s": 0.05,
        "heartbeat_interval_s": 0.2,
        "lease_s": 10,
        "retry_backoff_s": [0.05],
        "shutdown_grace_s": 0,
        "export_timeout_s": 5,
        "ipfs_gateway_url": GATEWAY,
        "webhook_poll_interval_s": 0.05,
        **overrides,
    }
    return settings.Settings(**values)


@contextlib.asynccontextmanager
async def running(store: taskstore.TaskStore, config: settings.Settings) -> AsyncIterator[Service]:
    """The API, a worker and a webhook sender over ``store``, with keys of two projects."""
    runtime = Runtime(settings=config, store=store, blobs=MemoryBlobStore())
    project = await store.create_project("p")
    _, secret = await store.create_api_key(project.id, "k")
    other_project = await store.create_project("other")
    _, other_secret = await store.create_api_key(other_project.id, "k")
    worker = loop.Worker(config, store, runtime.blobs, handlers.registry())
    hooks = sender.Sender(config, store)
    jobs = [asyncio.create_task(worker.run()), asyncio.create_task(hooks.run())]
    application = app.create_app(config, with_worker=False, runtime=runtime)
    transport = httpx.ASGITransport(app=application)
    base_url = "http://testserver/api"
    try:
        async with (
            httpx.AsyncClient(
                transport=transport,
                base_url=base_url,
                headers={"Authorization": f"Bearer {secret}"},
            ) as client,
            httpx.AsyncClient(
                transport=transport,
                base_url=base_url,
                headers={"Authorization": f"Bearer {other_secret}"},
            ) as other,
        ):
            yield Service(runtime, client, other, project.id, config.data_dir.parent)
    finally:
        worker.stop()
        hooks.stop()
        await asyncio.gather(*jobs)


@pytest.fixture
async def service(
    store: taskstore.TaskStore, tmp_path: Path, node: IpfsNode
) -> AsyncIterator[Service]:
    async with running(store, _settings(tmp_path, ipfs_api_url=node.url)) as started:
        yield started


# -- custom URL ------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["PUT", "POST"])
async def test_custom_export_sends_the_file_with_its_headers(
    service: Service, target: Target, method: str
) -> None:
    data = clip_bytes()
    asset_id = await service.ready_asset(data)
    headers = {"X-Upload-Token": "t0k", "Content-Type": "video/mp4", "Authorization": "Bearer s"}
    response = await service.client.post(
        f"/asset/{asset_id}/export",
        json={"custom": {"url": target.url, "method": method, "headers": headers}},
    )
    assert response.status_code == 201, response.text
    created = response.json()["task"]
    assert created["type"] == "export" and created["inputAssetId"] == asset_id
    assert created["params"]["export"]["custom"]["headers"]["Authorization"] == "***"
    task = await service.finish(created["id"])
    assert task["status"]["phase"] == "completed", task
    assert task["output"] == {"export": {}}
    [received] = target.requests
    assert received.method == method and received.path == "/upload"
    assert received.body == data
    assert received.headers["x-upload-token"] == "t0k"
    assert received.headers["content-type"] == "video/mp4"
    assert received.headers["authorization"] == "Bearer s"
    assert received.headers["content-length"] == str(len(data))
    asset = await service.asset(asset_id)
    assert "storage" not in asset  # a custom export does not store the asset anywhere


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Token": "a\r\nX-Injected: 1"},
        {"X-Token": "a\nb"},
        {"X-Token": "nul\x00"},
        {"X-Token": "caf\u00e9"},
        {"X Token": "space in the name"},
        {"X-Token:": "colon in the name"},
    ],
)
async def test_headers_http_cannot_carry_are_refused_at_creation(
    service: Service, target: Target, headers: dict[str, str]
) -> None:
    asset_id = await service.ready_asset()
    response = await service.client.post(
        f"/asset/{asset_id}/export", json={"custom": {"url": target.url, "headers": headers}}
    )
    assert response.status_code == 422, response.text
    [message] = response.json()["errors"]
    assert "header" in message and "headers" in message.split(":")[0]
    listed = (await service.client.get("/task")).json()
    assert [t for t in listed if t["type"] == "export"] == []
    assert target.requests == []


async def test_a_4xx_fails_the_export_at_once(service: Service, target: Target) -> None:
    target.status = 403
    asset_id = await service.ready_asset()
    response = await service.client.post(
        f"/asset/{asset_id}/export", json={"custom": {"url": target.url}}
    )
    task = await service.finish(response.json()["task"]["id"])
    assert task["status"]["phase"] == "failed"
    assert task["status"]["retries"] == 0
    assert "answered 403 Forbidden" in task["status"]["errorMessage"]
    assert target.url in task["status"]["errorMessage"]
    assert len(target.requests) == 1


async def test_a_5xx_is_retried_then_fails(service: Service, target: Target) -> None:
    target.status = 503
    asset_id = await service.ready_asset()
    response = await service.client.post(
        f"/asset/{asset_id}/export", json={"custom": {"url": target.url, "method": "put"}}
    )
    task = await service.finish(response.json()["task"]["id"])
    assert task["status"]["phase"] == "failed"
    assert task["status"]["retries"] == 2
    assert "answered 503 Service Unavailable" in task["status"]["errorMessage"]
    assert len(target.requests) == 3
    assert all(received.method == "PUT" for received in target.requests)


async def test_progress_is_reported_while_sending(service: Service, target: Target) -> None:
    target.read_delay_s = 0.03  # 64 KiB each 30 ms: about a second for 2 MB
    asset_id = await service.ready_asset(clip_bytes(2 * 1024 * 1024))
    response = await service.client.post(
        f"/asset/{asset_id}/export", json={"custom": {"url": target.url}}
    )
    task_id = response.json()["task"]["id"]
    task = await service.finish(task_id)
    assert task["status"]["phase"] == "completed"
    events = await service.store.list_events(task_id)
    seen = [e.progress for e in events if e.name == "progress" and e.progress is not None]
    assert any(0 < p < 1 for p in seen), seen
    assert seen == sorted(seen)


async def test_a_private_target_is_refused_unless_allowed(
    store: taskstore.TaskStore, tmp_path: Path, target: Target
) -> None:
    async with running(store, _settings(tmp_path, allow_private_urls=False)) as service:
        asset_id = await service.ready_asset()
        response = await service.client.post(
            f"/asset/{asset_id}/export", json={"custom": {"url": target.url}}
        )
    assert response.status_code == 422
    assert "loopback" in response.json()["errors"][0]
    assert target.requests == []


# -- IPFS ------------------------------------------------------------------------------------------


async def test_ipfs_export_gives_the_reference_cid(service: Service, node: IpfsNode) -> None:
    data = clip_bytes(5 * cid.CHUNK_SIZE + 7)
    asset_id = await service.ready_asset(data)
    response = await service.client.post(f"/asset/{asset_id}/export", json={"ipfs": {}})
    assert response.status_code == 201, response.text
    task_id = response.json()["task"]["id"]
    status = (await service.asset(asset_id))["storage"]["status"]
    assert status["phase"] in ("waiting", "processing")  # the worker may have it already
    assert status["tasks"] == {"pending": task_id}
    task = await service.finish(task_id)
    assert task["status"]["phase"] == "completed", task
    expected = service.reference_cid(data)
    added, metadata = node.adds
    assert added.service == "kubo" and added.data == data and added.cid == expected
    assert added.query["cid-version"] == "1" and added.query["raw-leaves"] == "true"
    assert added.query["chunker"] == "size-262144"
    # The NFT metadata of the default ("file") template is pinned after the video.
    assert json.loads(metadata.data) == {
        "name": "clip.mp4",
        "description": 'Livepeer video from asset "clip.mp4"',
        "image": nft.IMAGE_URL,
        "animation_url": f"ipfs://{expected}",
        "properties": {"video": f"ipfs://{expected}"},
    }
    metadata_cid = service.reference_cid(metadata.data)
    assert metadata.cid == metadata_cid
    assert task["output"] == {
        "export": {
            "ipfs": {
                "videoFileCid": expected,
                "videoFileUrl": f"ipfs://{expected}",
                "videoFileGatewayUrl": f"{GATEWAY}/ipfs/{expected}",
                "nftMetadataCid": metadata_cid,
                "nftMetadataUrl": f"ipfs://{metadata_cid}",
                "nftMetadataGatewayUrl": f"{GATEWAY}/ipfs/{metadata_cid}",
            }
        }
    }
    storage = (await service.asset(asset_id))["storage"]
    assert storage["status"] == {"phase": "ready", "tasks": {"last": task_id}}
    assert storage["ipfs"]["cid"] == expected
    assert storage["ipfs"]["gatewayUrl"] == f"{GATEWAY}/ipfs/{expected}"
    assert storage["ipfs"]["spec"] == {}
    assert storage["ipfs"]["nftMetadata"] == {
        "cid": metadata_cid,
        "url": f"ipfs://{metadata_cid}",
        "gatewayUrl": f"{GATEWAY}/ipfs/{metadata_cid}",
    }


async def test_player_nft_metadata_with_overrides(service: Service, node: IpfsNode) -> None:
    asset_id = await service.ready_asset()
    playback_id = (await service.asset(asset_id))["playbackId"]
    spec = {
        "nftMetadataTemplate": "player",
        "nftMetadata": {"name": "My NFT", "image": None, "properties": {"edition": 3}},
    }
    response = await service.client.post(f"/asset/{asset_id}/export", json={"ipfs": spec})
    assert response.status_code == 201, response.text
    assert response.json()["task"]["params"] == {"export": {"ipfs": spec}}
    task = await service.finish(response.json()["task"]["id"])
    assert task["status"]["phase"] == "completed", task
    video, metadata = node.adds
    assert json.loads(metadata.data) == {
        "name": "My NFT",
        "description": 'Livepeer video from asset "clip.mp4"',
        "animation_url": f"https://lvpr.tv/?loop=1&v={playback_id}",
        "external_url": f"https://lvpr.tv/?v={playback_id}",
        "properties": {
            "video": f"ipfs://{video.cid}",
            "com.livepeer.playbackId": playback_id,
            "edition": 3,
        },
    }
    assert task["output"]["export"]["ipfs"]["nftMetadataCid"] == metadata.cid


async def test_a_different_cid_from_the_node_fails_the_export(
    service: Service, node: IpfsNode
) -> None:
    node.wrong_cid = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
    asset_id = await service.ready_asset()
    response = await service.client.post(f"/asset/{asset_id}/export", json={"ipfs": {}})
    task_id = response.json()["task"]["id"]
    task = await service.finish(task_id)
    assert task["status"]["phase"] == "failed" and task["status"]["retries"] == 0
    message = task["status"]["errorMessage"]
    assert node.wrong_cid in message and "ipfs add --cid-version=1" in message
    status = (await service.asset(asset_id))["storage"]["status"]
    assert status == {"phase": "failed", "errorMessage": message, "tasks": {"failed": task_id}}


async def test_a_node_error_is_retried(service: Service, node: IpfsNode) -> None:
    node.status = 500
    asset_id = await service.ready_asset()
    response = await service.client.post(f"/asset/{asset_id}/export", json={"ipfs": {}})
    task = await service.finish(response.json()["task"]["id"])
    assert task["status"]["phase"] == "failed" and task["status"]["retries"] == 2
    assert "answered 500" in task["status"]["errorMessage"]
    assert len(node.adds) == 3


async def test_pinata_credentials_of_the_request(
    store: taskstore.TaskStore, tmp_path: Path, node: IpfsNode
) -> None:
    # No kubo API: the request's own Pinata account is used (at the stand-in's address).
    async with running(store, _settings(tmp_path, pinata_api_url=node.url)) as service:
        data = clip_bytes(cid.CHUNK_SIZE // 2)
        asset_id = await service.ready_asset(data)
        response = await service.client.post(
            f"/asset/{asset_id}/export", json={"ipfs": {"pinata": {"jwt": "my-jwt"}}}
        )
        assert response.status_code == 201, response.text
        # Pinata credentials are write-only: no answer shows them, masked or not.
        assert response.json()["task"]["params"] == {"export": {"ipfs": {}}}
        assert "my-jwt" not in response.text
        task = await service.finish(response.json()["task"]["id"])
    assert task["status"]["phase"] == "completed", task
    added, metadata = node.adds
    assert metadata.headers["authorization"] == "Bearer my-jwt"
    assert added.service == "pinata" and added.headers["authorization"] == "Bearer my-jwt"
    assert added.fields["pinataOptions"] == '{"cidVersion": 1}'
    assert task["output"]["export"]["ipfs"]["videoFileCid"] == added.cid
    assert added.cid == cid.bytes_cid(data)


async def test_ipfs_export_is_refused_without_an_ipfs_service(
    store: taskstore.TaskStore, tmp_path: Path
) -> None:
    async with running(store, _settings(tmp_path)) as service:
        asset_id = await service.ready_asset()
        response = await service.client.post(f"/asset/{asset_id}/export", json={"ipfs": {}})
        patched = await service.client.patch(f"/asset/{asset_id}", json={"storage": {"ipfs": True}})
        assert await service.store.count_tasks() == 1  # the fixture's upload only
    assert response.status_code == 422
    assert "IPFS export is not configured" in response.json()["errors"][0]
    assert patched.status_code == 422


# -- the request ---------------------------------------------------------------------------------


async def test_an_asset_that_is_not_ready_is_412(service: Service, target: Target) -> None:
    asset_id = await service.ready_asset(ready=False)
    response = await service.client.post(
        f"/asset/{asset_id}/export", json={"custom": {"url": target.url}}
    )
    assert response.status_code == 412
    assert response.json() == {"errors": ["asset is not ready to be exported"]}


async def test_unknown_and_other_projects_assets_are_404(service: Service, target: Target) -> None:
    asset_id = await service.ready_asset()
    body = {"custom": {"url": target.url}}
    assert (await service.client.post("/asset/nope/export", json=body)).status_code == 404
    response = await service.other.post(f"/asset/{asset_id}/export", json=body)
    assert response.status_code == 404
    assert (await service.other.patch(f"/asset/{asset_id}", json={"name": "x"})).status_code == 404
    assert (await service.client.patch("/asset/nope", json={"name": "x"})).status_code == 404
    assert (await service.asset(asset_id))["name"] == "clip.mp4"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"custom": {"url": "http://127.0.0.1/x"}, "ipfs": {}},
        {"custom": {"url": "ftp://example.com/x"}},
        {"custom": {"url": "http://127.0.0.1/x", "method": "DELETE"}},
        {"ipfs": {"pinata": {"apiKey": "only-a-key"}}},
        {"ipfs": {"nftMetadataTemplate": "poster"}},
        {"s3": {}},
    ],
)
async def test_a_malformed_body_is_422(service: Service, body: dict[str, Any]) -> None:
    asset_id = await service.ready_asset()
    response = await service.client.post(f"/asset/{asset_id}/export", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["errors"]


# -- PATCH -----------------------------------------------------------------------------------------


async def test_patch_round_trip(service: Service) -> None:
    asset_id = await service.ready_asset()
    with receiving("s") as receiver:
        hook = {"name": "h", "url": receiver.url, "events": ["asset.updated"], "sharedSecret": "s"}
        assert (await service.client.post("/webhook", json=hook)).status_code == 200
        response = await service.client.patch(
            f"/asset/{asset_id}",
            json={
                "name": "renamed",
                "creatorId": "creator-1",
                "playbackPolicy": {"type": "jwt"},
            },
        )
        async with asyncio.timeout(10):
            while not any(
                body["payload"]["asset"]["snapshot"]["name"] == "renamed"
                for body in receiver.unique.values()
            ):
                await asyncio.sleep(0.05)
    assert response.status_code == 200, response.text
    patched = response.json()
    assert patched["name"] == "renamed"
    assert patched["creatorId"] == {"type": "unverified", "value": "creator-1"}
    assert patched["playbackPolicy"] == {"type": "jwt"}
    assert await service.asset(asset_id) == patched
    names = [
        body["payload"]["asset"]["snapshot"]["name"]
        for body in receiver.unique.values()
        if body["event"] == "asset.updated"
    ]
    assert "renamed" in names

    response = await service.client.patch(
        f"/asset/{asset_id}",
        json={"creatorId": {"type": "unverified", "value": "c2"}, "playbackPolicy": None},
    )
    again = response.json()
    assert again["name"] == "renamed" and again["creatorId"]["value"] == "c2"
    assert "playbackPolicy" not in again
    for bad in (
        {"color": "red"},
        {"playbackPolicy": {"type": "open"}},
        {"creatorId": {"value": "no type"}},
        {"storage": {"ipfs": {"spec": {}, "junk": 1}}},
    ):
        assert (await service.client.patch(f"/asset/{asset_id}", json=bad)).status_code == 422
    # The spec puts no bound on a name's length below: an empty one is a name.
    response = await service.client.patch(f"/asset/{asset_id}", json={"name": ""})
    assert response.status_code == 200 and response.json()["name"] == ""


async def test_patch_storage_ipfs_exports_like_studio(service: Service, node: IpfsNode) -> None:
    data = clip_bytes(2 * cid.CHUNK_SIZE + 5)
    asset_id = await service.ready_asset(data)
    response = await service.client.patch(f"/asset/{asset_id}", json={"storage": {"ipfs": True}})
    assert response.status_code == 200, response.text
    storage = response.json()["storage"]
    assert storage["status"]["phase"] == "waiting" and storage["ipfs"]["spec"] == {}
    assert storage["status"]["tasks"].keys() == {"pending"}
    task_id = storage["status"]["tasks"]["pending"]
    task = await service.finish(task_id)
    assert task["status"]["phase"] == "completed", task
    assert task["inputAssetId"] == asset_id
    assert task["params"] == {"export": {"ipfs": {}}}
    storage = (await service.asset(asset_id))["storage"]
    assert storage["status"] == {"phase": "ready", "tasks": {"last": task_id}}
    assert storage["ipfs"]["cid"] == service.reference_cid(data)
    assert storage["ipfs"]["url"] == f"ipfs://{storage['ipfs']['cid']}"

    # The same spec again changes nothing; a new spec exports again; removal is refused.
    await service.client.patch(f"/asset/{asset_id}", json={"storage": {"ipfs": {"spec": {}}}})
    assert len(node.adds) == 2  # the video and its NFT metadata
    response = await service.client.patch(
        f"/asset/{asset_id}", json={"storage": {"ipfs": {"spec": {"nftMetadataTemplate": "file"}}}}
    )
    second = response.json()["storage"]["status"]["tasks"]["pending"]
    assert second != task_id
    assert (await service.finish(second))["status"]["phase"] == "completed"
    assert len(node.adds) == 4
    response = await service.client.patch(f"/asset/{asset_id}", json={"storage": {"ipfs": False}})
    assert response.status_code == 422
    assert response.json() == {"errors": ["Cannot remove asset from IPFS"]}


async def test_patch_storage_of_an_asset_that_is_not_ready(service: Service) -> None:
    asset_id = await service.ready_asset(ready=False)
    response = await service.client.patch(f"/asset/{asset_id}", json={"storage": {"ipfs": True}})
    assert response.status_code == 422
    assert response.json() == {"errors": ["asset is not ready"]}
    # Its name may still change.
    response = await service.client.patch(f"/asset/{asset_id}", json={"name": "later"})
    assert response.status_code == 200 and response.json()["name"] == "later"


# -- export-data -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "stored"),
    [
        ({"b": [1, 2.5, None], "a": "é"}, '{"a":"é","b":[1,2.5,null]}'.encode()),
        ({"data": "Hello, World!"}, b'{"data":"Hello, World!"}'),
    ],
)
async def test_export_data_puts_the_document_on_ipfs(
    service: Service, node: IpfsNode, content: Any, stored: bytes
) -> None:
    response = await service.client.post(
        "/data/export", json={"content": content, "type": "attestation"}
    )
    assert response.status_code == 201, response.text
    created = response.json()["task"]
    assert created["type"] == "export-data"
    assert created["params"]["exportData"]["content"] == content
    task = await service.finish(created["id"])
    assert task["status"]["phase"] == "completed", task
    [added] = node.adds
    assert added.data == stored
    assert task["output"] == {"exportData": {"ipfs": {"cid": service.reference_cid(stored)}}}


async def test_export_data_refuses_a_missing_or_huge_document(service: Service) -> None:
    assert (await service.client.post("/data/export", json={})).status_code == 422
    # The spec's content is an object: a bare text is refused.
    text = await service.client.post("/data/export", json={"content": "Hello"})
    assert text.status_code == 422
    # A document over the limit cannot even be sent: /api reads no JSON body over 1 MiB.
    huge = {"content": {f"k{i}": "x" * 8000 for i in range(140)}}
    response = await service.client.post("/data/export", json=huge)
    assert response.status_code == 413 and "larger than" in response.json()["errors"][0]
