"""``POST /transcode`` (``transcode-file``) with real FFmpeg, a worker in this process, and moto's
S3 server on loopback as the caller's storage: outputs in Livepeer's layout, credentials never
shown."""

from __future__ import annotations

import asyncio
import json
import urllib.parse
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import av
import httpx
import pytest

from mediatasks import settings, taskstore
from mediatasks.api.runtime import Runtime
from tests import hlscheck, inprocess, mediagen, processes, s3server

pytestmark = pytest.mark.slow

PROFILES = [
    {"name": "360p0", "width": 640, "height": 360, "bitrate": 800_000},
    {"name": "240p0", "width": 426, "height": 240, "bitrate": 300_000},
]
SECRETS = (s3server.ACCESS_KEY, s3server.SECRET_KEY, urllib.parse.quote(s3server.SECRET_KEY))


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[s3server.MotoServer]:
    with s3server.moto_server(tmp_path_factory.mktemp("moto") / "moto.log") as server:
        yield server


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return mediagen.make_video(tmp_path_factory.mktemp("src") / "clip.mp4", seconds=2)


@pytest.fixture(scope="module")
def sources(clip: Path) -> Iterator[str]:
    with processes.file_server(clip.parent) as base:
        yield base


@pytest.fixture
async def service(
    store: taskstore.TaskStore, tmp_path: Path
) -> AsyncIterator[tuple[httpx.AsyncClient, Runtime]]:
    config = settings.Settings(
        data_dir=tmp_path / "data",
        allow_private_urls=True,  # moto and the file server listen on loopback
        download_timeout_s=2,
        retry_backoff_s=[0.05],
        lease_s=10,
        heartbeat_interval_s=0.5,
        poll_interval_s=0.05,
        shutdown_grace_s=0,
    )
    async with inprocess.running(store, config) as running:
        yield running.client, running.runtime


def storage(moto: s3server.MotoServer, bucket: str) -> dict[str, Any]:
    return {
        "type": "s3",
        "endpoint": moto.endpoint_url,
        "bucket": bucket,
        "credentials": {"accessKeyId": s3server.ACCESS_KEY, "secretAccessKey": s3server.SECRET_KEY},
    }


async def finish(client: httpx.AsyncClient, task_id: str, timeout_s: float = 60) -> dict[str, Any]:
    async with asyncio.timeout(timeout_s):
        while True:
            task: dict[str, Any] = (await client.get(f"/task/{task_id}")).json()
            if task["status"]["phase"] in ("completed", "failed", "cancelled"):
                return task
            await asyncio.sleep(0.05)


