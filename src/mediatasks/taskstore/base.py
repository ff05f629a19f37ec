"""The task store contract: one ``Protocol`` that every backend implements.

The task store is the durable database of tasks, their event log, assets, projects and API keys
(media files live in the blob store).  Every phase change is a named method that runs one guarded
statement and appends to the event log in the same transaction; a guard that matches no row raises
``InvalidTransition`` (or ``LeaseLost`` for a worker's lease).  Methods take ``now`` so that tests
never patch the clock.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Generic, Literal, Protocol, TypeVar

from mediatasks import assets, tasks

__all__ = [
    "ApiKey",
    "AssetPatch",
    "Completion",
    "Delivery",
    "Filter",
    "IdempotentRequest",
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
]

_T = TypeVar("_T")


@dataclasses.dataclass(frozen=True, kw_only=True)
class NewTask:
    """What it takes to create a task."""

    project_id: str
    type: str
    params: Mapping[str, Any]
    #: ``pending`` tasks wait for ``schedule``; ``waiting`` ones are runnable at once.
    phase: Literal[tasks.Phase.PENDING, tasks.Phase.WAITING] = tasks.Phase.WAITING
    max_retries: int = 2
    input_asset_id: str | None = None
    output_asset_id: str | None = None
    id: str | None = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class NewAsset:
    """What it takes to create an asset (its id and playback id are chosen by the caller)."""

    id: str
    project_id: str
    name: str
    playback_id: str
    phase: assets.AssetPhase
    source: Mapping[str, Any]
    options: Mapping[str, Any]
    #: Livepeer's ``storage`` from the start: an IPFS spec asked for at creation, exported once
    #: the asset is ready.
    storage: Mapping[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Filter:
    """One condition of a list query: ``field op value``; the fields are a fixed list."""

    field: str
    op: Literal["eq", "gt", "gte", "lt", "lte", "like"]
    value: str | int | float


@dataclasses.dataclass(frozen=True, kw_only=True)
class Query:
    """A page of a project's tasks or assets."""

    project_id: str
    limit: int = 20
    offset: int = 0
    #: Keyset paging: the page starts after the row with these values of the order's columns
    #: and ``id`` (``Page.next_after`` of the page before).  ``offset`` is ignored then.
    after: Sequence[Any] | None = None
    #: ``(field, descending)`` pairs; the fields are a fixed list.
    order: Sequence[tuple[str, bool]] = (("updated_at", True), ("created_at", True))
    filters: Sequence[Filter] = ()
    #: Only tasks of these types (every type when empty); assets ignore it.
    types: Sequence[str] = ()
    with_total: bool = False


@dataclasses.dataclass(frozen=True, kw_only=True)
class Page(Generic[_T]):
    """One page of results and, when asked for, how many match in all."""

    items: Sequence[_T]
    total: int | None = None
    #: Where the next page starts (``Query.after``), when there is one.
    next_after: tuple[Any, ...] | None = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class RescuePolicy:
    """How the rescuer treats a task whose worker is gone (dead, or silent past its lease).

    Losing a worker is not the input's fault: the task runs again at once and its retries are not
    spent.  A task that keeps losing its workers (it may be what kills them) fails once it has
    been taken back ``max_rescues`` times.
    """

    max_rescues: int = 3
    #: A worker whose session is gone (PostgreSQL) and that has not been seen for this long is
    #: dead: its tasks are taken back before their leases expire.
    silent_s: float = 3.0
    error_message: str = "the worker running this task stopped responding"


@dataclasses.dataclass(frozen=True, kw_only=True)
class Completion:
    """One finished task, for ``complete_many``."""

    task_id: str
    lease_token: str
    output: Mapping[str, Any]
    asset_media: Mapping[str, Any] | None = None
    detail: Mapping[str, Any] | None = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class WorkerIdentity:
    """Who a worker process is, as it registers itself."""

    id: str
    #: The host name, for people.
    host: str
    #: This machine and process namespace (boot id and pid namespace): another worker with the
    #: same node can tell from ``pid`` whether this one is still alive.
    node: str
    pid: int


@dataclasses.dataclass(frozen=True, kw_only=True)
class RunningTask:
    """A task that a worker runs now."""

    id: str
    project_id: str
    type: str
    progress: float | None
    started_at: datetime | None


