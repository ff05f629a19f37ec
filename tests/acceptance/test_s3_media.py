"""The service with its media in an S3 bucket (moto on loopback): a real ``mediatasks serve``
imports a video, plays it back through ``/media`` with range requests, and deletes it from the
bucket."""

from __future__ import annotations

import base64
import time
from pathlib import Path

import httpx
import jwt
import pytest

from tests import hlscheck, mediagen, processes, s3server

pytestmark = pytest.mark.slow


def test_media_in_an_s3_bucket(tmp_path: Path) -> None:
    sources = tmp_path / "sources"
    sources.mkdir()
    clip = mediagen.make_video(sources / "clip.mp4", seconds=2, width=1280, height=720)
    with (
        s3server.moto_server(tmp_path / "moto.log") as moto,
        processes.file_server(sources) as files,
    ):
        bucket = moto.new_bucket()
        with processes.serve(
            tmp_path,
            blob_store_url=f"s3://{bucket}/media",
            s3_endpoint_url=moto.endpoint_url,
            s3_access_key_id=s3server.ACCESS_KEY,
            s3_secret_access_key=s3server.SECRET_KEY,
        ) as server:
            api = httpx.Client(
                base_url=f"{server.base_url}/api",
                headers={"Authorization": f"Bearer {server.key}"},
                timeout=30,
            )
            created = api.post(
                "/asset/upload/url", json={"name": "clip", "url": f"{files}/clip.mp4"}
            ).json()
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                asset = api.get(f"/asset/{created['asset']['id']}").json()
                if asset["status"]["phase"] in ("ready", "failed"):
                    break
                time.sleep(0.1)
            assert asset["status"]["phase"] == "ready", asset
            playback = asset["playbackId"]

            # Everything was published to the bucket, under the prefix; nothing on local disk.
            keys = moto.keys(bucket)
            assert f"media/asset/{playback}/hls/index.m3u8" in keys
            assert f"media/asset/{playback}/video" in keys
            assert {f"media/asset/{playback}/{n}.mp4" for n in ("360p0", "720p0")} <= set(keys)
            assert not (server.data_dir / "media").exists()

            # Playback through this service: the ladder plays, ranges work.
            master = hlscheck.mirror(asset["playbackUrl"], tmp_path / "copy")
            found = {r.name: (r.width, r.height) for r in hlscheck.renditions(master)}
            assert found == {"360p0": (640, 360), "720p0": (1280, 720)}
            part = httpx.get(asset["downloadUrl"], headers={"Range": "bytes=0-99"})
            assert part.status_code == 206 and part.content == clip.read_bytes()[:100]
            mp4 = httpx.get(f"{server.base_url}/media/asset/{playback}/720p0.mp4")
            assert mp4.status_code == 200 and mp4.headers["content-type"] == "video/mp4"
            assert httpx.get(f"{server.base_url}/media/asset/{playback}/nope.ts").status_code == 404

            # Gated from the bucket: nothing without a token; with one, the served playlists
            # carry it and the whole ladder plays.
            key = api.post("/access-control/signing-key").json()
            patched = api.patch(f"/asset/{asset['id']}", json={"playbackPolicy": {"type": "jwt"}})
            assert patched.status_code == 200, patched.text
            for url in (asset["playbackUrl"], asset["downloadUrl"]):
                assert httpx.get(url).status_code == 401
            token = jwt.encode(
                {"sub": playback, "pub": key["publicKey"], "exp": int(time.time()) + 600},
                base64.b64decode(key["privateKey"]),
                algorithm="ES256",
            )
            gated = hlscheck.mirror(f"{asset['playbackUrl']}?jwt={token}", tmp_path / "gated")
            assert {r.name for r in hlscheck.renditions(gated)} == {"360p0", "720p0"}
            part = httpx.get(
                asset["downloadUrl"], params={"jwt": token}, headers={"Range": "bytes=0-99"}
            )
            assert part.status_code == 206 and part.content == clip.read_bytes()[:100]

            assert api.delete(f"/asset/{created['asset']['id']}").status_code == 204
            assert [k for k in moto.keys(bucket) if k.startswith(f"media/asset/{playback}/")] == []
            api.close()
