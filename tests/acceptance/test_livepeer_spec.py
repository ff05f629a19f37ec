"""Every answer of real flows against a real server, checked against Livepeer's own OpenAPI
document: import (by URL and from ``ipfs://``), direct upload, tus, transcode to S3, clip,
exports to a URL and to IPFS with NFT metadata, export-data, webhooks, lists and errors.

An answer matches when the spec's response schema validates it (write-only fields absent), after
taking out only the fields that ``docs/api.md`` lists as this service's own."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import tusclient.client

from tests import livepeerspec, s3server, world
from tests.conftest import IN_CI

pytestmark = pytest.mark.slow

TERMINAL = ("completed", "failed", "cancelled")


@pytest.fixture
def spec() -> livepeerspec.Spec:
    if livepeerspec.spec_path() is None:
        if IN_CI:
            raise RuntimeError("Livepeer's OpenAPI document (shared/reference/specs) is missing")
        pytest.skip("no shared/reference/specs/livepeer-api-schema.yaml beside the repository")
    return livepeerspec.load()


@pytest.fixture
def running(tmp_path: Path) -> Iterator[world.World]:
    with world.world(tmp_path) as found:
        yield found


class Recorder:
    """Sends requests and keeps every answer with the spec operation it belongs to."""

    def __init__(self, client: httpx.Client) -> None:
        self.client = client
        self.answers: list[livepeerspec.Answer] = []

    def send(
        self, method: str, url: str, spec_path: str | None, *, schema: str | None = None, **kw: Any
    ) -> Any:
        response = self.client.request(method, url, **kw)
        body = response.json() if response.content else None
        if response.status_code != 204:
            self.answers.append(
                livepeerspec.Answer(method, spec_path, response.status_code, body, schema)
            )
        return body

    def finish(self, task_id: str) -> dict[str, Any]:
        deadline = time.monotonic() + 120
        while True:
            task: dict[str, Any] = self.send("GET", f"/task/{task_id}", "/task/{taskId}")
            if task["status"]["phase"] in TERMINAL or time.monotonic() > deadline:
                return task
            time.sleep(0.1)


def test_answers_of_real_flows_match_the_spec(
    spec: livepeerspec.Spec, running: world.World, tmp_path: Path
) -> None:
    with httpx.Client(
        base_url=running.api,
        headers={"Authorization": f"Bearer {running.server.key}"},
        timeout=60,
    ) as client:
        r = Recorder(client)
        _flows(r, running, tmp_path)
    found = [spec.mismatches(answer) for answer in r.answers]
    mismatches = [one for each in found for one in each]
    matching = sum(1 for each in found if not each)
    print(
        f"{len(r.answers)} answers checked against Livepeer's spec: {matching} match, "
        f"{len(mismatches)} mismatches"
    )
    assert not mismatches, "\n".join(sorted(set(mismatches)))


def _flows(r: Recorder, w: world.World, tmp_path: Path) -> None:
    # Import by URL, and from IPFS through the gateway with storage.ipfs (exported when ready).
    created = r.send(
        "POST",
        "/asset/upload/url",
        "/asset/upload/url",
        json={"name": "flow", "url": w.source, "creatorId": "me", "staticMp4": True},
    )
    asset_id, playback_id = created["asset"]["id"], created["asset"]["playbackId"]
    assert r.finish(created["task"]["id"])["status"]["phase"] == "completed"
    from_ipfs = r.send(
        "POST",
        "/asset/upload/url",
        "/asset/upload/url",
        json={"name": "ipfs", "url": w.ipfs_source, "storage": {"ipfs": True}},
    )
    r.finish(from_ipfs["task"]["id"])
    r.send("GET", f"/asset/{asset_id}", "/asset/{assetId}")

    # A direct upload, and a tus upload.
    data = (tmp_path / "sources" / "clip.mp4").read_bytes()
    direct = r.send("POST", "/asset/request-upload", "/asset/request-upload", json={"name": "d"})
    r.send("GET", f"/task/{direct['task']['id']}", "/task/{taskId}")  # pending
    assert httpx.put(direct["url"], content=data).status_code == 200
    r.finish(direct["task"]["id"])
    resumable = r.send("POST", "/asset/request-upload", "/asset/request-upload", json={"name": "t"})
    source = tmp_path / "sources" / "clip.mp4"
    tusclient.client.TusClient(resumable["tusEndpoint"]).uploader(
        file_path=str(source), chunk_size=256 * 1024
    ).upload()
    r.finish(resumable["task"]["id"])

    # Transcode to S3, and a failed import.
    transcode = r.send(
        "POST",
        "/transcode",
        "/transcode",
        json={
            "input": {"url": w.source},
            "storage": {
                "type": "s3",
                "endpoint": w.moto.endpoint_url,
                "bucket": w.bucket,
                "credentials": {
                    "accessKeyId": s3server.ACCESS_KEY,
                    "secretAccessKey": s3server.SECRET_KEY,
                },
            },
            "outputs": {
                "hls": {"path": "/o/hls"},
                "mp4": {"path": "/o/mp4"},
                "fmp4": {"path": "/o/f"},
            },
            "profiles": [{"name": "240p", "width": 426, "height": 240, "bitrate": 400_000}],
        },
    )
    assert r.finish(transcode["id"])["status"]["phase"] == "completed"
    broken = r.send(
        "POST",
        "/asset/upload/url",
        "/asset/upload/url",
        json={"name": "x", "url": w.missing_source},
    )
    r.finish(broken["task"]["id"])
    r.send("GET", f"/asset/{broken['asset']['id']}", "/asset/{assetId}")

    # Clips.
    clip = r.send(
        "POST", "/clip", "/clip", json={"playbackId": playback_id, "startTime": 0, "endTime": 2000}
    )
    r.finish(clip["task"]["id"])
    r.send("GET", f"/asset/{clip['asset']['id']}", "/asset/{assetId}")
    tail = r.send("POST", "/clip", "/clip", json={"playbackId": playback_id, "startTime": 3000})
    r.finish(tail["task"]["id"])

    # Exports: a URL (with headers), IPFS with NFT metadata, a document.
    custom = r.send(
        "POST",
        f"/asset/{asset_id}/export",
        None,
        schema="task-in-object",
        json={"custom": {"url": w.target.url, "headers": {"Authorization": "Bearer x"}}},
    )
    r.finish(custom["task"]["id"])
    ipfs = r.send(
        "POST",
        f"/asset/{asset_id}/export",
        None,
        schema="task-in-object",
        json={"ipfs": {"nftMetadataTemplate": "player", "pinata": {"jwt": "pinata-jwt"}}},
    )
    r.finish(ipfs["task"]["id"])
    patched = r.send(
        "PATCH",
        f"/asset/{asset_id}",
        "/asset/{assetId}",
        json={
            "name": "",
            "playbackPolicy": {"type": "public"},
            "storage": {"ipfs": {"spec": {"nftMetadata": {"edition": 2}}}},
        },
    )
    r.finish(patched["storage"]["status"]["tasks"]["pending"])
    r.send("GET", f"/asset/{asset_id}", "/asset/{assetId}")
    document = r.send(
        "POST", "/data/export", None, schema="task-in-object", json={"content": {"a": 1}}
    )
    r.finish(document["task"]["id"])
    r.send("GET", f"/asset/{from_ipfs['asset']['id']}", "/asset/{assetId}")

    # Webhooks.
    hook = r.send(
        "POST",
        "/webhook",
        "/webhook",
        json={"name": "h", "url": w.receiver.url, "events": ["asset.created"], "sharedSecret": "s"},
    )
    r.send("POST", "/webhook", "/webhook", json={"name": "no events", "url": w.receiver.url})
    r.send("GET", f"/webhook/{hook['id']}", "/webhook/{id}")
    r.send("GET", "/webhook", "/webhook")
    r.send(
        "PUT",
        f"/webhook/{hook['id']}",
        "/webhook/{id}",
        json={"name": "h2", "url": w.receiver.url, "events": ["asset.created", "task.spawned"]},
    )
    r.send("POST", "/asset/request-upload", "/asset/request-upload", json={"name": "event"})
    logs: list[Any] = []
    deadline = time.monotonic() + 30
    while not logs and time.monotonic() < deadline:
        logs = r.send("GET", f"/webhook/{hook['id']}/log", "/webhook/{id}/log")
        time.sleep(0.1)
    r.send("GET", f"/webhook/{hook['id']}/log/{logs[0]['id']}", "/webhook/{id}/log/{logId}")
    r.send(
        "POST",
        f"/webhook/{hook['id']}/log/{logs[0]['id']}/resend",
        "/webhook/{id}/log/{logId}/resend",
    )
    r.send("DELETE", f"/webhook/{hook['id']}", "/webhook/{id}")

    # Signing keys, and playback info of a public and a gated asset.
    key = r.send("POST", "/access-control/signing-key", "/access-control/signing-key", json={})
    r.send("GET", "/access-control/signing-key", "/access-control/signing-key")
    r.send("GET", f"/access-control/signing-key/{key['id']}", "/access-control/signing-key/{keyId}")
    r.send(
        "PATCH",
        f"/access-control/signing-key/{key['id']}",
        "/access-control/signing-key/{keyId}",
        json={"name": "renamed"},
    )
    r.send(
        "PATCH",
        f"/asset/{clip['asset']['id']}",
        "/asset/{assetId}",
        json={"playbackPolicy": {"type": "jwt"}},
    )
    r.send("GET", f"/playback/{clip['asset']['playbackId']}", "/playback/{id}")
    r.send("GET", "/playback/nope", "/playback/{id}")
    r.send(
        "DELETE", f"/access-control/signing-key/{key['id']}", "/access-control/signing-key/{keyId}"
    )

    # Lists, pages, errors, playback info, deletion.
    r.send("GET", "/task", "/task", params={"limit": 1000})
    first = r.client.get("/asset", params={"limit": 2})
    r.answers.append(livepeerspec.Answer("GET", "/asset", first.status_code, first.json()))
    r.send("GET", first.headers["Link"].split(">")[0].lstrip("<"), "/asset")
    r.send("GET", "/asset", "/asset", params={"limit": 1000})
    for path, template in (
        ("/task/nope", "/task/{taskId}"),
        ("/asset/nope", "/asset/{assetId}"),
        ("/webhook/nope", "/webhook/{id}"),
        (f"/playback/{playback_id}", "/playback/{id}"),
        ("/access-control/signing-key/nope", "/access-control/signing-key/{keyId}"),
    ):
        r.send("GET", path, template)
    r.send("DELETE", f"/asset/{direct['asset']['id']}", "/asset/{assetId}")
    r.send("GET", f"/asset/{direct['asset']['id']}", "/asset/{assetId}")
