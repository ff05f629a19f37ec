"""The official ``livepeer`` SDK (0.3.0), from its own virtual environment, against a real
``mediatasks serve`` process: import a generated video by URL, watch its task, play its HLS ladder,
delete it."""

from __future__ import annotations

import base64
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import av
import httpx
import jwt
import pytest

from tests import exporttargets, hlscheck, mediagen, processes, s3server
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


def test_transcode_to_s3_with_the_sdk(
    sdk_python: Path, server: processes.Server, tmp_path: Path
) -> None:
    sources = tmp_path / "sources"
    sources.mkdir()
    clip = mediagen.make_video(sources / "clip.mp4", seconds=2)
    with (
        s3server.moto_server(tmp_path / "moto.log") as moto,
        processes.file_server(sources) as files,
    ):
        bucket = moto.new_bucket()
        moto.write(bucket, "inputs/clip.mp4", clip.read_bytes())
        job = {
            "source_url": f"{files}/clip.mp4",
            "endpoint": moto.endpoint_url,
            "bucket": bucket,
            "input_path": "/inputs/clip.mp4",
            "access_key": s3server.ACCESS_KEY,
            "secret_key": s3server.SECRET_KEY,
        }
        seen = run_flow(
            sdk_python, "transcode", f"{server.base_url}/api", server.key, json.dumps(job)
        )
        keys = moto.keys(bucket)
        for key in keys:
            target = tmp_path / "bucket" / key
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(moto.read(bucket, key))

    host = moto.endpoint_url.removeprefix("http://")
    for name in ("url", "s3"):
        found = seen[name]
        assert isinstance(found, dict)
        assert found["status_code"] == 200 and found["type"] == "transcode-file"
        assert found["phase_at_creation"] in ("waiting", "pending")
        assert found["phase"] == "completed", found
        assert found["params_storage"] == f"s3+http://***:***@{host}/{bucket}"
        raw = str(found["raw"])
        assert s3server.ACCESS_KEY not in raw and s3server.SECRET_KEY not in raw
    assert seen["url"]["params_outputs"] == {  # type: ignore[index]
        "hls": {"path": "/sdk/hls"},
        "mp4": {"path": "/sdk/mp4"},
    }
    assert seen["s3"]["params_input"] == (  # type: ignore[index]
        f"s3+http://***:***@{host}/{bucket}/inputs/clip.mp4"
    )
    assert seen["listed"] == ["transcode-file", "transcode-file"]
    assert seen["web3_status"] == 422
    assert "web3.storage" in seen["web3_body"]["errors"][0]  # type: ignore[index]

    # What landed in the bucket plays: the HLS ladder and every MP4.
    assert "sdk/hls/index.m3u8" in keys and "sdk/from-s3/240p0.mp4" in keys
    assert {"sdk/fmp4/fmp4/index.mpd", "sdk/fmp4/fmp4/master.m3u8"} <= set(keys)
    assert sorted(k for k in keys if k.startswith("sdk/mp4/")) == [
        "sdk/mp4/240p0.mp4",
        "sdk/mp4/360p0.mp4",
    ]
    found_hls = {r.name: r for r in hlscheck.renditions(tmp_path / "bucket" / "sdk/hls/index.m3u8")}
    assert {n: (r.width, r.height) for n, r in found_hls.items()} == {
        "360p0": (640, 360),
        "240p0": (426, 240),
    }
    assert all(abs(r.duration_s - 2.0) < 0.2 for r in found_hls.values())
    for key in ("sdk/mp4/360p0.mp4", "sdk/mp4/240p0.mp4", "sdk/from-s3/240p0.mp4"):
        with av.open(str(tmp_path / "bucket" / key)) as container:
            assert container.duration is not None
            assert abs(container.duration / 1_000_000 - 2.0) < 0.2
            assert container.streams.video[0].codec_context.height in (240, 360)


def test_clip_with_the_sdk(sdk_python: Path, server: processes.Server, tmp_path: Path) -> None:
    sources = tmp_path / "clip-sources"
    sources.mkdir()
    mediagen.make_video(sources / "four.mp4", seconds=4)
    with processes.file_server(sources) as files:
        seen = run_flow(
            sdk_python, "clip", f"{server.base_url}/api", server.key, f"{files}/four.mp4"
        )
    # The clip's own file, probed: 2 s of video (its audio may end a frame later).
    assert seen.pop("duration") == pytest.approx(2.0, abs=0.1)
    assert seen == {
        "phase": "completed",
        "type": "clip",
        "source_type": "clip",
        "asset_phase": "ready",
    }


