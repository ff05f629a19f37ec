"""Playback policies where media are served: real uploads through the real ladder, on each
backend, then every kind of file (master playlist, rendition playlists, segments, MP4s, the
source) fetched as a viewer without an API key would fetch it."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import http.server
import json
import threading
import time
import urllib.parse
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import jwt
import pytest

from mediatasks import access, settings, taskstore
from tests import inprocess, mediagen, processes, vttcheck

pytestmark = pytest.mark.slow

HOOK_SECRET = "policy-secret"


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("sources")
    mediagen.make_video(root / "clip.mp4", seconds=2, width=640, height=360)
    with processes.file_server(root) as base:
        yield base


@pytest.fixture
async def service(store: taskstore.TaskStore, tmp_path: Path) -> AsyncIterator[inprocess.Service]:
    config = settings.Settings(
        data_dir=tmp_path / "data",
        allow_private_urls=True,
        lease_s=10,
        heartbeat_interval_s=0.5,
        poll_interval_s=0.05,
        shutdown_grace_s=0,
        playback_webhook_timeout_s=2,
    )
    async with inprocess.running(store, config) as running:
        yield running


async def imported(service: inprocess.Service, sources: str, **request: Any) -> dict[str, Any]:
    """Import the clip by URL with ``request``'s options, wait for it, return the asset."""
    body = {"name": "clip", "url": f"{sources}/clip.mp4", "staticMp4": True, **request}
    created = await service.client.post("/asset/upload/url", json=body)
    assert created.status_code == 201, created.text
    task = await service.finish(created.json()["task"]["id"], timeout_s=90)
    assert task["status"]["phase"] == "completed", task
    asset: dict[str, Any] = (
        await service.client.get(f"/asset/{created.json()['asset']['id']}")
    ).json()
    return asset


def media_path(url: str) -> str:
    """The path and query of a media URL, for the viewer's client."""
    parts = urllib.parse.urlsplit(url)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


def sign(private_key: str, claims: dict[str, Any], *, with_pub: str | None = None) -> str:
    payload = dict(claims)
    if with_pub is not None:
        payload["pub"] = with_pub
    return jwt.encode(payload, base64.b64decode(private_key), algorithm="ES256")


