"""A worker killed with SIGKILL in the middle of a transcode loses nothing: a second worker takes
the task over and completes it, and nothing of the killed attempt is left behind."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest

from mediatasks import tasks, taskstore
from tests import hlscheck, mediagen, processes, vttcheck

pytestmark = pytest.mark.slow


def _processes_using(path: Path) -> list[int]:
    """Pids whose command line mentions ``path`` (FFmpeg of the killed worker, say)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if str(path) in cmdline:
                found.append(int(entry.name))
    return found


def _wait(check: object, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_sigkill_mid_transcode(tmp_path: Path, store_url: str) -> None:
    sources = tmp_path / "sources"
    sources.mkdir()
    mediagen.make_video(sources / "long.mp4", seconds=12, width=1280, height=720)
    settings = {
        "database_url": store_url,
        "concurrency": "1",
        "lease_s": "2",
        "rescue_interval_s": "0.2",
        "retry_backoff_s": "[0]",
        "x264_preset": "medium",
    }
    workers: list[processes.Proc] = []
    with processes.serve(tmp_path, "--no-worker", **settings) as api:
        try:
            _crash_and_recover(api, sources, store_url, tmp_path, workers)
        finally:
            for proc in workers:
                proc.stop()


def _crash_and_recover(
    api: processes.Server,
    sources: Path,
    store_url: str,
    tmp_path: Path,
    workers: list[processes.Proc],
) -> None:
    env, data, key, base = api.env, api.data_dir, api.key, api.base_url
    client = httpx.Client(base_url=f"{base}/api", headers={"Authorization": f"Bearer {key}"})
    with processes.file_server(sources) as files:
        created = client.post(
            "/asset/upload/url", json={"name": "long", "url": f"{files}/long.mp4"}
        ).json()
        task_id = created["task"]["id"]

        def status() -> dict[str, object]:
            return client.get(f"/task/{task_id}").json()["status"]  # type: ignore[no-any-return]

        first = processes.start(["worker"], env, tmp_path / "worker1.log")
        workers.append(first)
        _wait(
            lambda: float(status().get("progress", 0) or 0) > 0.2,  # type: ignore[arg-type]
            90,
            "the first worker to be well into the transcode",
        )
        workdir = data / "work" / task_id
        assert _processes_using(workdir), "FFmpeg should be running"
        first.kill()
        killed_at = time.monotonic()
        _wait(lambda: not _processes_using(workdir), 5, "FFmpeg to die with its worker")

        second = processes.start(["worker"], env, tmp_path / "worker2.log")
        workers.append(second)

        def attempt() -> tuple[str, int]:
            task, _ = _task(store_url, task_id)
            return str(task.phase), task.attempt

        _wait(lambda: attempt() == ("running", 2), 60, "the second attempt")
        print(f"\nfrom SIGKILL to the task running again: {time.monotonic() - killed_at:.2f} s")
        _wait(lambda: status()["phase"] in ("completed", "failed"), 120, "completion")

    final = client.get(f"/task/{task_id}").json()
    assert final["status"]["phase"] == "completed", final
    task, events = _task(store_url, task_id)
    assert (task.phase, task.attempt, task.retries) == ("completed", 2, 1)
    assert final["status"].get("retries") is None  # Livepeer drops it on completion
    assert events.count("rescue") == 1
    # The worker removes the work folder once the completion is saved.
    _wait(lambda: not workdir.exists(), 10, "the work folder removed")

    asset = client.get(f"/asset/{created['asset']['id']}").json()
    master = hlscheck.mirror(asset["playbackUrl"], tmp_path / "copy")
    renditions = hlscheck.renditions(master)
    for rendition in renditions:
        assert abs(rendition.duration_s - 12) < 0.5
    # Published files are exactly the ladder's: nothing stray from the killed attempt.
    published = {
        p.relative_to(data / "media").as_posix() for p in (data / "media").rglob("*") if p.is_file()
    }
    copied = {
        f"asset/{asset['playbackId']}/hls/{p.relative_to(master.parent).as_posix()}"
        for p in master.parent.rglob("*")
        if p.is_file()
    }
    # ... plus the static MP4 of each rendition, which a source this short gets (§5.3).
    mp4s = {f"asset/{asset['playbackId']}/{rendition.name}.mp4" for rendition in renditions}
    # ... and the thumbnails and storyboard: their VTTs and the images those name.
    previews = set()
    for vtt in ("thumbnails/thumbnails.vtt", "storyboard/storyboard.vtt"):
        folder = f"asset/{asset['playbackId']}/{vtt.split('/')[0]}"
        cues = vttcheck.read(data / "media" / folder / vtt.split("/")[1])
        vttcheck.assert_cover_without_gaps(cues, renditions[0].duration_s)
        previews |= {f"asset/{asset['playbackId']}/{vtt}"}
        previews |= {f"{folder}/{text.split('#')[0]}" for _, _, text in cues}
    assert published == copied | mp4s | previews | {f"asset/{asset['playbackId']}/video"}


def _task(store_url: str, task_id: str) -> tuple[tasks.Task, list[str]]:
    async def run() -> tuple[tasks.Task, list[str]]:
        store = taskstore.open_task_store(store_url)
        try:
            events = [e.name for e in await store.list_events(task_id)]
            return await store.get_task(task_id), events
        finally:
            await store.close()

    return asyncio.run(run())
