"""Drive a server with the official ``livepeer`` SDK; run with the SDK's own Python.

Usage: livepeer_flow.py import <server_url ending in /api> <api_key> <source_url>
       livepeer_flow.py delete <server_url ending in /api> <api_key> <asset_id>
       livepeer_flow.py webhooks <server_url ending in /api> <api_key> <receiver_url>
       livepeer_flow.py clip <server_url ending in /api> <api_key> <source_url>
       livepeer_flow.py create <server_url ending in /api> <api_key> <file_path>
       livepeer_flow.py export <server_url ending in /api> <api_key> <JSON: source, target, key>
       livepeer_flow.py transcode <server_url ending in /api> <api_key> <job as JSON>
       livepeer_flow.py access <server_url ending in /api> <api_key> <source_url>
       livepeer_flow.py retire-key <server_url ending in /api> <api_key> <signing key id>
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


def webhooks(lp: Livepeer, receiver_url: str) -> dict[str, object]:
    seen: dict[str, object] = {}
    created = lp.webhook.create(
        request={
            "name": "sdk hook",
            "url": receiver_url,
            "events": ["asset.created", "task.spawned"],
            "shared_secret": "sdk-secret",
        }
    ).webhook
    seen["created"] = {"id": created.id, "name": created.name, "url": created.url}
    seen["events"] = sorted(e.value for e in created.events or [])
    seen["got"] = lp.webhook.get(id=created.id).webhook.name
    seen["listed"] = [w.id for w in lp.webhook.get_all().data or []]
    updated = lp.webhook.update(
        id=created.id,
        webhook={"name": "renamed", "url": receiver_url, "events": ["asset.created"]},
    ).webhook
    seen["updated"] = {"name": updated.name, "events": [e.value for e in updated.events or []]}
    lp.asset.create_via_url(request={"name": "hooked", "url": receiver_url + "/missing.mp4"})
    logs: list = []
    deadline = time.monotonic() + 20
    while not logs and time.monotonic() < deadline:
        logs = lp.webhook.get_logs(id=created.id).data or []
        time.sleep(0.1)
    seen["log_events"] = [entry.event for entry in logs]
    seen["log_success"] = [entry.success for entry in logs]
    if logs:
        one = lp.webhook.get_log(id=created.id, log_id=logs[0].id).webhook_log
        seen["log_entry"] = one.id == logs[0].id if one else None
        again = lp.webhook.resend_log(id=created.id, log_id=logs[0].id).webhook_log
        seen["resent"] = bool(again and again.success)
    deleted = lp.webhook.delete(id=created.id).webhook
    seen["deleted"] = deleted.id if deleted else None
    try:
        lp.webhook.get(id=created.id)
    except errors.SDKError as exc:
        seen["after_delete"] = exc.status_code
    return seen


def transcode(lp: Livepeer, job_json: str) -> dict[str, object]:
    """``transcode.create`` from a URL and from an S3 object, then ``task.get`` until done.

    ``job`` holds ``source_url``, ``endpoint``, ``bucket``, ``input_path``, ``access_key`` and
    ``secret_key``.
    """
    job = json.loads(job_json)
    storage = {
        "type": "s3",
        "endpoint": job["endpoint"],
        "bucket": job["bucket"],
        "credentials": {"access_key_id": job["access_key"], "secret_access_key": job["secret_key"]},
    }
    seen: dict[str, object] = {}
    requests = {
        "url": {
            "input": {"url": job["source_url"]},
            "storage": storage,
            "outputs": {
                "hls": {"path": "/sdk/hls"},
                "mp4": {"path": "sdk/mp4"},
                "fmp4": {"path": "/sdk/fmp4"},
            },
            "profiles": [
                {"name": "360p0", "width": 640, "height": 360, "bitrate": 800_000},
                {"name": "240p0", "width": 426, "height": 240, "bitrate": 300_000},
            ],
            "target_segment_size_secs": 1,
            "creator_id": {"type": "unverified", "value": "sdk user"},
        },
        "s3": {
            "input": {**storage, "path": job["input_path"]},
            "storage": storage,
            "outputs": {"mp4": {"path": "/sdk/from-s3"}},
            "profiles": [{"name": "240p0", "width": 426, "height": 240, "bitrate": 300_000}],
        },
    }
    for name, request in requests.items():
        created = lp.transcode.create(request=request)
        task = created.task
        found: dict[str, object] = {
            "status_code": created.http_meta.response.status_code,
            "type": task.type.value,
            "phase_at_creation": task.status.phase.value,
        }
        params = task.params.transcode_file
        found["params_input"] = params.input.url
        found["params_storage"] = params.storage.url
        found["params_outputs"] = params.outputs.model_dump(exclude_none=True)
        found["raw"] = created.http_meta.response.text
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            task = lp.task.get(task_id=task.id).task
            if task.status.phase.value in ("completed", "failed", "cancelled"):
                break
            time.sleep(0.1)
        found["phase"] = task.status.phase.value
        found["error"] = task.status.error_message
        found["task_id"] = task.id
        seen[name] = found
    seen["listed"] = sorted(t.type.value for t in (lp.task.get_all().data or []))
    try:
        lp.transcode.create(
            request={
                "input": {"url": job["source_url"]},
                "storage": {"type": "web3.storage", "credentials": {"proof": "x"}},
                "outputs": {"hls": {"path": "/w3s"}},
            }
        )
    except errors.SDKError as exc:
        seen["web3_status"] = exc.status_code
        seen["web3_body"] = json.loads(exc.body)
    return seen


def clip(lp: Livepeer, source_url: str) -> dict[str, object]:
    """Import a video, then clip its second to fourth second with the SDK's clip call."""
    created = lp.asset.create_via_url(request={"name": "to clip", "url": source_url})
    upload = created.two_hundred_and_one_application_json_data
    _wait(lp, upload.task.id)
    playback_id = lp.asset.get(asset_id=upload.asset.id).asset.playback_id
    clipped = lp.stream.create_clip(
        request={"playback_id": playback_id, "start_time": 1000, "end_time": 3000, "name": "c"}
    ).data
    task = _wait(lp, clipped.task.id)
    asset = lp.asset.get(asset_id=clipped.asset.id).asset
    return {
        "phase": task.status.phase.value,
        "type": task.type.value,
        "source_type": asset.source.type.value,
        "duration": asset.video_spec.duration if asset.video_spec else None,
        "asset_phase": asset.status.phase.value,
    }