def forged_hs256(claims: dict[str, Any], secret: bytes) -> str:
    """A token "signed" with HMAC under the public key: the classic algorithm confusion."""

    def encoded(value: dict[str, Any]) -> str:
        raw = json.dumps(value, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    signing_input = f"{encoded({'alg': 'HS256', 'typ': 'JWT'})}.{encoded(claims)}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"


def claims_for(playback_id: str, *, expires_in_s: float = 600) -> dict[str, Any]:
    return {"sub": playback_id, "action": "pull", "exp": int(time.time() + expires_in_s)}


def uris(playlist: str) -> list[str]:
    """Every URI a playlist names: its URI lines and the URI attributes of its tags."""
    found = []
    for line in playlist.splitlines():
        line = line.strip()
        if line.startswith("#"):
            found += [part.split('"')[1] for part in line.split("URI=")[1:]]
        elif line:
            found.append(line)
    return found


async def media_urls(service: inprocess.Service, asset: dict[str, Any], token: str) -> list[str]:
    """The master playlist, a rendition playlist, a segment, an MP4 and the source of a ready
    asset, found as a player finds them (following the playlists served with ``token``)."""
    master_url = media_path(asset["playbackUrl"])
    master = await service.viewer.get(master_url, params={"jwt": token})
    assert master.status_code == 200, master.text
    variant = urllib.parse.urljoin(master_url, uris(master.text)[0])
    rendition = await service.viewer.get(variant)
    assert rendition.status_code == 200, rendition.text
    segment = urllib.parse.urljoin(variant, uris(rendition.text)[0])
    bare = [master_url, variant.split("?")[0], segment.split("?")[0]]
    playback = asset["playbackId"]
    return [*bare, f"/media/asset/{playback}/360p0.mp4", media_path(asset["downloadUrl"])]


async def statuses(
    service: inprocess.Service, urls: list[str], **request: Any
) -> list[tuple[int, str]]:
    answers = [await service.viewer.get(url, **request) for url in urls]
    return [(a.status_code, a.json()["errors"][0] if a.status_code >= 400 else "") for a in answers]


async def test_jwt_assets_play_only_with_a_valid_token_of_their_project(
    service: inprocess.Service, sources: str
) -> None:
    created = await service.client.post("/access-control/signing-key")
    assert created.status_code == 200, created.text
    key = created.json()
    asset = await imported(service, sources, playbackPolicy={"type": "jwt"})
    playback = asset["playbackId"]
    assert asset["playbackPolicy"] == {"type": "jwt"}
    valid = sign(key["privateKey"], claims_for(playback), with_pub=key["publicKey"])
    urls = await media_urls(service, asset, valid)
    assert len(urls) == 5

    # Without a token: 401 for every file, the source included.
    for status, message in await statuses(service, urls):
        assert (status, message) == (401, "this asset needs a playback token (jwt)")

    # A valid token plays every file, as ?jwt= or as the Livepeer-Jwt header.
    for url in urls:
        by_query = await service.viewer.get(url, params={"jwt": valid})
        assert by_query.status_code == 200, (url, by_query.text)
        by_header = await service.viewer.get(url, headers={"Livepeer-Jwt": valid})
        assert by_header.status_code == 200 and by_header.content == by_query.content
        assert by_query.headers["cache-control"] == "private, no-store"
    # Ranges still work on gated files.
    part = await service.viewer.get(urls[3], params={"jwt": valid}, headers={"Range": "bytes=0-9"})
    assert part.status_code == 206 and len(part.content) == 10

    # An expired token, a token of another playback id, one that expires too late.
    expired = sign(
        key["privateKey"], claims_for(playback, expires_in_s=-5), with_pub=key["publicKey"]
    )
    elsewhere = sign(key["privateKey"], claims_for("otherplaybackid0"), with_pub=key["publicKey"])
    too_long = sign(
        key["privateKey"], claims_for(playback, expires_in_s=8 * 86400), with_pub=key["publicKey"]
    )
    no_exp = sign(key["privateKey"], {"sub": playback}, with_pub=key["publicKey"])
    for token, reason in [
        (expired, "the playback token has expired"),
        (elsewhere, "the playback token is for another playback id"),
        (too_long, "the playback token expires more than 7 days from now"),
        (no_exp, 'the playback token is not valid: Token is missing the "exp" claim'),
        ("not.a.jwt", "the playback token is not a valid JWT"),
    ]:
        assert await statuses(service, urls, params={"jwt": token}) == [(403, reason)] * 5

    # Tokens that another project's key signed (with or without its pub claim), and forgeries.
    other = await service.runtime.store.create_project("another")
    other_public, other_private = access.new_key_pair()
    await service.runtime.store.create_signing_key(other.id, name=None, public_key=other_public)
    foreign = sign(other_private, claims_for(playback), with_pub=other_public)
    foreign_bare = sign(other_private, claims_for(playback))
    posing = sign(other_private, claims_for(playback), with_pub=key["publicKey"])
    unsigned = jwt.encode(
        {**claims_for(playback), "pub": key["publicKey"]}, key=None, algorithm="none"
    )
    symmetric = forged_hs256(
        {**claims_for(playback), "pub": key["publicKey"]}, base64.b64decode(key["publicKey"])
    )
    not_ours = "the playback token is not signed by a signing key of this asset's project"
    for token in (foreign, foreign_bare):
        assert await statuses(service, urls, params={"jwt": token}) == [(403, not_ours)] * 5
    for token in (posing, unsigned, symmetric):
        found = await statuses(service, urls, params={"jwt": token})
        assert [status for status, _ in found] == [403] * 5, found

    # A token without pub, signed by the project's key, is tried against its keys and plays.
    bare = sign(key["privateKey"], claims_for(playback))
    assert [s for s, _ in await statuses(service, urls, params={"jwt": bare})] == [200] * 5

    # A disabled key plays nothing, until it is enabled again; a deleted one, nothing at all.
    path = f"/access-control/signing-key/{key['id']}"
    assert (await service.client.patch(path, json={"disabled": True})).status_code == 204
    disabled = "the playback token's signing key is disabled"
    assert await statuses(service, urls, params={"jwt": valid}) == [(403, disabled)] * 5
    assert (await service.client.patch(path, json={"disabled": False})).status_code == 204
    assert [s for s, _ in await statuses(service, urls, params={"jwt": valid})] == [200] * 5
    assert (await service.client.delete(path)).status_code == 204
    assert await statuses(service, urls, params={"jwt": valid}) == [(403, not_ours)] * 5


async def test_served_playlists_carry_the_token_to_every_uri(
    service: inprocess.Service, sources: str
) -> None:
    key = (await service.client.post("/access-control/signing-key")).json()
    asset = await imported(service, sources, playbackPolicy={"type": "jwt"})
    token = sign(key["privateKey"], claims_for(asset["playbackId"]), with_pub=key["publicKey"])
    master_url = media_path(asset["playbackUrl"])
    # A header given to the master is carried as a query parameter (Safari sends no headers).
    master = await service.viewer.get(master_url, headers={"Livepeer-Jwt": token})
    assert master.status_code == 200
    assert master.headers["content-type"] == "application/vnd.apple.mpegurl"
    variants = uris(master.text)
    assert len(variants) >= 2
    fetched = 0
    for variant in variants:
        assert urllib.parse.parse_qs(urllib.parse.urlsplit(variant).query) == {"jwt": [token]}
        variant_url = urllib.parse.urljoin(master_url, variant)
        rendition = await service.viewer.get(variant_url)
        assert rendition.status_code == 200
        for segment in uris(rendition.text):
            assert urllib.parse.parse_qs(urllib.parse.urlsplit(segment).query) == {"jwt": [token]}
            answer = await service.viewer.get(urllib.parse.urljoin(variant_url, segment))
            assert answer.status_code == 200 and answer.headers["content-type"] == "video/mp2t"
            fetched += 1
    assert fetched >= 2
    # HEAD answers like GET, without a body.
    head = await service.viewer.head(master_url, params={"jwt": token})
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == str(len(master.content))


async def test_public_assets_play_for_anyone_and_head_answers_like_get(
    service: inprocess.Service, sources: str
) -> None:
    asset = await imported(service, sources)
    for url in (media_path(asset["playbackUrl"]), media_path(asset["downloadUrl"])):
        got = await service.viewer.get(url)
        assert got.status_code == 200 and "cache-control" not in got.headers
        head = await service.viewer.head(url)
        assert head.status_code == 200 and head.content == b""
        assert head.headers["content-length"] == str(len(got.content))
        assert head.headers["content-type"] == got.headers["content-type"]
    # The master playlist of a public asset is served as stored, whatever the query says.
    master = await service.viewer.get(media_path(asset["playbackUrl"]), params={"jwt": "x"})
    assert "jwt=" not in master.text
    missing = await service.viewer.head(f"/media/asset/{asset['playbackId']}/nope.ts")
    assert missing.status_code == 404


async def test_failed_and_deleted_assets_serve_nothing(
    service: inprocess.Service, sources: str, tmp_path: Path
) -> None:
    asset = await imported(service, sources)
    urls = [media_path(asset["playbackUrl"]), media_path(asset["downloadUrl"])]
    assert [(await service.viewer.get(u)).status_code for u in urls] == [200, 200]
    assert (await service.client.delete(f"/asset/{asset['id']}")).status_code == 204
    assert [(await service.viewer.get(u)).status_code for u in urls] == [404, 404]

    # A direct upload whose file is not a video: its task fails, its uploaded source (which is
    # in the blob store where a ready asset's source would be) is not served.
    requested = (await service.client.post("/asset/request-upload", json={"name": "bad"})).json()
    bad = tmp_path / "bad.mp4"
    mediagen.make_text_file(bad)
    put = await service.client.put(requested["url"], content=bad.read_bytes())
    assert put.status_code == 200, put.text
    task = await service.finish(requested["task"]["id"], timeout_s=60)
    assert task["status"]["phase"] == "failed"
    playback = requested["asset"]["playbackId"]
    source_key = f"asset/{playback}/video"
    assert await service.runtime.blobs.exists(source_key)
    assert (await service.viewer.get(f"/media/{source_key}")).status_code == 404

    # Nothing outside an asset's folder is served, nor odd keys.
    for key in ("scores/x/y", "asset/", "asset/nope", "asset/../secret-key", "tasks.db"):
        assert (await service.viewer.get(f"/media/{key}")).status_code == 404, key


# -- webhook policies ----------------------------------------------------------------------------


class PolicyHook:
    """A playback webhook on loopback: allows the access keys in ``allowed``."""

    def __init__(self) -> None:
        self.allowed = {"good-key"}
        self.status_when_refused = 403
        self.requests: list[tuple[dict[str, Any], bool, str]] = []
        self.url = ""
        self.lock = threading.Lock()

    def answer(self, raw: bytes, signature: str, agent: str) -> int:
        fields = dict(part.split("=", 1) for part in signature.split(",") if "=" in part)
        expected = hmac.new(HOOK_SECRET.encode(), raw, hashlib.sha256).hexdigest()
        body = json.loads(raw)
        signed = fields.get("v1") == expected and fields.get("t") == str(body["timestamp"])
        with self.lock:
            self.requests.append((body, signed, agent))
        return 200 if body.get("accessKey") in self.allowed else self.status_when_refused


@contextmanager
def policy_hook() -> Iterator[PolicyHook]:
    hook = PolicyHook()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("content-length", 0)))
            status = hook.answer(
                raw, self.headers.get("Livepeer-Signature", ""), self.headers.get("user-agent", "")
            )
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    hook.url = f"http://127.0.0.1:{server.server_address[1]}/gate"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield hook
    finally:
        server.shutdown()
        server.server_close()


