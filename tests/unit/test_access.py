"""Playback policy decisions and the playlists that carry a viewer's credentials."""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from mediatasks import access, assets, errors, settings, taskstore


def test_carry_adds_the_credentials_to_every_relative_uri() -> None:
    master = (
        "#EXTM3U\r\n"
        '#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="a",NAME="en",URI="audio/index.m3u8"\r\n'
        "#EXT-X-STREAM-INF:BANDWIDTH=1000,RESOLUTION=640x360\r\n"
        "360p0/index.m3u8\r\n"
        '#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=100,URI="360p0/iframes.m3u8?x=1"\r\n'
        "\r\n"
        "https://cdn.example/elsewhere.m3u8\r\n"
        '#EXT-X-MAP:URI="//cdn.example/init.mp4"\r\n'
        "720p0/index.m3u8?jwt=old\r\n"
    )
    carried = access.carry(master, {"jwt": "a.b/c+d"})
    assert carried.splitlines(keepends=True) == [
        "#EXTM3U\r\n",
        '#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="a",NAME="en",URI="audio/index.m3u8?jwt=a.b%2Fc%2Bd"\r\n',
        "#EXT-X-STREAM-INF:BANDWIDTH=1000,RESOLUTION=640x360\r\n",
        "360p0/index.m3u8?jwt=a.b%2Fc%2Bd\r\n",
        '#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=100,URI="360p0/iframes.m3u8?x=1&jwt=a.b%2Fc%2Bd"\r\n',
        "\r\n",
        "https://cdn.example/elsewhere.m3u8\r\n",  # a token never goes to another host
        '#EXT-X-MAP:URI="//cdn.example/init.mp4"\r\n',
        "720p0/index.m3u8?jwt=a.b%2Fc%2Bd\r\n",
    ]
    assert access.carry(master, {}) == master
    media = "#EXTM3U\n#EXTINF:2.0,\nindex0.ts\n#EXT-X-ENDLIST\n"
    assert access.carry(media, {"accessKey": "k"}) == (
        "#EXTM3U\n#EXTINF:2.0,\nindex0.ts?accessKey=k\n#EXT-X-ENDLIST\n"
    )


def test_credentials_and_policies() -> None:
    assert not access.Credentials()
    assert access.Credentials(jwt="t").query() == {"jwt": "t"}
    assert access.Credentials(access_key="k").query() == {"accessKey": "k"}
    now = datetime.now(UTC)

    def asset(options: dict[str, Any]) -> assets.Asset:
        return assets.Asset(
            id="a",
            project_id="p",
            name="a",
            playback_id="p1",
            phase=assets.AssetPhase.READY,
            source={},
            options=options,
            media={},
            created_at=now,
            updated_at=now,
        )

    assert access.policy_type(asset({})) == "public"
    assert access.policy_type(asset({"playbackPolicy": None})) == "public"
    assert access.policy_type(asset({"playbackPolicy": {"type": "jwt"}})) == "jwt"


def _signed(private_key: str, payload_json: str) -> str:
    """A token over a payload written by hand (numbers JSON allows but PyJWT never writes)."""
    key = serialization.load_pem_private_key(base64.b64decode(private_key), None)

    def encoded(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    header = encoded(b'{"alg":"ES256"}')
    signing_input = f"{header}.{encoded(payload_json.encode())}"
    algorithm = jwt.algorithms.ECAlgorithm(jwt.algorithms.ECAlgorithm.SHA256)
    return f"{signing_input}.{encoded(algorithm.sign(signing_input.encode(), key))}"


async def test_hostile_tokens_are_refused_never_raise_otherwise(
    store: taskstore.TaskStore, tmp_path: Any
) -> None:
    project = (await store.create_project("p")).id
    public, private = access.new_key_pair()
    await store.create_signing_key(project, name=None, public_key=public)
    asset, _ = await store.create_asset(
        taskstore.NewAsset(
            id="a1",
            project_id=project,
            name="a",
            playback_id="p1",
            phase=assets.AssetPhase.WAITING,
            source={"type": "url"},
            options={"playbackPolicy": {"type": "jwt"}},
        ),
        taskstore.NewTask(project_id=project, type="upload", params={}),
    )
    gate = access.Gate(settings.Settings(data_dir=tmp_path), store)
    later = int(time.time()) + 600
    for payload in (
        '{"sub":"p1","exp":Infinity}',
        '{"sub":"p1","exp":NaN}',
        '{"sub":"p1","exp":1e20}',
        '{"sub":"p1","exp":-1e300}',
        '{"sub":"p1","exp":"soon"}',
        f'{{"sub":1,"exp":{later}}}',
        f'{{"sub":"p1","exp":{later},"nbf":1e300}}',
        f'{{"sub":"p1","exp":{later},"pub":{{"not":"a string"}}}}',
        "[1, 2]",
        '"just a string"',
    ):
        with pytest.raises(errors.AccessDenied):
            await gate.check(asset, access.Credentials(jwt=_signed(private, payload)))
    for garbage in ("", ".", "a.b.c", "x" * 10_000, base64.b64encode(b"{}").decode()):
        with pytest.raises(errors.AccessDenied):
            await gate.check(asset, access.Credentials(jwt=garbage or "."))
    good = _signed(private, json.dumps({"sub": "p1", "exp": later, "pub": public}))
    await gate.check(asset, access.Credentials(jwt=good))
    seen = await store.get_signing_key((await store.list_signing_keys(project))[0].id, project)
    assert seen.last_seen_at is not None