def create_and_put(lp: Livepeer, file_path: str) -> dict[str, object]:
    """request-upload with the SDK, a raw PUT of the file, then the SDK's asset.update."""
    import httpx

    up = lp.asset.create(request={"name": "put.mp4", "static_mp4": True}).data
    seen: dict[str, object] = {"phase_before": up.asset.status.phase.value}
    with open(file_path, "rb") as file:
        put = httpx.put(up.url, content=file.read(), headers={"Content-Type": "video/mp4"})
    seen["put_status"] = put.status_code
    task = _wait(lp, up.task.id)
    seen["task_phase"] = task.status.phase.value
    seen["spec_id"] = task.output.upload.asset_spec.id if task.output else None
    updated = lp.asset.update(
        asset_id=up.asset.id,
        asset_patch_payload={"name": "renamed.mp4", "creator_id": "someone"},
    ).asset
    seen["updated_name"] = updated.name
    seen["asset_id"] = up.asset.id
    seen["download_url"] = lp.asset.get(asset_id=up.asset.id).asset.download_url
    return seen


def export(lp: Livepeer, argument: str) -> dict[str, object]:
    """Exports (plain HTTP: the SDK has no export call), then task.get on them with the SDK."""
    import httpx

    urls = json.loads(argument)
    created = lp.asset.create_via_url(request={"name": "to export", "url": urls["source"]})
    upload = created.two_hundred_and_one_application_json_data
    _wait(lp, upload.task.id)
    api = httpx.Client(
        base_url=lp.sdk_configuration.server_url,
        headers={"Authorization": f"Bearer {urls['key']}"},
    )
    seen: dict[str, object] = {}
    for kind, body in (
        ("custom", {"custom": {"url": urls["target"], "method": "PUT"}}),
        ("ipfs", {"ipfs": {}}),
    ):
        answer = api.post(f"/asset/{upload.asset.id}/export", json=body)
        seen[f"{kind}_status"] = answer.status_code
        task = _wait(lp, answer.json()["task"]["id"])
        seen[f"{kind}_phase"] = task.status.phase.value
        seen[f"{kind}_type"] = task.type.value
        if kind == "ipfs" and task.output and task.output.export and task.output.export.ipfs:
            seen["cid"] = task.output.export.ipfs.video_file_cid
    return seen