@dataclasses.dataclass(frozen=True, kw_only=True)
class WorkerRecord:
    """A worker in the registry: who it is, when it was last seen, what it runs."""

    id: str
    host: str
    node: str
    pid: int
    started_at: datetime
    last_seen_at: datetime
    stopped_at: datetime | None
    running: Sequence[RunningTask] = ()


@dataclasses.dataclass(frozen=True, kw_only=True)
class FinishedCount:
    """How many of a project's tasks finished in one interval of time."""

    #: The interval's start; it lasts until the next one's.
    start: datetime
    completed: int
    failed: int


@dataclasses.dataclass(frozen=True, kw_only=True)
class Project:
    """A tenant: API keys, tasks and assets belong to exactly one project."""

    id: str
    name: str
    created_at: datetime


@dataclasses.dataclass(frozen=True, kw_only=True)
class ApiKey:
    """An API key's record; the secret itself is only known when it is created."""

    id: str
    project_id: str
    name: str
    created_at: datetime
    revoked_at: datetime | None = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class Webhook:
    """A URL that receives a project's events."""

    id: str
    project_id: str
    name: str
    url: str
    events: Sequence[str]
    shared_secret: str | None
    created_at: datetime
    updated_at: datetime
    last_triggered_at: datetime | None = None
    #: ``{"timestamp", "error", "statusCode", "response"}`` of the last failed attempt.
    last_failure: Mapping[str, Any] | None = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class SigningKey:
    """The public half of a project's ES256 key pair; tokens it signs play ``jwt`` assets."""

    id: str
    project_id: str
    name: str
    #: Base64 of the SPKI PEM, as Livepeer shows it (and as a token's ``pub`` claim carries it).
    public_key: str
    #: A disabled key's tokens play nothing (for rotating keys safely).
    disabled: bool
    created_at: datetime
    updated_at: datetime
    #: When one of its tokens was last accepted (at most about once a minute).
    last_seen_at: datetime | None = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class OutboxEvent:
    """One event, written in the transaction of the change that caused it."""

    id: str
    project_id: str
    name: str
    #: ``{"kind": "task"|"asset", "row": {...}, "success"?: bool}``: the row as it was then.
    payload: Mapping[str, Any]
    created_at: datetime


@dataclasses.dataclass(frozen=True, kw_only=True)
class Delivery:
    """One event on its way to one webhook, held by one sender until ``locked_until``."""

    id: str
    webhook: Webhook
    event: OutboxEvent
    attempts: int
    locked_until: datetime


@dataclasses.dataclass(frozen=True, kw_only=True)
class WebhookLogEntry:
    """One delivery attempt: what was sent and what came back."""

    id: str
    webhook_id: str
    delivery_id: str
    event_id: str
    event: str
    created_at: datetime
    duration_ms: int
    success: bool
    request: Mapping[str, Any]
    response: Mapping[str, Any]


@dataclasses.dataclass(frozen=True, kw_only=True)
class IdempotentRequest:
    """A request already made with an idempotency key: its hash, and its answer once known."""

    request_hash: str
    status: int | None
    body: Any


@dataclasses.dataclass(frozen=True, kw_only=True)
class AssetPatch:
    """A change of an asset's editable fields (``PATCH /asset/{id}``); ``None`` keeps a field."""

    name: str | None = None
    #: Keys of the asset's options to set (``creatorId``, ``playbackPolicy``); ``None`` removes.
    options: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    #: Store the asset on IPFS with this export spec: an export task starts, unless the asset's
    #: storage has this spec already.
    ipfs_spec: Mapping[str, Any] | None = None


