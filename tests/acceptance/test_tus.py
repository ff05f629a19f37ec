"""Resumable uploads with a real tus client against a real server: a dropped connection and a
restart of the server between two chunks lose nothing."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tusclient import client as tus

from tests import mediagen, processes

pytestmark = pytest.mark.slow

CHUNK = 64 * 1024


def _task_phase(server: processes.Server, task_id: str) -> str:
    response = httpx.get(
        f"{server.base_url}/api/task/{task_id}",
        headers={"Authorization": f"Bearer {server.key}"},
    )
    phase: str = response.json()["status"]["phase"]
    return phase


def _wait_phase(server: processes.Server, task_id: str, phase: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if _task_phase(server, task_id) in (phase, "failed"):
            break
        time.sleep(0.1)
    assert _task_phase(server, task_id) == phase


def test_tus_upload_survives_a_drop_and_a_restart(tmp_path: Path) -> None:
    source = mediagen.make_video(tmp_path / "clip.mp4", seconds=3, width=640, height=360)
    size = source.stat().st_size
    assert size > 3 * CHUNK
    port = processes.free_port()
    with processes.serve(tmp_path, port=port) as server:
        headers = {"Authorization": f"Bearer {server.key}"}
        created = httpx.post(
            f"{server.base_url}/api/asset/request-upload", json={"name": "tus"}, headers=headers
        ).json()
        endpoint, task_id = created["tusEndpoint"], created["task"]["id"]

        uploader = tus.TusClient(endpoint).uploader(file_path=str(source), chunk_size=CHUNK)
        uploader.upload_chunk()  # creation, then the first chunk
        upload_url = uploader.url
        assert upload_url and uploader.offset == CHUNK

        # A connection that drops in the middle of a PATCH keeps what arrived.
        def broken() -> Iterator[bytes]:
            yield source.read_bytes()[CHUNK : CHUNK + 10_000]
            time.sleep(0.5)  # the server has read these bytes by now
            raise ConnectionError("cable pulled")

        with pytest.raises(ConnectionError):
            httpx.patch(
                upload_url,
                content=broken(),
                headers={
                    "Tus-Resumable": "1.0.0",
                    "Upload-Offset": str(CHUNK),
                    "Content-Type": "application/offset+octet-stream",
                },
            )
        _wait_offset(upload_url, CHUNK + 10_000)
        assert _task_phase(server, task_id) == "pending"

    # The server restarts between two chunks; the same URL goes on from the same offset.
    with processes.serve(tmp_path, port=port) as server:
        resumed = tus.TusClient(endpoint).uploader(
            file_path=str(source), url=upload_url, chunk_size=CHUNK
        )
        assert resumed.offset == CHUNK + 10_000
        resumed.upload()
        _wait_phase(server, task_id, "completed")
        asset = httpx.get(
            f"{server.base_url}/api/asset/{created['asset']['id']}",
            headers={"Authorization": f"Bearer {server.key}"},
        ).json()
        assert asset["status"]["phase"] == "ready"
        assert asset["size"] == size
        downloaded = httpx.get(asset["downloadUrl"]).content
        assert downloaded == source.read_bytes()
        head = httpx.head(upload_url, headers={"Tus-Resumable": "1.0.0"})
        assert head.headers["Upload-Offset"] == head.headers["Upload-Length"] == str(size)


def _wait_offset(url: str, expected: int) -> None:
    deadline = time.monotonic() + 10
    offset = -1
    while time.monotonic() < deadline:
        offset = int(httpx.head(url, headers={"Tus-Resumable": "1.0.0"}).headers["Upload-Offset"])
        if offset == expected:
            return
        time.sleep(0.05)
    raise AssertionError(f"offset {offset}, expected {expected}")
