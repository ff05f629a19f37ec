"""``/api/access-control/signing-key`` and ``/api/playback/{id}`` through the app, on each backend:
Livepeer's shapes, one project's keys and assets invisible to another, private keys shown once."""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from mediatasks import assets, settings, taskstore
from mediatasks.api.livepeer import playback
from tests import inprocess


@pytest.fixture
async def service(store: taskstore.TaskStore, tmp_path: Path) -> AsyncIterator[inprocess.Service]:
    config = settings.Settings(data_dir=tmp_path / "data")
    async with inprocess.running(store, config, worker=False) as running:
        yield running


@pytest.fixture
async def other(service: inprocess.Service) -> AsyncIterator[httpx.AsyncClient]:
    """A client with a key of another project."""
    project = await service.runtime.store.create_project("other")
    _, secret = await service.runtime.store.create_api_key(project.id, "k")
    async with httpx.AsyncClient(
        transport=service.client._transport,
        base_url="http://testserver/api",
        headers={"Authorization": f"Bearer {secret}"},
    ) as client:
        yield client


async def test_a_new_key_answers_its_private_half_once(service: inprocess.Service) -> None:
    created = await service.client.post("/access-control/signing-key")
    assert created.status_code == 200, created.text
    key = created.json()
    assert set(key) == {
        "id",
        "name",
        "projectId",
        "createdAt",
        "publicKey",
        "disabled",
        "privateKey",
    }
    assert key["name"] == "Signing Key 1" and key["disabled"] is False
    assert key["projectId"] == service.project_id
    assert abs(key["createdAt"] - time.time() * 1000) < 60_000

    # The halves are a P-256 pair, PEMs in Base64: a token signed by one checks with the other.
    private = serialization.load_pem_private_key(base64.b64decode(key["privateKey"]), None)
    public = serialization.load_pem_public_key(base64.b64decode(key["publicKey"]))
    assert isinstance(private, ec.EllipticCurvePrivateKey)
    assert isinstance(public, ec.EllipticCurvePublicKey) and public.curve.name == "secp256r1"
    token = jwt.encode({"sub": "x"}, private, algorithm="ES256")
    assert jwt.decode(token, public, algorithms=["ES256"]) == {"sub": "x"}

    # Afterwards only the public half is shown.
    shown = (await service.client.get(f"/access-control/signing-key/{key['id']}")).json()
    assert shown == {k: v for k, v in key.items() if k != "privateKey"}
    listed = (await service.client.get("/access-control/signing-key")).json()
    assert listed == [shown]

    named = await service.client.post("/access-control/signing-key", json={"name": "mine"})
    assert named.json()["name"] == "mine"


async def test_keys_are_renamed_disabled_and_deleted(service: inprocess.Service) -> None:
    key = (await service.client.post("/access-control/signing-key")).json()
    path = f"/access-control/signing-key/{key['id']}"
    answer = await service.client.patch(path, json={"name": "rotated", "disabled": True})
    assert answer.status_code == 204 and answer.content == b""
    shown = (await service.client.get(path)).json()
    assert (shown["name"], shown["disabled"]) == ("rotated", True)
    assert (await service.client.patch(path, json={"disabled": False})).status_code == 204
    assert (await service.client.get(path)).json()["disabled"] is False
    for bad in ({"disabled": "maybe"}, {"publicKey": "mine"}, {"name": ""}):
        refused = await service.client.patch(path, json=bad)
        assert refused.status_code == 422 and refused.json()["errors"], bad
    deleted = await service.client.delete(path)
    assert deleted.status_code == 204 and deleted.content == b""
    missing = await service.client.get(path)
    assert missing.status_code == 404
    assert missing.json() == {"errors": ["signing key not found"]}
    assert (await service.client.delete(path)).status_code == 404
    assert (await service.client.get("/access-control/signing-key")).json() == []


async def test_another_project_sees_none_of_the_keys(
    service: inprocess.Service, other: httpx.AsyncClient
) -> None:
    key = (await service.client.post("/access-control/signing-key")).json()
    path = f"/access-control/signing-key/{key['id']}"
    assert (await other.get("/access-control/signing-key")).json() == []
    assert (await other.get(path)).status_code == 404
    assert (await other.patch(path, json={"disabled": True})).status_code == 404
    assert (await other.delete(path)).status_code == 404
    assert (await service.client.get(path)).json()["disabled"] is False
    claimed = await other.post(
        "/access-control/signing-key", json={"projectId": service.project_id}
    )
    assert claimed.status_code == 422
    assert (await service.client.get("/access-control/signing-key")).json() == [
        {k: v for k, v in key.items() if k != "privateKey"}
    ]
    unauthenticated = await service.viewer.get("/api/access-control/signing-key")
    assert unauthenticated.status_code == 401


async def test_a_project_has_at_most_ten_keys(service: inprocess.Service) -> None:
    for _ in range(10):
        assert (await service.client.post("/access-control/signing-key")).status_code == 200
    refused = await service.client.post("/access-control/signing-key")
    assert refused.status_code == 409
    assert "up to 10 signing keys" in refused.json()["errors"][0]


async def test_a_replayed_creation_does_not_keep_the_private_key(
    service: inprocess.Service,
) -> None:
    headers = {"Idempotency-Key": "create-key-1"}
    first = await service.client.post("/access-control/signing-key", headers=headers)
    again = await service.client.post("/access-control/signing-key", headers=headers)
    assert first.status_code == again.status_code == 200
    assert again.headers["idempotent-replayed"] == "true"
    assert "privateKey" in first.json() and "privateKey" not in again.json()
    assert again.json()["id"] == first.json()["id"]
    assert len((await service.client.get("/access-control/signing-key")).json()) == 1


