"""The durable task store: ``open_task_store(url)`` picks the backend from the URL.

``sqlite:///path/to/file.db`` gives ``SqliteTaskStore``; ``postgresql://...`` (or
``postgres://...``) gives ``PostgresTaskStore``.
"""

from __future__ import annotations

from pathlib import Path

from mediatasks import errors
from mediatasks.taskstore.base import (
    ApiKey,
    AssetPatch,
    Completion,
    Delivery,
    Filter,
    FinishedCount,
    NewAsset,
    NewTask,
    OutboxEvent,
    Page,
    Project,
    Query,
    RescuePolicy,
    RunningTask,
    SigningKey,
    TaskStore,
    Webhook,
    WebhookLogEntry,
    WorkerIdentity,
    WorkerRecord,
)

__all__ = [
    "ApiKey",
    "AssetPatch",
    "Completion",
    "Delivery",
    "Filter",
    "FinishedCount",
    "NewAsset",
    "NewTask",
    "OutboxEvent",
    "Page",
    "Project",
    "Query",
    "RescuePolicy",
    "RunningTask",
    "SigningKey",
    "TaskStore",
    "Webhook",
    "WebhookLogEntry",
    "WorkerIdentity",
    "WorkerRecord",
    "open_task_store",
]


def open_task_store(url: str, *, timeout_s: float = 1.5) -> TaskStore:
    """The task store that ``url`` names.  Call ``migrate()`` before using it.

    A call that cannot be answered within ``timeout_s`` (the database is unreachable, hangs or
    stays locked) raises ``errors.Unavailable``.
    """
    if url.startswith("sqlite:///"):
        from mediatasks.taskstore.sqlite import SqliteTaskStore

        return SqliteTaskStore(Path(url.removeprefix("sqlite:///")), timeout_s=timeout_s)
    if url.startswith(("postgresql://", "postgres://")):
        try:
            from mediatasks.taskstore.postgres import PostgresTaskStore
        except ImportError as exc:  # the postgres extra is not installed
            raise errors.ConfigurationError(
                "PostgreSQL needs the postgres extra: pip install 'mediatasks[postgres]'"
            ) from exc
        return PostgresTaskStore(url, timeout_s=timeout_s)
    raise errors.ConfigurationError(f"unsupported task store URL: {url.split(':', 1)[0]}://...")