def assert_no_secret(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text


def download(moto: s3server.MotoServer, bucket: str, prefix: str, dest: Path) -> list[str]:
    """Copy every object under ``prefix`` into ``dest``; return their keys relative to it."""
    keys = [key for key in moto.keys(bucket) if key.startswith(prefix)]
    for key in keys:
        target = dest / key.removeprefix(prefix)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(moto.read(bucket, key))
    return sorted(key.removeprefix(prefix) for key in keys)


def mp4_facts(path: Path) -> tuple[int, int, float, bool]:
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        assert container.duration is not None
        return (
            video.codec_context.width,
            video.codec_context.height,
            container.duration / 1_000_000,
            bool(container.streams.audio),
        )


async def test_url_input_to_hls_and_mp4_in_livepeers_layout(
    service: tuple[httpx.AsyncClient, Runtime],
    moto: s3server.MotoServer,
    sources: str,
    clip: Path,
    tmp_path: Path,
) -> None:
    client, _ = service
    bucket = moto.new_bucket()
    created = await client.post(
        "/transcode",
        json={
            "input": {"url": f"{sources}/clip.mp4"},
            "storage": storage(moto, bucket),
            "outputs": {"hls": {"path": "/job1/hls"}, "mp4": {"path": "job1/mp4"}},
            "profiles": PROFILES,
            "targetSegmentSizeSecs": 1,
            "creatorId": "someone",
        },
    )
    assert created.status_code == 200, created.text
    body = created.json()
    assert_no_secret(created.text)
    assert body["type"] == "transcode-file"
    params = body["params"]["transcode-file"]
    host = urllib.parse.urlsplit(moto.endpoint_url).netloc
    assert params["storage"] == {"url": f"s3+http://***:***@{host}/{bucket}"}
    assert params["outputs"] == {"hls": {"path": "/job1/hls"}, "mp4": {"path": "/job1/mp4"}}
    assert params["input"] == {"url": f"{sources}/clip.mp4"}

    task = await finish(client, body["id"])
    assert task["status"]["phase"] == "completed", task
    output = task["output"]["transcodeFile"]
    assert output["hls"] == {"path": "/job1/hls/index.m3u8"}
    assert output["mp4"] == [{"path": "/job1/mp4/360p0.mp4"}, {"path": "/job1/mp4/240p0.mp4"}]
    assert output["input_video"]["size"] == clip.stat().st_size
    assert output["input_video"]["duration"] == pytest.approx(2.0, abs=0.1)

    # Livepeer's layout (§5.3), and nothing else, in the caller's bucket.
    hls_keys = download(moto, bucket, "job1/hls/", tmp_path / "hls")
    segments = [key for key in hls_keys if key.endswith(".ts")]
    assert set(hls_keys) == {
        "index.m3u8",
        "360p0/index.m3u8",
        "240p0/index.m3u8",
        *segments,
    }
    assert sorted(segments) == ["240p0/0.ts", "240p0/1.ts", "360p0/0.ts", "360p0/1.ts"]
    mp4_keys = download(moto, bucket, "job1/mp4/", tmp_path / "mp4")
    assert mp4_keys == ["240p0.mp4", "360p0.mp4"]
    assert len(moto.keys(bucket)) == len(hls_keys) + len(mp4_keys)

    found = {r.name: r for r in hlscheck.renditions(tmp_path / "hls" / "index.m3u8")}
    assert {name: (r.width, r.height) for name, r in found.items()} == {
        "360p0": (640, 360),
        "240p0": (426, 240),
    }
    for rendition in found.values():
        assert rendition.duration_s == pytest.approx(2.0, abs=0.1)
    for name, (width, height) in {"360p0": (640, 360), "240p0": (426, 240)}.items():
        got_w, got_h, duration_s, has_audio = mp4_facts(tmp_path / "mp4" / f"{name}.mp4")
        assert (got_w, got_h) == (width, height) and has_audio
        assert duration_s == pytest.approx(2.0, abs=0.1)

    # The credentials appear in no answer: the task, the list, the timeline.
    for path in (f"/task/{body['id']}", "/task", f"/task/{body['id']}/events"):
        answer = await client.get(path)
        assert answer.status_code == 200
        assert_no_secret(answer.text)
    timeline = (await client.get(f"/task/{body['id']}/events")).json()
    assert "***" in json.dumps(timeline["task"]["params"])


async def test_s3_input_to_mp4_only(
    service: tuple[httpx.AsyncClient, Runtime], moto: s3server.MotoServer, clip: Path
) -> None:
    client, _ = service
    inputs, outputs = moto.new_bucket(), moto.new_bucket()
    moto.write(inputs, "uploads/my clip.mp4", clip.read_bytes())
    created = await client.post(
        "/transcode",
        json={
            "input": {**storage(moto, inputs), "path": "uploads/my clip.mp4"},
            "storage": storage(moto, outputs),
            "outputs": {"mp4": {"path": "/out"}},
            "profiles": [PROFILES[1]],
        },
    )
    assert created.status_code == 200, created.text
    assert_no_secret(created.text)
    host = urllib.parse.urlsplit(moto.endpoint_url).netloc
    assert created.json()["params"]["transcode-file"]["input"] == {
        "url": f"s3+http://***:***@{host}/{inputs}/uploads/my%20clip.mp4"
    }
    task = await finish(client, created.json()["id"])
    assert task["status"]["phase"] == "completed", task
    output = task["output"]["transcodeFile"]
    assert output["mp4"] == [{"path": "/out/240p0.mp4"}] and "hls" not in output
    assert output["input_video"]["size"] == clip.stat().st_size
    assert moto.keys(outputs) == ["out/240p0.mp4"]  # the HLS ladder stayed in the work folder


async def test_fmp4_for_dash_and_hls(
    service: tuple[httpx.AsyncClient, Runtime],
    moto: s3server.MotoServer,
    sources: str,
    tmp_path: Path,
) -> None:
    client, _ = service
    bucket = moto.new_bucket()
    created = await client.post(
        "/transcode",
        json={
            "input": {"url": f"{sources}/clip.mp4"},
            "storage": storage(moto, bucket),
            "outputs": {"fmp4": {"path": "/job2"}},
            "profiles": PROFILES,
            "targetSegmentSizeSecs": 1,
        },
    )
    assert created.status_code == 200, created.text
    task = await finish(client, created.json()["id"])
    assert task["status"]["phase"] == "completed", task
    assert task["output"]["transcodeFile"]["fmp4"] == {
        "path": "/job2/fmp4/index.mpd",
        "hlsPath": "/job2/fmp4/master.m3u8",
    }
    keys = download(moto, bucket, "job2/fmp4/", tmp_path / "fmp4")
    assert {"index.mpd", "master.m3u8"} <= set(keys)
    assert all(key.endswith((".mpd", ".m3u8", ".m4s")) for key in keys)

    # DASH: one video representation per rendition, one audio; fMP4 segments, no re-encode.
    manifest = ElementTree.parse(tmp_path / "fmp4" / "index.mpd").getroot()
    representations = [e for e in manifest.iter() if e.tag.endswith("Representation")]
    sizes = sorted((e.get("width"), e.get("height")) for e in representations if e.get("width"))
    assert sizes == [("426", "240"), ("640", "360")]
    assert sum(1 for e in representations if e.get("mimeType") == "audio/mp4") == 1
    # HLS over the same fMP4 segments plays in full, at each size.
    with av.open(str(tmp_path / "fmp4" / "master.m3u8")) as container:
        heights = sorted(s.codec_context.height for s in container.streams.video)
        assert heights == [240, 360] and container.streams.audio
        frames = list(container.decode(container.streams.video[0]))
        assert len(frames) == 60  # 2 s at 30 fps
    assert not any(key.startswith("job2/hls") for key in moto.keys(bucket))


async def test_a_missing_bucket_fails_at_once_with_a_clear_message(
    service: tuple[httpx.AsyncClient, Runtime], moto: s3server.MotoServer, sources: str
) -> None:
    client, runtime = service
    created = await client.post(
        "/transcode",
        json={
            "input": {"url": f"{sources}/clip.mp4"},
            "storage": storage(moto, "no-such-bucket-here"),
            "outputs": {"hls": {"path": "/hls"}},
            "profiles": [PROFILES[1]],
        },
    )
    task = await finish(client, created.json()["id"])
    assert task["status"]["phase"] == "failed"
    assert task["status"]["retries"] == 0
    message = task["status"]["errorMessage"]
    assert (
        message == "error saving file to storage: the bucket 'no-such-bucket-here' does not exist"
    )
    assert_no_secret(json.dumps(task))
    assert not any(runtime.settings.work_dir.iterdir())


async def test_a_missing_input_object_fails_at_once(
    service: tuple[httpx.AsyncClient, Runtime], moto: s3server.MotoServer
) -> None:
    client, _ = service
    bucket = moto.new_bucket()
    created = await client.post(
        "/transcode",
        json={
            "input": {**storage(moto, bucket), "path": "/nothing/here.mp4"},
            "storage": storage(moto, bucket),
            "outputs": {"hls": {"path": "/hls"}},
        },
    )
    task = await finish(client, created.json()["id"])
    assert task["status"]["phase"] == "failed" and task["status"]["retries"] == 0
    assert "no object 'nothing/here.mp4'" in task["status"]["errorMessage"]
    assert moto.keys(bucket) == []


async def test_an_unreachable_storage_is_retried(
    service: tuple[httpx.AsyncClient, Runtime], moto: s3server.MotoServer, sources: str
) -> None:
    client, _ = service
    gone = {**storage(moto, "bucket"), "endpoint": f"http://127.0.0.1:{processes.free_port()}"}
    created = await client.post(
        "/transcode",
        json={
            "input": {"url": f"{sources}/clip.mp4"},
            "storage": gone,
            "outputs": {"mp4": {"path": "/mp4"}},
            "profiles": [PROFILES[1]],
        },
    )
    task = await finish(client, created.json()["id"], timeout_s=90)
    assert task["status"]["phase"] == "failed"
    assert task["status"]["retries"] == 2
    assert task["status"]["errorMessage"].startswith("error saving file to storage: ")
    assert "could not be reached" in task["status"]["errorMessage"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"storage": {"type": "web3.storage", "credentials": {"proof": "abc"}}},
            "web3.storage outputs are not supported",
        ),
        ({"outputs": {}}, "at least one of hls, mp4 or fmp4"),
        ({"outputs": {"hls": {"path": "/a//b"}}}, "outputs.hls.path is not a valid path"),
        ({"input": {"url": "ipfs://"}}, "must name a content id"),
        ({"input": {"url": "ar://a/../../b?c"}}, "must not hold . or .. segments"),
        ({"input": {"url": "ftp://host/a.mp4"}}, "input"),
        ({"profiles": []}, "no transcode profiles could be resolved"),
        ({"c2pa": True}, "C2PA signing is not supported"),
        ({"storage": {"type": "s3", "bucket": "b"}}, "storage"),
    ],
)
async def test_requests_refused_with_422(
    service: tuple[httpx.AsyncClient, Runtime],
    moto: s3server.MotoServer,
    change: dict[str, Any],
    message: str,
) -> None:
    client, runtime = service
    request = {
        "input": {"url": "https://example.com/in.mp4"},
        "storage": storage(moto, "bucket"),
        "outputs": {"hls": {"path": "/hls"}},
        **change,
    }
    answer = await client.post("/transcode", json=request)
    assert answer.status_code == 422, answer.text
    assert message in " ".join(answer.json()["errors"])
    assert_no_secret(answer.text)
    assert await runtime.store.count_tasks() == 0