class TaskStore(Protocol):
    """The durable store behind every shape of the service."""

    # -- life of the store ------------------------------------------------------------------
    async def migrate(self, target: int | None = None) -> list[int]:
        """Bring the schema up to date (or to version ``target``); return what was applied."""
        ...

    async def close(self) -> None:
        """Release connections and threads."""
        ...

    async def wait_for_work(self, timeout_s: float) -> None:
        """Return when a task may have become runnable, or after ``timeout_s``."""
        ...

    async def ping(self) -> None:
        """Return once the store answered one round trip; ``errors.Unavailable`` if it cannot.

        For readiness checks: the caller bounds the wait (``asyncio.timeout``), and a ping that
        hangs ties up no connection that the service's own work needs.
        """
        ...

    # -- projects and keys --------------------------------------------------------------------
    async def create_project(self, name: str, *, now: datetime | None = None) -> Project: ...

    async def list_projects(self) -> list[Project]: ...

    async def create_api_key(
        self, project_id: str, name: str, *, now: datetime | None = None
    ) -> tuple[ApiKey, str]:
        """Create a key; return its record and the secret, which is not stored in clear."""
        ...

    async def list_api_keys(self, project_id: str | None = None) -> list[ApiKey]: ...

    async def revoke_api_key(self, key_id: str, *, now: datetime | None = None) -> ApiKey: ...

    async def authenticate(self, secret: str) -> ApiKey | None:
        """The live key with this secret, or ``None``."""
        ...

    # -- creating work ------------------------------------------------------------------------
    async def create_task(self, new: NewTask, *, now: datetime | None = None) -> tasks.Task: ...

    async def create_asset(
        self, asset: NewAsset, task: NewTask, *, now: datetime | None = None
    ) -> tuple[assets.Asset, tasks.Task]:
        """Create an asset and the task that fills it, in one transaction."""
        ...

    async def schedule(self, task_id: str, *, now: datetime | None = None) -> tasks.Task:
        """``pending -> waiting``: the task's input is complete."""
        ...

    # -- reading ------------------------------------------------------------------------------
    async def get_task(self, task_id: str, project_id: str | None = None) -> tasks.Task:
        """The task; ``NotFound`` if it does not exist in ``project_id`` (when given)."""
        ...

    async def list_tasks(self, query: Query) -> Page[tasks.Task]: ...

    async def list_events(
        self, task_id: str, *, after_id: int = 0, limit: int = 1000
    ) -> list[tasks.TaskEvent]: ...

    async def count_tasks(self, phase: tasks.Phase | None = None) -> int: ...

    async def queue_depth(
        self, project_id: str | None = None
    ) -> Mapping[tuple[str, tasks.Phase], int]:
        """How many tasks are pending, waiting or running, by ``(type, phase)``, in one project
        or (``None``) in all; pairs with no task are left out."""
        ...

    async def finished_counts(
        self, project_id: str, *, since: datetime, until: datetime, interval_s: int = 60
    ) -> list[FinishedCount]:
        """How many of the project's tasks completed and how many failed in each interval of
        ``interval_s`` seconds from ``since`` to ``until``, oldest first, every interval listed
        (zeros too).  Tasks count as they are now, at the time they finished: a failed task that
        is retried leaves the count of failures, and counts again when it finishes."""
        ...

    async def queue_position(self, task: tasks.Task) -> int:
        """1 + how many waiting tasks run before ``task`` (by ``run_at``)."""
        ...

    # -- the worker's transitions -------------------------------------------------------------
    async def claim(
        self,
        worker_id: str,
        *,
        types: Sequence[str],
        limit: int,
        lease_s: float,
        now: datetime | None = None,
    ) -> list[tasks.Task]:
        """``waiting -> running`` for up to ``limit`` runnable tasks, oldest ``run_at`` first."""
        ...

    async def heartbeat(
        self,
        task_id: str,
        lease_token: str,
        *,
        lease_s: float,
        progress: float | None = None,
        announce: bool = False,
        now: datetime | None = None,
    ) -> tasks.Task:
        """Extend the lease and record progress (which never goes down).

        ``announce`` also emits ``task.updated``: the worker throttles progress events.
        """
        ...

    async def complete(
        self,
        task_id: str,
        lease_token: str,
        *,
        output: Mapping[str, Any],
        asset_media: Mapping[str, Any] | None = None,
        detail: Mapping[str, Any] | None = None,
        now: datetime | None = None,
    ) -> tasks.Task:
        """``running -> completed``; the output asset becomes ready with ``asset_media``."""
        ...

    async def complete_many(
        self, done: Sequence[Completion], *, now: datetime | None = None
    ) -> set[str]:
        """``running -> completed`` for a batch, in one transaction; the ids completed.

        A task whose lease is no longer held (cancelled, rescued) is left out, and nothing is
        written for it.
        """
        ...

    async def fail(
        self,
        task_id: str,
        lease_token: str,
        *,
        error_message: str,
        detail: Mapping[str, Any] | None = None,
        now: datetime | None = None,
    ) -> tasks.Task:
        """``running -> failed``."""
        ...

    async def retry_later(
        self,
        task_id: str,
        lease_token: str,
        *,
        error_message: str,
        delay_s: float,
        detail: Mapping[str, Any] | None = None,
        now: datetime | None = None,
    ) -> tasks.Task:
        """``running -> waiting`` with one more retry counted, runnable after ``delay_s``."""
        ...

    async def release(
        self, task_id: str, lease_token: str, *, now: datetime | None = None
    ) -> tasks.Task:
        """``running -> waiting`` without counting an attempt (the worker is shutting down)."""
        ...

    async def rescue(
        self,
        policy: RescuePolicy,
        *,
        dead_workers: Sequence[str] = (),
        now: datetime | None = None,
    ) -> list[tasks.Task]:
        """Take back the tasks of workers that are gone: leases that expired, tasks of
        ``dead_workers`` (known dead by their caller) and of workers whose database session is
        gone (where the backend can tell).  Each runs again at once, or fails once it was taken
        back ``policy.max_rescues`` times."""
        ...

    async def running_leases(self, task_ids: Sequence[str]) -> dict[str, str]:
        """``{task_id: lease_token}`` for those of ``task_ids`` that are still running."""
        ...

    # -- the worker registry --------------------------------------------------------------------
    async def register_worker(self, worker: WorkerIdentity, *, now: datetime | None = None) -> None:
        """Enter a starting worker in the registry (and tie its liveness to its session)."""
        ...

    async def beat(
        self,
        worker_id: str,
        held: Mapping[str, str],
        *,
        lease_s: float,
        now: datetime | None = None,
    ) -> set[str]:
        """One statement for all of a worker's leases: mark the worker seen, extend the lease of
        every ``{task_id: lease_token}`` of ``held`` that is still running, and return those ids
        (the others were cancelled or taken back)."""
        ...

    async def deregister_worker(self, worker_id: str, *, now: datetime | None = None) -> None:
        """Mark a worker stopped (it holds nothing any more)."""
        ...

    async def list_workers(self, seen_since: datetime) -> list[WorkerRecord]:
        """Workers seen since ``seen_since``, newest first, with the tasks each runs."""
        ...

    # -- the user's transitions ---------------------------------------------------------------
    async def cancel(
        self, task_id: str, project_id: str | None = None, *, now: datetime | None = None
    ) -> tasks.Task:
        """``pending|waiting|running -> cancelled``."""
        ...

    async def retry(
        self, task_id: str, project_id: str | None = None, *, now: datetime | None = None
    ) -> tasks.Task:
        """``failed|cancelled -> waiting`` with the retry count reset (a manual retry)."""
        ...

    # -- assets -------------------------------------------------------------------------------
    async def get_asset(self, asset_id: str, project_id: str | None = None) -> assets.Asset:
        """The asset; ``NotFound`` if missing, deleted, or in another project."""
        ...

    async def list_assets(self, query: Query) -> Page[assets.Asset]: ...

    async def delete_asset(
        self, asset_id: str, project_id: str, *, now: datetime | None = None
    ) -> assets.Asset:
        """Mark the asset deleted and cancel its unfinished tasks, in one transaction."""
        ...

    # -- webhooks -------------------------------------------------------------------------------
    async def create_webhook(
        self,
        project_id: str,
        *,
        name: str,
        url: str,
        events: Sequence[str],
        shared_secret: str | None,
        now: datetime | None = None,
    ) -> Webhook: ...

    async def get_webhook(self, webhook_id: str, project_id: str) -> Webhook:
        """The webhook; ``NotFound`` if deleted or in another project."""
        ...

    async def list_webhooks(
        self, project_id: str, *, limit: int = 20, offset: int = 0
    ) -> list[Webhook]: ...

    async def update_webhook(
        self,
        webhook_id: str,
        project_id: str,
        *,
        name: str,
        url: str,
        events: Sequence[str],
        shared_secret: str | None,
        now: datetime | None = None,
    ) -> Webhook: ...

    async def delete_webhook(
        self, webhook_id: str, project_id: str, *, now: datetime | None = None
    ) -> Webhook:
        """Delete it; its pending deliveries are dropped."""
        ...

    async def dispatch_events(self, *, limit: int = 200, now: datetime | None = None) -> int:
        """Fan undispatched outbox events out to subscribed webhooks; return how many events."""
        ...

    async def claim_deliveries(
        self, *, limit: int, lock_s: float, now: datetime | None = None
    ) -> list[Delivery]:
        """Lock due deliveries for this sender."""
        ...

    async def finish_attempt(
        self,
        delivery: Delivery,
        *,
        success: bool,
        duration_ms: int,
        request: Mapping[str, Any],
        response: Mapping[str, Any],
        retry_at: datetime | None,
        now: datetime | None = None,
    ) -> WebhookLogEntry:
        """Log an attempt; the delivery is done, failed for good, or due again at ``retry_at``."""
        ...

    async def list_webhook_log(
        self, webhook_id: str, project_id: str, *, limit: int = 20, offset: int = 0
    ) -> list[WebhookLogEntry]: ...

    async def get_webhook_log(
        self, webhook_id: str, log_id: str, project_id: str
    ) -> WebhookLogEntry: ...

    async def resend(
        self,
        webhook_id: str,
        log_id: str,
        project_id: str,
        *,
        lock_s: float,
        now: datetime | None = None,
    ) -> Delivery:
        """A new delivery of the event of ``log_id``, already locked for the caller to send."""
        ...

    # -- idempotency and uploads ----------------------------------------------------------------
    async def reserve_idempotency_key(
        self, project_id: str, key: str, request_hash: str, *, now: datetime | None = None
    ) -> IdempotentRequest | None:
        """``None`` if the key is new (now reserved), else what it was first used for."""
        ...

    async def save_idempotent_response(
        self, project_id: str, key: str, *, status: int, body: Any
    ) -> None: ...

    async def release_idempotency_key(self, project_id: str, key: str) -> None:
        """Forget a reserved key whose request failed on our side, so it may be retried."""
        ...

    async def find_url_import(
        self, project_id: str, url: str, *, since: datetime
    ) -> tuple[assets.Asset, tasks.Task] | None:
        """An unfinished import of ``url`` created since ``since``, with its task."""
        ...

    async def asset_by_playback_id(self, playback_id: str, project_id: str) -> assets.Asset:
        """The project's live asset with this playback id; ``NotFound`` otherwise."""
        ...

    async def task_of_asset(self, asset_id: str) -> tasks.Task | None:
        """The latest task that fills ``asset_id``."""
        ...

    # -- exports --------------------------------------------------------------------------------
    async def start_export(
        self,
        asset_id: str,
        project_id: str,
        task: NewTask,
        *,
        ipfs_spec: Mapping[str, Any] | None = None,
        now: datetime | None = None,
    ) -> tasks.Task:
        """Create an export ``task`` of a ready asset, in one transaction with the asset check.

        With ``ipfs_spec`` the task becomes the asset's pending storage task (its
        ``storage.status`` follows it).  ``NotFound`` if the asset is not in ``project_id``,
        ``InvalidTransition`` if it is not ready.
        """
        ...

    async def patch_asset(
        self,
        asset_id: str,
        project_id: str,
        patch: AssetPatch,
        *,
        export: NewTask | None = None,
        now: datetime | None = None,
    ) -> tuple[assets.Asset, tasks.Task | None]:
        """Apply ``patch``; when it asks for an IPFS spec the asset does not have yet, create
        ``export`` as its pending storage task (``InvalidTransition`` unless the asset is ready).
        Emits ``asset.updated``.  Returns the asset and the export created, if any."""
        ...

    # -- access control -------------------------------------------------------------------------
    async def create_signing_key(
        self,
        project_id: str,
        *,
        name: str | None,
        public_key: str,
        now: datetime | None = None,
    ) -> SigningKey:
        """Keep a new key's public half (named ``Signing Key <n>`` without a name); ``Conflict``
        when the project has its maximum of keys already."""
        ...

    async def get_signing_key(self, key_id: str, project_id: str) -> SigningKey:
        """The key; ``NotFound`` if it is not in ``project_id``."""
        ...

    async def list_signing_keys(self, project_id: str) -> list[SigningKey]:
        """The project's keys, newest first (disabled ones included)."""
        ...

    async def update_signing_key(
        self,
        key_id: str,
        project_id: str,
        *,
        name: str | None = None,
        disabled: bool | None = None,
        now: datetime | None = None,
    ) -> SigningKey:
        """Rename, disable or enable a key (``None`` keeps a field)."""
        ...

    async def delete_signing_key(self, key_id: str, project_id: str) -> SigningKey: ...

    async def signing_key_seen(self, key_id: str, *, now: datetime | None = None) -> None:
        """Record that a token of this key was accepted."""
        ...

    async def playback_asset(self, playback_id: str) -> assets.Asset:
        """The live (not deleted) asset with this playback id, in any project; ``NotFound``
        otherwise.  For serving media, which needs no API key."""
        ...