async def test_webhook_assets_play_only_when_their_webhook_allows(
    service: inprocess.Service, sources: str
) -> None:
    with policy_hook() as hook:
        created = await service.client.post(
            "/webhook",
            json={
                "name": "gate",
                "url": hook.url,
                "events": ["playback.accessControl"],
                "sharedSecret": HOOK_SECRET,
            },
        )
        webhook = created.json()
        policy = {
            "type": "webhook",
            "webhookId": webhook["id"],
            "webhookContext": {"viewer": "premium"},
            "refreshInterval": 0.5,
        }
        asset = await imported(service, sources, playbackPolicy=policy)
        master_url = media_path(asset["playbackUrl"])
        source_url = media_path(asset["downloadUrl"])

        missing = await service.viewer.get(master_url)
        assert missing.status_code == 401
        assert missing.json() == {"errors": ["this asset needs an access key (accessKey)"]}
        refused = await service.viewer.get(master_url, params={"accessKey": "bad-key"})
        assert refused.status_code == 403
        assert "refused this access key (403)" in refused.json()["errors"][0]
        [(body, signed, agent)] = hook.requests
        assert signed and agent == "mediatasks"
        assert body["accessKey"] == "bad-key" and body["context"] == {"viewer": "premium"}
        assert abs(body["timestamp"] - time.time() * 1000) < 60_000

        # An allowed key plays the master, and the playlists carry it to the segments.
        master = await service.viewer.get(master_url, params={"accessKey": "good-key"})
        assert master.status_code == 200
        variant = uris(master.text)[0]
        assert urllib.parse.parse_qs(urllib.parse.urlsplit(variant).query) == {
            "accessKey": ["good-key"]
        }
        rendition = await service.viewer.get(urllib.parse.urljoin(master_url, variant))
        assert rendition.status_code == 200
        by_header = await service.viewer.get(
            source_url, headers={"Livepeer-Access-Key": "good-key"}
        )
        assert by_header.status_code == 200
        # Within refreshInterval the webhook is asked once for an allowed key, not per file.
        assert [b["accessKey"] for b, _, _ in hook.requests] == ["bad-key", "good-key"]

        # After refreshInterval it is asked again, and its answer then counts.
        await asyncio.sleep(0.6)
        hook.allowed.clear()
        again = await service.viewer.get(master_url, params={"accessKey": "good-key"})
        assert again.status_code == 403
        hook.status_when_refused = 500
        assert (await service.viewer.get(source_url, params={"accessKey": "x"})).status_code == 403

    # A webhook that cannot be reached refuses playback (it is not an open door).
    down = await service.viewer.get(master_url, params={"accessKey": "other-key"})
    assert down.status_code == 403
    assert down.json() == {"errors": ["the asset's playback webhook could not be reached"]}
    # A policy whose webhook was deleted refuses too.
    await service.client.delete(f"/webhook/{webhook['id']}")
    gone = await service.viewer.get(master_url, params={"accessKey": "yet-another"})
    assert gone.json() == {"errors": ["the asset's playback webhook does not exist"]}


