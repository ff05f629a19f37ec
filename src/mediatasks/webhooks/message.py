"""What a webhook receives: Livepeer's envelope, payload and signature.

``{"id", "webhookId", "createdAt", "timestamp", "event", "payload"}``, signed with
``Livepeer-Signature: t=<timestamp ms>,v1=<hex HMAC-SHA256 of the raw body>``.  The event ``id`` is
the outbox event's, the same on every retry, so a receiver can de-duplicate by it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import datetime
from typing import Any, Final

from mediatasks import taskstore
from mediatasks.api.livepeer import wire
from mediatasks.taskstore import rows

__all__ = ["EVENTS", "body", "sign", "signature_header"]

#: The events this service emits (Livepeer's names).
EVENTS: Final = (
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


def _payload(event: taskstore.OutboxEvent, base_url: str) -> dict[str, Any]:
    kind, row = event.payload["kind"], event.payload["row"]
    if kind == "task":
        task = rows.task_from_row(row)
        payload: dict[str, Any] = {
            "task": {"id": task.id, "type": task.type, "snapshot": wire.task_json(task)}
        }
    else:
        asset = rows.asset_from_row(row)
        payload = {"asset": {"id": asset.id, "snapshot": wire.asset_json(asset, base_url=base_url)}}
    if "success" in event.payload:
        payload["success"] = event.payload["success"]
    return payload


def body(delivery: taskstore.Delivery, *, base_url: str, now: datetime) -> bytes:
    """The exact bytes POSTed for one attempt of ``delivery``."""
    event = delivery.event
    envelope = {
        "id": event.id,
        "webhookId": delivery.webhook.id,
        "createdAt": wire.ms(event.created_at),
        "timestamp": wire.ms(now),
        "event": event.name,
        "payload": _payload(event, base_url),
    }
    return json.dumps(envelope, separators=(",", ":")).encode()


def sign(secret: str, raw_body: bytes) -> str:
    """Hex HMAC-SHA256 of the raw body."""
    return hmac.new(secret.encode(), raw_body, hashlib.sha256).hexdigest()


def signature_header(secret: str, raw_body: bytes, timestamp_ms: int) -> str:
    """The ``Livepeer-Signature`` header value."""
    return f"t={timestamp_ms},v1={sign(secret, raw_body)}"
