"""No secret comes back: not in an answer, a webhook delivery, a timeline or the server's log,
in no form (as sent, URL-encoded, JSON-escaped, Base64).

Every kind of secret a client gives is used in a real flow against a real server: a webhook's
shared secret, S3 credentials of a transcode, Pinata credentials of an export, the headers of a
custom export, credentials in a source URL, an encrypted upload's key, and the API key itself.
"""

from __future__ import annotations

import base64
import json
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests import s3server, world

pytestmark = pytest.mark.slow

PINATA_JWT = "pinata-jwt-Zq81x"
PINATA_SECRET = "pinata-secret-Kp20v"
HEADER_TOKEN = "header-token-Wd55m"
URL_PASSWORD = "url-pass-Hy39t"
URL_TOKEN = "url-token-Mn47b"
ENCRYPTED_KEY = "encrypted-key-Qa62c"


def forms(secret: str) -> set[str]:
    """The ways a secret could be written down."""
    return {
        secret,
        urllib.parse.quote(secret, safe=""),
        urllib.parse.quote_plus(secret),
        json.dumps(secret)[1:-1],
        base64.b64encode(secret.encode()).decode().rstrip("="),
        base64.urlsafe_b64encode(secret.encode()).decode().rstrip("="),
    }


@pytest.fixture
def running(tmp_path: Path) -> Iterator[world.World]:
    with world.world(tmp_path) as found:
        yield found


def test_no_secret_in_any_answer_delivery_timeline_or_log(running: world.World) -> None:
    w = running
    key = w.server.key
    texts: list[tuple[str, str]] = []

    with httpx.Client(
        base_url=w.api, headers={"Authorization": f"Bearer {key}"}, timeout=60
    ) as client:

        def send(method: str, path: str, **kw: Any) -> Any:
            response = client.request(method, path, **kw)
            texts.append((f"{method} {path}", response.text + json.dumps(dict(response.headers))))
            return response.json() if response.content else None

        def finish(task_id: str) -> None:
            """Wait for the task, which must complete: a flow that failed early proves less."""
            deadline = time.monotonic() + 120
            phase = "waiting"
            while time.monotonic() < deadline and phase not in ("completed", "failed"):
                task = send("GET", f"/task/{task_id}")
                phase = task["status"]["phase"]
                time.sleep(0.2)
            assert phase == "completed", task

        hook = send(
            "POST",
            "/webhook",
            json={
                "name": "h",
                "url": w.receiver.url,
                "events": list(_ALL_EVENTS),
                "sharedSecret": world.WEBHOOK_SECRET,
            },
        )
        source = w.source.replace("http://", f"http://user:{URL_PASSWORD}@") + f"?token={URL_TOKEN}"
        imported = send("POST", "/asset/upload/url", json={"name": "a", "url": source})
        finish(imported["task"]["id"])
        asset_id = imported["asset"]["id"]
        refused = send(
            "POST",
            "/asset/request-upload",
            json={"name": "e", "encryption": {"encryptedKey": ENCRYPTED_KEY}},
        )
        assert "errors" in refused
        w.moto.write(w.bucket, "in/clip.mp4", httpx.get(w.source).content)
        transcode = send(
            "POST",
            "/transcode",
            json={
                "input": {
                    "type": "s3",
                    "endpoint": w.moto.endpoint_url,
                    "bucket": w.bucket,
                    "path": "/in/clip.mp4",
                    "credentials": {
                        "accessKeyId": s3server.ACCESS_KEY,
                        "secretAccessKey": s3server.SECRET_KEY,
                    },
                },
                "storage": {
                    "type": "s3",
                    "endpoint": w.moto.endpoint_url,
                    "bucket": w.bucket,
                    "credentials": {
                        "accessKeyId": s3server.ACCESS_KEY,
                        "secretAccessKey": s3server.SECRET_KEY,
                    },
                },
                "outputs": {"hls": {"path": "/out"}},
            },
        )
        finish(transcode["id"])
        custom = send(
            "POST",
            f"/asset/{asset_id}/export",
            json={
                "custom": {
                    "url": w.target.url + f"?X-Amz-Signature={HEADER_TOKEN}",
                    "headers": {"Authorization": f"Bearer {HEADER_TOKEN}", "X-Key": HEADER_TOKEN},
                }
            },
        )
        finish(custom["task"]["id"])
        for pinata in ({"jwt": PINATA_JWT}, {"apiKey": "k", "apiSecret": PINATA_SECRET}):
            exported = send("POST", f"/asset/{asset_id}/export", json={"ipfs": {"pinata": pinata}})
            finish(exported["task"]["id"])
        send("PUT", f"/webhook/{hook['id']}", json={"name": "h", "url": w.receiver.url})
        tasks = send("GET", "/task", params={"limit": 1000})
        for task in tasks:
            send("GET", f"/task/{task['id']}/events")
        send("GET", "/asset", params={"limit": 1000})
        send("GET", "/webhook")
        for entry in send("GET", f"/webhook/{hook['id']}/log", params={"limit": 1000}):
            send("GET", f"/webhook/{hook['id']}/log/{entry['id']}")
        send("DELETE", f"/webhook/{hook['id']}")

    texts += [(f"webhook delivery {i}", raw) for i, raw in enumerate(_deliveries(w))]
    texts.append(("the server's log", w.server.proc.log()))
    secrets = [
        world.WEBHOOK_SECRET,
        s3server.SECRET_KEY,
        s3server.ACCESS_KEY,
        PINATA_JWT,
        PINATA_SECRET,
        HEADER_TOKEN,
        URL_PASSWORD,
        URL_TOKEN,
        ENCRYPTED_KEY,
        key,
    ]
    # The embedded shape prints its bootstrap API key at its first start, on purpose (that is
    # how a new user gets one): the log may hold that key, and nothing else may.
    leaks = [
        f"{where}: {secret!r} as {form!r}"
        for secret in secrets
        for form in forms(secret)
        for where, text in texts
        if form in text and not (secret == key and where == "the server's log")
    ]
    print(f"{len(texts)} answers, deliveries and logs searched for {len(secrets)} secrets")
    assert not leaks, "\n".join(leaks)
    assert len(tasks) >= 5 and w.receiver.requests  # the flows ran


_ALL_EVENTS = (
    "task.spawned",
    "task.updated",
    "task.completed",
    "task.failed",
    "asset.created",
    "asset.updated",
    "asset.ready",
    "asset.failed",
    "asset.deleted",
)


def _deliveries(w: world.World) -> list[str]:
    return [json.dumps(body) for body in w.receiver.unique.values()]