async def test_a_webhook_policy_needs_its_webhook(service: inprocess.Service, sources: str) -> None:
    response = await service.client.post(
        "/asset/upload/url",
        json={"name": "c", "url": f"{sources}/clip.mp4", "playbackPolicy": {"type": "webhook"}},
    )
    assert response.status_code == 422
    assert "webhookId" in response.json()["errors"][0]


async def test_a_clip_of_a_gated_asset_is_gated_alike(
    service: inprocess.Service, sources: str
) -> None:
    key = (await service.client.post("/access-control/signing-key")).json()
    parent = await imported(service, sources, playbackPolicy={"type": "jwt"})
    body = {"playbackId": parent["playbackId"], "startTime": 0, "endTime": 1500}
    clipped = (await service.client.post("/clip", json=body)).json()
    task = await service.finish(clipped["task"]["id"], timeout_s=90)
    assert task["status"]["phase"] == "completed", task
    clip = (await service.client.get(f"/asset/{clipped['asset']['id']}")).json()
    assert clip["playbackPolicy"] == {"type": "jwt"}
    urls = [media_path(clip["playbackUrl"]), media_path(clip["downloadUrl"])]
    assert [(await service.viewer.get(url)).status_code for url in urls] == [401, 401]
    token = sign(key["privateKey"], claims_for(clip["playbackId"]), with_pub=key["publicKey"])
    played = [(await service.viewer.get(url, params={"jwt": token})).status_code for url in urls]
    assert played == [200, 200]