def access(lp: Livepeer, source_url: str) -> dict[str, object]:
    """Signing keys with ``access_control``, a ``jwt`` asset, its ``playback.get``."""
    seen: dict[str, object] = {}
    created = lp.access_control.create()
    key = created.signing_key
    seen["create_status"] = created.http_meta.response.status_code
    seen["key_id"] = key.id
    seen["public_key"] = key.public_key
    seen["private_key"] = created.http_meta.response.json()["privateKey"]
    seen["listed"] = [k.id for k in lp.access_control.get_all().data or []]
    got = lp.access_control.get(key_id=key.id).signing_key
    seen["got"] = {"public_key": got.public_key, "disabled": got.disabled, "name": got.name}
    renamed = lp.access_control.update(key_id=key.id, request_body={"name": "renamed"})
    seen["update_status"] = renamed.http_meta.response.status_code
    seen["renamed"] = lp.access_control.get(key_id=key.id).signing_key.name

    asset = lp.asset.create_via_url(
        request={"name": "gated", "url": source_url, "playback_policy": {"type": "jwt"}}
    ).two_hundred_and_one_application_json_data
    seen["task_phase"] = _wait(lp, asset.task.id).status.phase.value
    info = lp.playback.get(id=asset.asset.playback_id).playback_info
    seen["playback_id"] = asset.asset.playback_id
    seen["info_type"] = info.type.value
    seen["info_policy"] = info.meta.playback_policy.type.value
    seen["sources"] = [
        {"hrn": s.hrn.value, "type": s.type.value, "url": s.url, "width": s.width}
        for s in info.meta.source
    ]
    try:
        lp.playback.get(id="nosuchplayback00")
        seen["missing"] = "found"
    except errors.Error as exc:
        seen["missing"] = exc.data.errors
    return seen


def retire_key(lp: Livepeer, key_id: str) -> dict[str, object]:
    """Disable a signing key, then delete it, with ``access_control``."""
    seen: dict[str, object] = {}
    disabled = lp.access_control.update(key_id=key_id, request_body={"disabled": True})
    seen["update_status"] = disabled.http_meta.response.status_code
    seen["disabled"] = lp.access_control.get(key_id=key_id).signing_key.disabled
    seen["delete_status"] = lp.access_control.delete(key_id=key_id).http_meta.response.status_code
    try:
        lp.access_control.get(key_id=key_id)
        seen["after_delete"] = "found"
    except errors.SDKError as exc:
        seen["after_delete"] = exc.status_code
    seen["listed"] = [k.id for k in lp.access_control.get_all().data or []]
    return seen


def _wait(lp: Livepeer, task_id: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        task = lp.task.get(task_id=task_id).task
        if task.status.phase.value in ("completed", "failed", "cancelled"):
            return task
        time.sleep(0.1)
    raise TimeoutError(task_id)


def main() -> None:
    mode, server_url, api_key, argument = sys.argv[1:5]
    lp = Livepeer(api_key=api_key, server_url=server_url)
    flows = {
        "import": import_and_watch,
        "delete": delete,
        "webhooks": webhooks,
        "transcode": transcode,
        "clip": clip,
        "create": create_and_put,
        "export": export,
        "access": access,
        "retire-key": retire_key,
    }
    seen = flows[mode](lp, argument)
    sys.stdout.write(json.dumps(seen) + "\n")


if __name__ == "__main__":
    main()
