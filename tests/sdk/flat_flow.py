"""Drive a server with the official ``flat-api`` client (2.0.4); run with the SDK's own Python.

Usage: flat_flow.py export <server_url ending in /v2> <token> <score file> <mp3|wav> <out file>
       flat_flow.py cancel <server_url ending in /v2> <token> <score file>
       flat_flow.py bad <server_url ending in /v2> <token> <folder of bad score files>

A score file ending in ``.mid`` is sent as Base64 (with ``data_encoding`` given by attribute
name, which the client silently drops under pydantic < 2.11: the server must sniff it); any
other file is sent as MusicXML text.  Prints one JSON document with what the client saw.
"""

from __future__ import annotations

import base64
import json
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import flat_api
from flat_api import ScoreCreation, ScoreCreationFileImport, TaskExportOptions


def create_score(scores: Any, path: Path) -> Any:
    if path.suffix == ".mid":
        payload = ScoreCreationFileImport(
            data=base64.b64encode(path.read_bytes()).decode(),
            data_encoding="base64",  # dropped by the client under pydantic < 2.11
            filename=path.name,
        )
    else:
        payload = ScoreCreationFileImport(
            title=f"SDK {path.stem}", data=path.read_text(encoding="utf-8"), filename=path.name
        )
    return scores.create_score(ScoreCreation(payload))


def task_seen(task: Any) -> dict[str, Any]:
    progress = task.progress
    return {
        "id": task.id,
        "type": task.type,
        "state": task.state,
        "format": task.format,
        "score": task.score,
        "revision": task.revision,
        "percent": progress.percent if progress else None,
        "text": progress.text if progress else None,
        "is_cancellable": task.is_cancellable,
        "creation_date": task.creation_date.isoformat() if task.creation_date else None,
        "modification_date": task.modification_date.isoformat() if task.modification_date else None,
        "done_date": task.done_date.isoformat() if task.done_date else None,
        "result_url": task.result.url if task.result else None,
        "result_error": task.result.error if task.result else None,
        "error_history": task.error_history,
    }


def poll(tasks: Any, task_id: str, timeout_s: float = 120) -> tuple[Any, list[dict[str, Any]]]:
    polls: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout_s
    while True:
        task = tasks.get_task(task_id)
        seen = task_seen(task)
        polls.append({"state": seen["state"], "percent": seen["percent"], "text": seen["text"]})
        if task.state in ("done", "error", "canceled") or time.monotonic() > deadline:
            return task, polls
        time.sleep(0.2)


def export(api: Any, score_path: Path, audio_format: str, out: Path) -> dict[str, Any]:
    scores, tasks = flat_api.ScoreApi(api), flat_api.TaskApi(api)
    seen: dict[str, Any] = {}
    score = create_score(scores, score_path)
    seen["score"] = {
        "id": score.id,
        "title": score.title,
        "privacy": score.privacy,
        "instruments": score.instruments,
        "instruments_names": score.instruments_names,
        "parts": score.additional_properties.get("parts"),
    }
    seen["score_again_title"] = scores.get_score(score.id).title
    revisions = scores.get_score_revisions(score.id)
    seen["revisions"] = [revision.id for revision in revisions]

    created = scores.create_export_task(score.id, "last", audio_format)
    seen["created"] = task_seen(created)
    task, polls = poll(tasks, created.id)
    seen["polls"] = polls
    seen["final"] = task_seen(task)
    if task.state == "done":
        # Plain urllib, no token: the URL must work on its own.
        with urllib.request.urlopen(task.result.url, timeout=30) as response:
            out.write_bytes(response.read())
            seen["download_type"] = response.headers.get("Content-Type")
        # The same rendering, synchronously, through the client (which sends Accept: json).
        data = scores.get_score_revision_data(score.id, "last", audio_format)
        seen["revision_data_matches"] = data == out.read_bytes()
        seen["midi_magic"] = scores.get_score_revision_data(score.id, "last", "midi")[:4].decode(
            "latin-1"
        )
        if score_path.suffix != ".mid":
            xml = scores.get_score_revision_data(score.id, "last", "xml")
            seen["xml_starts"] = xml[:5].decode()
        png = scores.get_score_revision_data(score.id, "last", "thumbnail.png")
        seen["thumbnail_magic"] = png[:8].hex()
        # A second export of one part only.
        first_part = (seen["score"]["parts"] or [{}])[0].get("id")
        if first_part:
            partial = scores.create_export_task(
                score.id, "last", audio_format, body=TaskExportOptions(parts=[first_part])
            )
            partial_task, _ = poll(tasks, partial.id)
            seen["partial_final"] = task_seen(partial_task)
        tampered = task.result.url.replace("signature=", "signature=0")
        try:
            urllib.request.urlopen(tampered, timeout=30)
            seen["tampered_status"] = 200
        except urllib.error.HTTPError as exc:
            seen["tampered_status"] = exc.code
    try:
        scores.create_export_task(score.id, "last", "flac")
    except flat_api.FlatError as exc:
        seen["flac_error"] = {"class": type(exc).__name__, "status": exc.status, "body": exc.body}
    try:
        tasks.get_task("does-not-exist")
    except flat_api.FlatError as exc:
        seen["missing_error"] = {"class": type(exc).__name__, "status": exc.status}
    return seen


def cancel(api: Any, base_url: str, token: str, score_path: Path) -> dict[str, Any]:
    scores, tasks = flat_api.ScoreApi(api), flat_api.TaskApi(api)
    score = create_score(scores, score_path)
    created = scores.create_export_task(score.id, "last", "mp3")
    seen: dict[str, Any] = {"created": task_seen(created)}
    # flat-api 2.0.4 has no cancel method (the spec lists the path without an operation).
    seen["cancel_status"], seen["cancel_body"] = post(
        f"{base_url}/tasks/{created.id}/cancel", token
    )
    seen["after"] = task_seen(tasks.get_task(created.id))
    seen["again_status"], seen["again_body"] = post(f"{base_url}/tasks/{created.id}/cancel", token)
    return seen


def post(url: str, token: str) -> tuple[int, Any]:
    request = urllib.request.Request(
        url, method="POST", data=b"", headers={"Authorization": f"Bearer {token}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def bad(api: Any, folder: Path) -> dict[str, Any]:
    scores = flat_api.ScoreApi(api)
    seen: dict[str, Any] = {}
    for path in sorted(folder.iterdir()):
        try:
            create_score(scores, path)
            seen[path.name] = {"class": None}
        except flat_api.FlatError as exc:
            seen[path.name] = {
                "class": type(exc).__name__,
                "status": exc.status,
                "body": json.loads(exc.body) if isinstance(exc.body, str | bytes) else None,
            }
    return seen


def main() -> None:
    mode, server_url, token = sys.argv[1:4]
    configuration = flat_api.Configuration(host=server_url)
    configuration.access_token = token
    with flat_api.ApiClient(configuration) as api:
        if mode == "export":
            seen = export(api, Path(sys.argv[4]), sys.argv[5], Path(sys.argv[6]))
        elif mode == "cancel":
            seen = cancel(api, server_url, token, Path(sys.argv[4]))
        else:
            seen = bad(api, Path(sys.argv[4]))
    sys.stdout.write(json.dumps(seen) + "\n")


if __name__ == "__main__":
    main()