async def test_thumbnail_and_storyboard_cues_carry_the_token(
    service: inprocess.Service, sources: str
) -> None:
    """A scrubber follows a WebVTT's image links as it finds them: on a gated asset they carry
    the token that the WebVTT was read with, and the images play with it."""
    key = (await service.client.post("/access-control/signing-key")).json()
    asset = await imported(service, sources, playbackPolicy={"type": "jwt"})
    playback = asset["playbackId"]
    token = sign(key["privateKey"], claims_for(playback), with_pub=key["publicKey"])
    for vtt in ("thumbnails/thumbnails.vtt", "storyboard/storyboard.vtt"):
        vtt_url = f"/media/asset/{playback}/{vtt}"
        assert (await service.viewer.get(vtt_url)).status_code == 401
        answer = await service.viewer.get(vtt_url, headers={"Livepeer-Jwt": token})
        assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/vtt")
        cues = vttcheck.parse(answer.text)
        assert cues
        for _, _, target in cues:
            link = urllib.parse.urlsplit(target)
            assert urllib.parse.parse_qs(link.query) == {"jwt": [token]}
            if vtt.startswith("storyboard"):
                assert link.fragment.startswith("xywh=")
            image = await service.viewer.get(urllib.parse.urljoin(vtt_url, target.split("#")[0]))
            assert image.status_code == 200 and image.headers["content-type"] == "image/jpeg"
            bare = urllib.parse.urljoin(vtt_url, link.path)
            assert (await service.viewer.get(bare)).status_code == 401


async def test_players_on_other_sites_may_play_as_allowed_origins_say(
    service: inprocess.Service, sources: str
) -> None:
    """CORS: any site may play a public asset; ``allowedOrigins`` narrows it to those sites."""
    site, elsewhere = "http://127.0.0.1:8101", "http://127.0.0.1:8102"
    anyone = await imported(service, sources)
    master = media_path(anyone["playbackUrl"])
    got = await service.viewer.get(master, headers={"Origin": site})
    assert got.status_code == 200 and got.headers["access-control-allow-origin"] == "*"
    preflight = await service.viewer.options(
        master,
        headers={
            "Origin": site,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "livepeer-jwt,range",
        },
    )
    assert preflight.status_code == 204
    assert "Livepeer-Jwt" in preflight.headers["access-control-allow-headers"]
    assert preflight.headers["access-control-allow-origin"] == site

    policy = {"type": "public", "allowedOrigins": [site]}
    narrowed = await imported(service, sources, playbackPolicy=policy)
    master = media_path(narrowed["playbackUrl"])
    allowed = await service.viewer.get(master, headers={"Origin": site})
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == site
    assert allowed.headers["vary"] == "Origin"
    refused = await service.viewer.get(master, headers={"Origin": elsewhere})
    assert refused.status_code == 403
    assert refused.json()["errors"] == [
        "this asset plays only on the origins that its playback policy lists"
    ]
    assert "access-control-allow-origin" not in refused.headers
    direct = await service.viewer.get(master)
    assert direct.status_code == 200 and "access-control-allow-origin" not in direct.headers

    for bad in (["javascript:alert(1)"], ["http://a b"], [site] * 101):
        answer = await service.client.patch(
            f"/asset/{narrowed['id']}",
            json={"playbackPolicy": {"type": "public", "allowedOrigins": bad}},
        )
        assert answer.status_code == 422, answer.text
        assert "errors" in answer.json()
