"""The official ``livepeer`` SDK (0.3.0), from its own virtual environment, against a real
``mediatasks serve`` process: import a generated video by URL, watch its task, play its HLS ladder,
delete it."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests import hlscheck, mediagen, processes
from tests.conftest import IN_CI
from tests.receiver import receiving

ROOT = Path(__file__).resolve().parents[2]
SDK_PYTHON = ROOT / ".venv-sdk" / "bin" / "python"
FLOW = Path(__file__).with_name("livepeer_flow.py")

pytestmark = pytest.mark.slow


@pytest.fixture
def sdk_python() -> Path:
    if not SDK_PYTHON.exists():
        if IN_CI:
            raise RuntimeError("the SDK environment is missing: run ./scripts/test")
        pytest.skip("no .venv-sdk: ./scripts/test creates it")
    return SDK_PYTHON


@pytest.fixture
def server(tmp_path: Path) -> Iterator[processes.Server]:
    with processes.serve(tmp_path) as running:
        yield running
        print(running.proc.log()[-3000:])


def run_flow(python: Path, *args: str) -> dict[str, object]:
    done = subprocess.run(
        [str(python), str(FLOW), *args], capture_output=True, text=True, timeout=180, check=False
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout)
    return result


def test_import_watch_play_delete(
    sdk_python: Path, server: processes.Server, tmp_path: Path
) -> None:
    base, key, data = server.base_url, server.key, server.data_dir
    sources = tmp_path / "sources"
    sources.mkdir()
    mediagen.make_video(sources / "clip.mp4", seconds=4, width=1280, height=720)
    with processes.file_server(sources) as files:
        seen = run_flow(sdk_python, "import", f"{base}/api", key, f"{files}/clip.mp4")

    assert seen["status_code"] == 201
    assert seen["asset_phase_at_creation"] == "waiting"
    assert seen["phases"][-1] == "completed", seen  # type: ignore[index]
    assert seen["phases"][0] in ("waiting", "running")  # type: ignore[index]
    progress = seen["progress"]
    assert isinstance(progress, list) and progress == sorted(progress)
    assert all(0 <= p <= 1 for p in progress)
    assert seen["type"] == "upload"
    assert seen["asset_spec_id"] == seen["asset_id"]
    assert seen["asset_spec_source_type"] == "url"
    assert seen["listed"] is True and seen["assets_listed"] is True
    assert seen["asset_phase"] == "ready"
    assert seen["hash"] and len(seen["hash"][0]) == 64  # type: ignore[index]
    assert seen["missing_status"] == 404
    assert seen["missing_body"] == {"errors": ["task not found"]}

    # The ladder plays: every rendition opens, has its frame size and lasts as long as the source.
    playback_url = str(seen["playback_url"])
    assert playback_url.startswith(base)
    master = hlscheck.mirror(playback_url, tmp_path / "hls")
    found = {r.name: r for r in hlscheck.renditions(master)}
    assert set(found) == {"360p0", "720p0"}
    assert (found["360p0"].width, found["360p0"].height) == (640, 360)
    assert (found["720p0"].width, found["720p0"].height) == (1280, 720)
    for rendition in found.values():
        assert abs(rendition.duration_s - 4.0) <= 10.0 / 2, rendition
        assert abs(rendition.duration_s - 4.0) < 0.5, rendition
    assert httpx.get(str(seen["download_url"])).status_code == 200

    deleted = run_flow(sdk_python, "delete", f"{base}/api", key, str(seen["asset_id"]))
    assert deleted == {"delete_status": 204, "deleted_status": 404}
    assert httpx.get(playback_url).status_code == 404
    assert not list((data / "media").rglob("*.ts"))


def test_webhooks_with_the_sdk(sdk_python: Path, server: processes.Server) -> None:
    with receiving("sdk-secret") as receiver:
        seen = run_flow(sdk_python, "webhooks", f"{server.base_url}/api", server.key, receiver.url)
    assert seen["created"]["name"] == "sdk hook"  # type: ignore[index]
    assert seen["events"] == ["asset.created", "task.spawned"]
    assert seen["got"] == "sdk hook"
    assert seen["listed"] == [seen["created"]["id"]]  # type: ignore[index]
    assert seen["updated"] == {"name": "renamed", "events": ["asset.created"]}
    assert seen["log_events"] == ["asset.created"] and seen["log_success"] == [True]
    assert seen["log_entry"] is True and seen["resent"] is True
    assert seen["deleted"] == seen["created"]["id"]  # type: ignore[index]
    assert seen["after_delete"] == 404
    assert all(valid for _, valid in receiver.requests)
    assert len(receiver.unique) == 1 and len(receiver.requests) == 2