@pytest.mark.parametrize(
    ("url", "fetched"),
    [
        ("ipfs://bafybeigdyrzt/v.mp4", "https://ipfs.io/ipfs/bafybeigdyrzt/v.mp4"),
        ("ar://Zk9x_Jv-3", "https://arweave.net/Zk9x_Jv-3"),
    ],
)
async def test_ipfs_and_arweave_inputs_go_through_the_gateways(
    service: tuple[httpx.AsyncClient, Runtime], moto: s3server.MotoServer, url: str, fetched: str
) -> None:
    client, _ = service
    request = {
        "input": {"url": url},
        "storage": storage(moto, "bucket"),
        "outputs": {"hls": {"path": "/h"}},
    }
    answer = await client.post("/transcode", json=request)
    assert answer.status_code == 200, answer.text
    assert answer.json()["params"]["transcode-file"]["input"]["url"] == fetched


async def test_private_endpoints_are_refused(store: taskstore.TaskStore, tmp_path: Path) -> None:
    config = settings.Settings(data_dir=tmp_path, allow_private_urls=False)
    async with inprocess.running(store, config, worker=False) as running:
        client = running.client
        for endpoint in ("http://127.0.0.1:9000", "http://169.254.169.254", "http://10.0.0.1"):
            answer = await client.post(
                "/transcode",
                json={
                    "input": {"url": "https://example.com/in.mp4"},
                    "storage": {
                        "type": "s3",
                        "endpoint": endpoint,
                        "bucket": "out",
                        "credentials": {"accessKeyId": "AK", "secretAccessKey": "SK"},
                    },
                    "outputs": {"hls": {"path": "/hls"}},
                },
            )
            assert answer.status_code == 422
            assert answer.json()["errors"][0].startswith("storage.endpoint: url points to")
    assert await store.count_tasks() == 0
