"""Webhook use cases: what ``/api/webhook`` and the dashboard's webhook pages ask for.

Create, change and delete a project's webhooks, read their delivery log, and send a logged
event again.  A webhook's URL is checked as every outgoing URL is (``fetch.check_url``).  The
shared secret is write-only: ``taskstore.Webhook`` carries it for the sender, and no face shows
it (``has_secret`` says whether there is one).
"""

from __future__ import annotations

from collections.abc import Sequence

from mediatasks import fetch, taskstore
from mediatasks import settings as settings_module
from mediatasks.webhooks import sender

__all__ = [
    "create_webhook",
    "delete_webhook",
    "delivery_log",
    "has_secret",
    "resend",
    "update_webhook",
]


def has_secret(hook: taskstore.Webhook) -> bool:
    """Whether the webhook signs its deliveries with a shared secret."""
    return bool(hook.shared_secret)


async def create_webhook(
    store: taskstore.TaskStore,
    settings: settings_module.Settings,
    *,
    project_id: str,
    name: str,
    url: str,
    events: Sequence[str],
    shared_secret: str | None,
) -> taskstore.Webhook:
    """A new webhook of the project; ``errors.UnsafeURL`` for a URL that cannot be called."""
    fetch.check_url(url, allow_private=settings.allow_private_urls)
    return await store.create_webhook(
        project_id,
        name=name,
        url=url,
        events=list(dict.fromkeys(events)),
        shared_secret=shared_secret,
    )


async def update_webhook(
    store: taskstore.TaskStore,
    settings: settings_module.Settings,
    webhook_id: str,
    *,
    project_id: str,
    name: str,
    url: str,
    events: Sequence[str],
    shared_secret: str | None,
) -> taskstore.Webhook:
    """Change a webhook.  ``shared_secret=None`` keeps its secret; ``""`` removes it."""
    fetch.check_url(url, allow_private=settings.allow_private_urls)
    return await store.update_webhook(
        webhook_id,
        project_id,
        name=name,
        url=url,
        events=list(dict.fromkeys(events)),
        shared_secret=shared_secret,
    )


async def delete_webhook(
    store: taskstore.TaskStore, webhook_id: str, project_id: str
) -> taskstore.Webhook:
    """Delete a webhook: it receives nothing more, and its log goes with it."""
    return await store.delete_webhook(webhook_id, project_id)


async def delivery_log(
    store: taskstore.TaskStore,
    webhook_id: str,
    project_id: str,
    *,
    limit: int = 20,
    offset: int = 0,
    success: bool | None = None,
) -> list[taskstore.WebhookLogEntry]:
    """A webhook's delivery attempts, newest first; only the ones that succeeded (or failed)
    when ``success`` is given.  ``errors.NotFound`` for another project's webhook."""
    await store.get_webhook(webhook_id, project_id)
    return await store.list_webhook_log(
        webhook_id, project_id, limit=limit, offset=offset, success=success
    )


async def resend(
    store: taskstore.TaskStore,
    settings: settings_module.Settings,
    webhook_id: str,
    log_id: str,
    project_id: str,
) -> taskstore.WebhookLogEntry:
    """Send the event of a logged attempt again, now; the new attempt as logged."""
    hooks = sender.Sender(settings, store)
    try:
        delivery = await store.resend(webhook_id, log_id, project_id, lock_s=hooks.lock_s)
        return await hooks.attempt(delivery)
    finally:
        await hooks.close()
