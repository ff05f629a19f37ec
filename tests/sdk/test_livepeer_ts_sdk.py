"""The official Livepeer TypeScript SDK (npm ``livepeer`` 3.5.0 with zod 3, pinned by
``tests/livepeer-ts/package-lock.json``) against a real ``mediatasks serve``: every call it has
for tasks, assets, transcodes, clips, webhooks and playback, in every phase the flows reach, and
unknown ids.  Each call either succeeds or raises the error it must; zod validates every answer,
so a field of the wrong shape fails the call."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import s3server, world
from tests.conftest import IN_CI

TS_DIR = Path(__file__).resolve().parents[1] / "livepeer-ts"

pytestmark = pytest.mark.slow


@pytest.fixture
def node_sdk() -> Path:
    if shutil.which("node") is None or not (TS_DIR / "node_modules" / "livepeer").is_dir():
        if IN_CI:
            raise RuntimeError("the TypeScript SDK is missing: run ./scripts/test")
        pytest.skip("no tests/livepeer-ts/node_modules: ./scripts/test installs it")
    return TS_DIR / "flow.mjs"


@pytest.fixture
def running(tmp_path: Path) -> Iterator[world.World]:
    with world.world(tmp_path) as found:
        yield found
        print(found.server.proc.log()[-3000:])


def test_every_call_of_the_typescript_sdk(node_sdk: Path, running: world.World) -> None:
    job = {
        "api": running.api,
        "key": running.server.key,
        "source": running.source,
        "ipfs_source": running.ipfs_source,
        "missing_source": running.missing_source,
        "receiver": running.receiver.url,
        "target": running.target.url,
        "s3": {
            "endpoint": running.moto.endpoint_url,
            "bucket": running.bucket,
            "key": s3server.ACCESS_KEY,
            "secret": s3server.SECRET_KEY,
        },
        "playback": True,
        "signing_keys": True,
    }
    done = subprocess.run(
        ["node", str(node_sdk), json.dumps(job)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        cwd=TS_DIR,
    )
    assert done.returncode == 0, done.stderr[-5000:]
    result: dict[str, Any] = json.loads(done.stdout)
    calls, seen = result["calls"], result["seen"]
    failed = [c for c in calls if not c["ok"]]
    names = sorted({c["name"].split(" (")[0] for c in calls})
    print(f"{len(calls)} SDK calls ({', '.join(names)}), {len(failed)} failed")
    assert not failed, json.dumps(failed, indent=1)

    assert seen["import_status"] == 201 and seen["import_phase"] == "completed"
    assert seen["import_asset_spec"] is True
    assert seen["ipfs_source"] == {
        "type": "url",
        "url": running.ipfs_source,
        "gatewayUrl": f"{running.files}/ipfs/{running.ipfs_source.removeprefix('ipfs://')}",
    }
    assert seen["ipfs_import_phase"] == "completed"
    assert seen["pending_phase"] == "pending" and seen["put_status"] == 200
    assert seen["upload_phase"] == "completed"
    assert seen["failed_phase"] == "failed"
    assert seen["cancel_status"] == 200 and seen["cancelled_phase"] == "cancelled"
    assert seen["asset_phase"] == "ready"
    assert seen["creator"] == {"type": "unverified", "value": "ts-user"}
    assert seen["updated"] == {"name": "renamed", "creator": "c2"}
    assert seen["bad_creator_status"] == 422
    assert seen["assets_listed"] is True
    assert seen["transcode_phase"] == "completed"
    assert seen["clip_phase"] == "completed" and seen["tail_phase"] == "completed"
    clip = seen["clip"]
    assert abs(clip["duration"] - 1.0) < 0.1 and clip["size"] > 0 and len(clip["hash"]) == 64
    assert clip["source"] == "clip"
    assert seen["export_custom_phase"] == "completed"
    exported = seen["export_ipfs"]
    assert exported["videoFileCid"] and exported["nftMetadataCid"]
    assert exported["nftMetadataUrl"] == f"ipfs://{exported['nftMetadataCid']}"
    assert seen["export_data"]["cid"]
    # storage.ipfs given at import: exported once the upload completed.
    stored = seen["stored_at_import"]
    assert stored["status"]["phase"] in ("waiting", "processing", "ready")
    assert stored["ipfs"]["spec"] == {"nftMetadataTemplate": "file"}
    assert seen["task_types"] == ["clip", "export", "export-data", "transcode-file", "upload"]
    # Every phase an upload task can be read in (running and waiting when the polls meet them).
    assert {"pending", "completed", "failed", "cancelled"} <= set(seen["phases"]["upload"])
    for task_type in ("clip", "export", "export-data", "transcode-file"):
        assert "completed" in seen["phases"][task_type], seen["phases"]
    assert seen["hook_secret_shown"] is False
    sources = {source["hrn"] for source in seen["playback"]["meta"]["source"]}
    assert {"HLS (TS)", "MP4"} <= sources
    assert seen["log_success"] and all(seen["log_success"])