def test_request_upload_put_and_update_with_the_sdk(
    sdk_python: Path, server: processes.Server, tmp_path: Path
) -> None:
    clip = mediagen.make_video(tmp_path / "put.mp4", seconds=2)
    seen = run_flow(sdk_python, "create", f"{server.base_url}/api", server.key, str(clip))
    assert seen["phase_before"] == "uploading"
    assert seen["put_status"] == 200
    assert seen["task_phase"] == "completed"
    assert seen["spec_id"] == seen["asset_id"]
    assert seen["updated_name"] == "renamed.mp4"
    assert httpx.get(str(seen["download_url"])).content == clip.read_bytes()


def test_export_tasks_read_with_the_sdk(sdk_python: Path, tmp_path: Path) -> None:
    sources = tmp_path / "export-sources"
    sources.mkdir()
    mediagen.make_video(sources / "two.mp4", seconds=2)
    with (
        exporttargets.ipfs_node() as node,
        exporttargets.export_target() as target,
        processes.file_server(sources) as files,
        processes.serve(tmp_path, ipfs_api_url=node.url) as server,
    ):
        argument = json.dumps(
            {"source": f"{files}/two.mp4", "target": target.url, "key": server.key}
        )
        seen = run_flow(sdk_python, "export", f"{server.base_url}/api", server.key, argument)
        # The video, then its NFT metadata.
        assert len(target.requests) == 1 and len(node.adds) == 2
        expected_cid = node.adds[0].cid
    assert seen["custom_status"] == seen["ipfs_status"] == 201
    assert seen["custom_phase"] == seen["ipfs_phase"] == "completed"
    assert seen["custom_type"] == seen["ipfs_type"] == "export"
    assert seen["cid"] == expected_cid


def test_access_control_and_playback_info_with_the_sdk(
    sdk_python: Path, server: processes.Server, tmp_path: Path
) -> None:
    sources = tmp_path / "access-sources"
    sources.mkdir()
    mediagen.make_video(sources / "gated.mp4", seconds=2, width=1280, height=720)
    api = f"{server.base_url}/api"
    with processes.file_server(sources) as files:
        seen = run_flow(sdk_python, "access", api, server.key, f"{files}/gated.mp4")

    assert seen["create_status"] == 200 and seen["update_status"] == 204
    assert seen["listed"] == [seen["key_id"]]
    assert seen["got"] == {
        "public_key": seen["public_key"],
        "disabled": False,
        "name": "Signing Key 1",
    }
    assert seen["renamed"] == "renamed"
    assert seen["task_phase"] == "completed"
    assert seen["info_type"] == "vod" and seen["info_policy"] == "jwt"
    sources_seen = seen["sources"]
    assert isinstance(sources_seen, list)
    assert [s["hrn"] for s in sources_seen] == [
        "MP4",
        "MP4",
        "HLS (TS)",
        "Thumbnails",
        "Thumbnail (JPEG)",
    ]
    assert [s["width"] for s in sources_seen[:2]] == [1280, 640]
    assert seen["missing"] == ["Content not found"]

    # What playback info names plays with a token signed by the key's private half only.
    playback = str(seen["playback_id"])
    token = jwt.encode(
        {"sub": playback, "pub": seen["public_key"], "exp": int(time.time()) + 600},
        base64.b64decode(str(seen["private_key"])),
        algorithm="ES256",
    )
    for source in sources_seen:
        assert httpx.get(source["url"]).status_code == 401
        assert httpx.get(source["url"], params={"jwt": token}).status_code == 200
    hls = next(s["url"] for s in sources_seen if s["hrn"] == "HLS (TS)")
    master = hlscheck.mirror(f"{hls}?jwt={token}", tmp_path / "gated")
    assert {r.height for r in hlscheck.renditions(master)} == {360, 720}

    retired = run_flow(sdk_python, "retire-key", api, server.key, str(seen["key_id"]))
    assert retired == {
        "update_status": 204,
        "disabled": True,
        "delete_status": 204,
        "after_delete": 404,
        "listed": [],
    }
    assert httpx.get(hls, params={"jwt": token}).status_code == 403
