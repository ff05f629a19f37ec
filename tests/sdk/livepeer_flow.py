"""Drive a server with the official ``livepeer`` SDK; run with the SDK's own Python.

Usage: livepeer_flow.py import <server_url ending in /api> <api_key> <source_url>
       livepeer_flow.py delete <server_url ending in /api> <api_key> <asset_id>
Prints one JSON document with what the SDK saw, for the test to check.
"""

from __future__ import annotations

import json
import sys
import time

from livepeer import Livepeer
from livepeer.models import errors


def import_and_watch(lp: Livepeer, source_url: str) -> dict[str, object]:
    seen: dict[str, object] = {}

    created = lp.asset.create_via_url(request={"name": "sdk import", "url": source_url})
    body = created.two_hundred_and_one_application_json_data
    seen["status_code"] = created.http_meta.response.status_code
    task_id, asset_id = body.task.id, body.asset.id
    seen["asset_phase_at_creation"] = body.asset.status.phase.value

    phases, progress = [], []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        task = lp.task.get(task_id=task_id).task
        phase = task.status.phase.value
        if not phases or phases[-1] != phase:
            phases.append(phase)
        if task.status.progress is not None:
            progress.append(task.status.progress)
        if phase in ("completed", "failed", "cancelled"):
            break
        time.sleep(0.1)
    seen["phases"] = phases
    seen["progress"] = progress
    seen["error"] = task.status.error_message
    seen["type"] = task.type.value
    spec = task.output.upload.asset_spec if task.output and task.output.upload else None
    seen["asset_spec_id"] = spec.id if spec else None
    seen["asset_spec_source_type"] = spec.source.type.value if spec else None

    seen["listed"] = task_id in [t.id for t in (lp.task.get_all().data or [])]
    asset = lp.asset.get(asset_id=asset_id).asset
    seen["asset_phase"] = asset.status.phase.value
    seen["playback_url"] = asset.playback_url
    seen["download_url"] = asset.download_url
    seen["hash"] = [h.hash for h in asset.hash] if asset.hash else None
    seen["duration"] = asset.video_spec.duration if asset.video_spec else None
    seen["assets_listed"] = asset_id in [a.id for a in (lp.asset.get_all().data or [])]

    try:
        lp.task.get(task_id="does-not-exist")
    except errors.SDKError as exc:
        seen["missing_status"] = exc.status_code
        seen["missing_body"] = json.loads(exc.body)

    seen["task_id"], seen["asset_id"] = task_id, asset_id
    return seen


def delete(lp: Livepeer, asset_id: str) -> dict[str, object]:
    deleted = lp.asset.delete(asset_id=asset_id)
    seen: dict[str, object] = {"delete_status": deleted.http_meta.response.status_code}
    try:
        lp.asset.get(asset_id=asset_id)
    except errors.SDKError as exc:
        seen["deleted_status"] = exc.status_code
    return seen


def main() -> None:
    mode, server_url, api_key, argument = sys.argv[1:5]
    lp = Livepeer(api_key=api_key, server_url=server_url)
    seen = import_and_watch(lp, argument) if mode == "import" else delete(lp, argument)
    sys.stdout.write(json.dumps(seen) + "\n")


if __name__ == "__main__":
    main()