# -- playback info --------------------------------------------------------------------------------


async def ready_asset(
    service: inprocess.Service,
    *,
    media: Callable[[str], dict[str, Any]] = lambda playback_id: {
        "hls": f"asset/{playback_id}/hls/index.m3u8"
    },
    options: dict[str, Any] | None = None,
) -> assets.Asset:
    """An asset made ready with ``media(playback_id)`` by a task that this test completes."""
    asset_id = str(uuid.uuid4())
    playback_id = assets.new_playback_id(asset_id)
    store = service.runtime.store
    await store.create_asset(
        taskstore.NewAsset(
            id=asset_id,
            project_id=service.project_id,
            name="a",
            playback_id=playback_id,
            phase=assets.AssetPhase.WAITING,
            source={"type": "url", "url": "https://example.com/a.mp4"},
            options=options or {},
        ),
        taskstore.NewTask(
            project_id=service.project_id, type="fixture", params={}, output_asset_id=asset_id
        ),
    )
    [claimed] = await store.claim("fixture", types=["fixture"], limit=1, lease_s=30)
    assert claimed.lease_token is not None
    await store.complete(claimed.id, claimed.lease_token, output={}, asset_media=media(playback_id))
    return await store.get_asset(asset_id)


def ladder(playback_id: str) -> dict[str, Any]:
    prefix = f"asset/{playback_id}"
    return {
        "hls": f"{prefix}/hls/index.m3u8",
        "source": f"{prefix}/video",
        "staticMp4s": [
            {"key": f"{prefix}/720p0.mp4", "size": 2000, "width": 1280, "height": 720,
             "bitrate": 4000000, "name": "720p0"},
            {"key": f"{prefix}/360p0.mp4", "size": 900, "width": 640, "height": 360,
             "bitrate": 1000000, "name": "360p0"},
        ],
    }  # fmt: skip


async def test_playback_info_lists_mp4s_then_hls(service: inprocess.Service) -> None:
    asset = await ready_asset(service, media=ladder)
    answer = await service.client.get(f"/playback/{asset.playback_id}")
    assert answer.status_code == 200, answer.text
    base = f"http://testserver/media/asset/{asset.playback_id}"
    assert answer.json() == {
        "type": "vod",
        "meta": {
            "playbackPolicy": None,
            "source": [
                {"hrn": "MP4", "type": "html5/video/mp4", "url": f"{base}/720p0.mp4",
                 "size": 2000, "width": 1280, "height": 720, "bitrate": 4000000},
                {"hrn": "MP4", "type": "html5/video/mp4", "url": f"{base}/360p0.mp4",
                 "size": 900, "width": 640, "height": 360, "bitrate": 1000000},
                {"hrn": "HLS (TS)", "type": "html5/application/vnd.apple.mpegurl",
                 "url": f"{base}/hls/index.m3u8"},
            ],
        },
    }  # fmt: skip


async def test_playback_info_tells_the_player_about_the_policy(
    service: inprocess.Service,
) -> None:
    gated = await ready_asset(service, options={"playbackPolicy": {"type": "jwt"}})
    info = (await service.client.get(f"/playback/{gated.playback_id}")).json()
    assert info["meta"]["playbackPolicy"] == {"type": "jwt"}
    assert [source["hrn"] for source in info["meta"]["source"]] == ["HLS (TS)"]


async def test_unknown_unready_and_foreign_playback_ids(
    service: inprocess.Service, other: httpx.AsyncClient
) -> None:
    missing = await service.client.get("/playback/nosuchplayback00")
    assert missing.status_code == 404 and missing.json()["errors"]
    pending = (await service.client.post("/asset/request-upload", json={"name": "p"})).json()
    not_ready = await service.client.get(f"/playback/{pending['asset']['playbackId']}")
    assert not_ready.status_code == 422
    assert not_ready.json() == {"errors": ["asset is not ready for playback"]}
    asset = await ready_asset(service)
    assert (await service.client.get(f"/playback/{asset.playback_id}")).status_code == 200
    foreign = await other.get(f"/playback/{asset.playback_id}")
    assert foreign.status_code == 404
    assert (await service.viewer.get(f"/api/playback/{asset.playback_id}")).status_code == 401


def test_thumbnails_are_listed_when_the_media_have_them() -> None:
    now = datetime.now(UTC)
    asset = assets.Asset(
        id="a",
        project_id="p",
        name="a",
        playback_id="abcd",
        phase=assets.AssetPhase.READY,
        source={"type": "url"},
        options={"playbackPolicy": {"type": "webhook", "webhookId": "w"}},
        media={
            "hls": "asset/abcd/hls/index.m3u8",
            "thumbnails": {
                "vtt": "asset/abcd/thumbnails/thumbnails.vtt",
                "images": ["asset/abcd/thumbnails/keyframes_0.jpg"],
            },
        },
        created_at=now,
        updated_at=now,
    )
    info = playback.playback_info_json(asset, base_url="http://h/")
    assert info["meta"]["playbackPolicy"] == {"type": "webhook", "webhookId": "w"}
    assert info["meta"]["source"] == [
        {"hrn": "HLS (TS)", "type": "html5/application/vnd.apple.mpegurl",
         "url": "http://h/media/asset/abcd/hls/index.m3u8"},
        {"hrn": "Thumbnails", "type": "text/vtt",
         "url": "http://h/media/asset/abcd/thumbnails/thumbnails.vtt"},
        {"hrn": "Thumbnail (JPEG)", "type": "image/jpeg",
         "url": "http://h/media/asset/abcd/thumbnails/keyframes_0.jpg"},
    ]  # fmt: skip
