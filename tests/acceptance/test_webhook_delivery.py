"""Webhooks and live events against real server processes: nothing is lost when the server is
killed between a commit and its delivery, and a client follows a task without polling."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import httpx
import imageio_ffmpeg
import pytest

from tests import mediagen, processes
from tests.receiver import receiving

pytestmark = pytest.mark.slow

SECRET = "hook-secret"


def _wait(check: object, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_events_survive_a_kill_and_a_receiver_outage(tmp_path: Path, store_url: str) -> None:
    sources = tmp_path / "sources"
    sources.mkdir()
    mediagen.make_video(sources / "clip.mp4", seconds=2)
    slow_sender = {"database_url": store_url, "webhook_poll_interval_s": "3600"}
    with receiving(SECRET) as receiver, processes.file_server(sources) as files:
        receiver.status = 503
        with processes.serve(tmp_path, **slow_sender) as first:
            key = first.key
            api = httpx.Client(
                base_url=f"{first.base_url}/api", headers={"Authorization": f"Bearer {key}"}
            )
            hook = api.post(
                "/webhook",
                json={
                    "name": "r",
                    "url": receiver.url,
                    "events": ["task.spawned", "task.completed", "asset.created", "asset.ready"],
                    "sharedSecret": SECRET,
                },
            ).json()
            created = api.post(
                "/asset/upload/url", json={"name": "c", "url": f"{files}/clip.mp4"}
            ).json()
            task_id, asset_id = created["task"]["id"], created["asset"]["id"]
            _wait(
                lambda: api.get(f"/task/{task_id}").json()["status"]["phase"] == "completed",
                60,
                "the upload",
            )
            first.proc.kill()  # committed, never delivered: the sender had not run yet
        assert receiver.requests == []

        fast_sender = {
            "database_url": store_url,
            "webhook_poll_interval_s": "0.1",
            "webhook_backoff_s": "0.2",
            "webhook_backoff_cap_s": "0.5",
        }
        with processes.serve(tmp_path, **fast_sender) as second:
            _wait(lambda: len(receiver.requests) >= 8, 30, "attempts while the receiver is down")
            receiver.status = 200
            _wait(lambda: len(receiver.accepted) == 4, 30, "delivery")
            time.sleep(0.5)
            log = httpx.get(
                f"{second.base_url}/api/webhook/{hook['id']}/log",
                params={"limit": 1000},
                headers={"Authorization": f"Bearer {key}"},
            ).json()
    assert all(valid for _, valid in receiver.requests)
    assert sorted(receiver.names(task_id)) == ["task.completed", "task.spawned"]
    assert sorted(receiver.names(asset_id)) == ["asset.created", "asset.ready"]
    assert sum(1 for entry in log if entry["success"]) == 4
    assert any(entry["response"].get("status") == 503 for entry in log)


def test_a_client_follows_a_task_without_polling(tmp_path: Path) -> None:
    sources = tmp_path / "sources"
    sources.mkdir()
    # FFmpeg reports its progress twice a second and each heartbeat saves it: 20 s of 720p
    # take a few seconds to encode even on a quiet machine, long enough for several steps.
    mediagen.make_video(sources / "clip.mp4", seconds=20, width=1280, height=720)
    beats = processes.serve(tmp_path, heartbeat_interval_s="0.2")
    with processes.file_server(sources) as files, beats as server:
        headers = {"Authorization": f"Bearer {server.key}"}
        api = httpx.Client(base_url=f"{server.base_url}/api", headers=headers, timeout=60)
        task_id = api.post(
            "/asset/upload/url", json={"name": "c", "url": f"{files}/clip.mp4"}
        ).json()["task"]["id"]
        events = []
        with api.stream(
            "GET", f"/task/{task_id}/events", headers={"Accept": "text/event-stream"}
        ) as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            for line in stream.iter_lines():
                if line.startswith("data:"):
                    events.append(json.loads(line[5:]))
        # The stream ended by itself, on the final phase.
        assert events[-1]["phase"] == "completed"
        progress = [e["progress"] for e in events if e["event"] == "progress"]
        print(f"progress events seen on the stream: {progress}")
        assert len(progress) >= 3 and progress == sorted(progress)
        assert [e["event"] for e in events][:2] == ["created", "claim"]

        middle = events[len(events) // 2]["id"]
        with api.stream(
            "GET",
            f"/task/{task_id}/events",
            headers={"Accept": "text/event-stream", "Last-Event-ID": str(middle)},
        ) as stream:
            resumed = [json.loads(x[5:]) for x in stream.iter_lines() if x.startswith("data:")]
        assert [e["id"] for e in resumed] == [e["id"] for e in events if e["id"] > middle]

        timeline = api.get(f"/task/{task_id}/events").json()
        [attempt] = timeline["attempts"]
        assert attempt["outcome"] == "completed"
        assert attempt["ffmpeg"]["version"].startswith("ffmpeg version")
        assert "-filter_complex" in attempt["ffmpeg"]["command"]
        # No path of this server: the work folder's become relative, FFmpeg is its bare name.
        command = attempt["ffmpeg"]["command"]
        assert "/" not in command[0] and command[command.index("-i") + 1] == "source"
        shown = json.dumps(timeline)
        binary_folder = os.path.dirname(imageio_ffmpeg.get_ffmpeg_exe())
        for path in (str(server.data_dir), str(server.data_dir.resolve()), binary_folder):
            assert path not in shown
