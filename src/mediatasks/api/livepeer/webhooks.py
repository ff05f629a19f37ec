"""``/webhook``: CRUD as the official SDK expects it, and the delivery log.

Create, update and delete answer 200 with the whole webhook: a deliberate difference from
Studio's 201, ``{id}`` and 204, which make the SDK raise.  ``sharedSecret`` is write-only: no
answer ever shows it.  An update that leaves out
``sharedSecret`` keeps the secret the webhook has (the SDK's update sends none); an empty string
removes it.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from mediatasks import taskstore
from mediatasks.api.livepeer import schemas, wire
from mediatasks.api.livepeer.auth import Project, runtime_of
from mediatasks.api.runtime import Runtime
from mediatasks.webhooks import service as webhooks_service

__all__ = ["router"]

router = APIRouter()
RuntimeDep = Annotated[Runtime, Depends(runtime_of)]


def webhook_json(hook: taskstore.Webhook) -> dict[str, Any]:
    """A webhook as Livepeer's API returns it."""
    body: dict[str, Any] = {
        "id": hook.id,
        "kind": "webhook",
        "name": hook.name,
        "url": hook.url,
        "events": list(hook.events),
        "projectId": hook.project_id,
        "createdAt": wire.ms(hook.created_at),
    }
    status: dict[str, Any] = {}
    if hook.last_triggered_at is not None:
        status["lastTriggeredAt"] = wire.ms(hook.last_triggered_at)
    if hook.last_failure:
        status["lastFailure"] = {k: v for k, v in hook.last_failure.items() if v is not None}
    if status:
        body["status"] = status
    return body


def log_json(entry: taskstore.WebhookLogEntry) -> dict[str, Any]:
    """One delivery attempt as Livepeer's ``WebhookLog``.

    An attempt that got no answer (a refused address, a timeout) has no status: its error is
    shown as the response's ``statusText``.
    """
    response = {k: v for k, v in entry.response.items() if k in ("body", "status", "statusText")}
    if "error" in entry.response and "statusText" not in response:
        response["statusText"] = str(entry.response["error"])
    return {
        "id": entry.id,
        "webhookId": entry.webhook_id,
        "event": entry.event,
        "createdAt": wire.ms(entry.created_at),
        "duration": entry.duration_ms / 1000,
        "success": entry.success,
        "request": dict(entry.request),
        "response": response,
    }


@router.get("/webhook")
async def list_webhooks(project: Project, runtime: RuntimeDep) -> list[dict[str, Any]]:
    found = await runtime.store.list_webhooks(project, limit=1000)
    return [webhook_json(hook) for hook in found]


@router.post("/webhook")
async def create_webhook(
    body: schemas.WebhookInput, project: Project, runtime: RuntimeDep
) -> dict[str, Any]:
    hook = await webhooks_service.create_webhook(
        runtime.store,
        runtime.settings,
        project_id=project,
        name=body.name,
        url=body.url,
        events=body.events,
        shared_secret=body.shared_secret,
    )
    return webhook_json(hook)


@router.get("/webhook/{webhook_id}")
async def get_webhook(webhook_id: str, project: Project, runtime: RuntimeDep) -> dict[str, Any]:
    return webhook_json(await runtime.store.get_webhook(webhook_id, project))


@router.put("/webhook/{webhook_id}")
async def update_webhook(
    webhook_id: str, body: schemas.WebhookInput, project: Project, runtime: RuntimeDep
) -> dict[str, Any]:
    hook = await webhooks_service.update_webhook(
        runtime.store,
        runtime.settings,
        webhook_id,
        project_id=project,
        name=body.name,
        url=body.url,
        events=body.events,
        shared_secret=body.shared_secret,
    )
    return webhook_json(hook)


@router.delete("/webhook/{webhook_id}")
async def delete_webhook(webhook_id: str, project: Project, runtime: RuntimeDep) -> dict[str, Any]:
    return webhook_json(await webhooks_service.delete_webhook(runtime.store, webhook_id, project))


@router.get("/webhook/{webhook_id}/log")
async def webhook_log(
    webhook_id: str, request: Request, project: Project, runtime: RuntimeDep
) -> list[dict[str, Any]]:
    limit = request.query_params.get("limit", "")
    entries = await webhooks_service.delivery_log(
        runtime.store, webhook_id, project, limit=min(int(limit), 1000) if limit.isdigit() else 20
    )
    return [log_json(entry) for entry in entries]


@router.get("/webhook/{webhook_id}/log/{log_id}")
async def webhook_log_entry(
    webhook_id: str, log_id: str, project: Project, runtime: RuntimeDep
) -> dict[str, Any]:
    return log_json(await runtime.store.get_webhook_log(webhook_id, log_id, project))


@router.post("/webhook/{webhook_id}/log/{log_id}/resend")
async def resend(
    webhook_id: str, log_id: str, project: Project, runtime: RuntimeDep
) -> dict[str, Any]:
    """Send the event of a logged attempt again, now; answer with the new attempt."""
    entry = await webhooks_service.resend(
        runtime.store, runtime.settings, webhook_id, log_id, project
    )
    return log_json(entry)
