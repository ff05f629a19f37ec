"""The webhook half of the SQL task store: webhooks, fanning the outbox out, deliveries, log.

Shared by both backends through ``SqlTaskStore``; the queries are in ``sql/webhooks.sql`` and, for
the two that lock rows, in each dialect's ``queries.sql``.
"""

from __future__ import annotations

import abc
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from mediatasks import errors
from mediatasks.taskstore import base
from mediatasks.taskstore.rows import load_json, maybe_from_ms, to_ms

__all__ = ["WebhookRows"]

_T = TypeVar("_T")


def _now(now: datetime | None) -> datetime:
    return now if now is not None else datetime.now(UTC)


class WebhookRows(abc.ABC):
    """Webhook storage over the transaction primitives of ``SqlTaskStore``."""

    queries: Mapping[str, str]

    @abc.abstractmethod
    async def _read(self, fn: Callable[[Any], Awaitable[_T]]) -> _T: ...

    @abc.abstractmethod
    async def _write(self, fn: Callable[[Any], Awaitable[_T]], *, late: Any = None) -> _T: ...

    @abc.abstractmethod
    def _placeholder(self, name: str) -> str: ...

    @abc.abstractmethod
    def _json(self, value: Any) -> Any: ...

    # -- rows ---------------------------------------------------------------------------------
    @staticmethod
    def _webhook(row: Mapping[str, Any]) -> base.Webhook:
        failure = row["last_failure"]
        return base.Webhook(
            id=row["id"],
            project_id=row["project_id"],
            name=row["name"],
            url=row["url"],
            events=load_json(row["events"]),
            shared_secret=row["shared_secret"],
            created_at=maybe_from_ms(row["created_at"]) or datetime.now(UTC),
            updated_at=maybe_from_ms(row["updated_at"]) or datetime.now(UTC),
            last_triggered_at=maybe_from_ms(row["last_triggered_at"]),
            last_failure=None if failure is None else load_json(failure),
        )

    @staticmethod
    def _outbox_event(row: Mapping[str, Any]) -> base.OutboxEvent:
        return base.OutboxEvent(
            id=row["id"],
            project_id=row["project_id"],
            name=row["name"],
            payload=load_json(row["payload"]),
            created_at=maybe_from_ms(row["created_at"]) or datetime.now(UTC),
        )

    @staticmethod
    def _log(row: Mapping[str, Any]) -> base.WebhookLogEntry:
        return base.WebhookLogEntry(
            id=row["id"],
            webhook_id=row["webhook_id"],
            delivery_id=row["delivery_id"],
            event_id=row["event_id"],
            event=row["event"],
            created_at=maybe_from_ms(row["created_at"]) or datetime.now(UTC),
            duration_ms=row["duration_ms"],
            success=bool(row["success"]),
            request=load_json(row["request"]),
            response=load_json(row["response"]),
        )

    async def _first(self, tx: Any, name: str, params: Mapping[str, Any]) -> dict[str, Any] | None:
        found: list[dict[str, Any]] = await tx.rows(self.queries[name], params)
        return found[0] if found else None

    # -- the waiting queue --------------------------------------------------------------------
    async def queue_position(self, task: Any) -> int:
        params = {"run_at": to_ms(task.run_at), "id": task.id}
        row = await self._read(lambda tx: self._first(tx, "queue_position", params))
        return int(row["n"]) if row else 1

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
    ) -> base.Webhook:
        params = {
            "id": str(uuid.uuid4()),
            "project_id": project_id,
            "name": name,
            "url": url,
            "events": self._json(list(events)),
            "shared_secret": shared_secret,
            "now": to_ms(_now(now)),
        }
        row = await self._write(lambda tx: self._first(tx, "insert_webhook", params))
        assert row is not None
        return self._webhook(row)

    async def get_webhook(self, webhook_id: str, project_id: str) -> base.Webhook:
        params = {"id": webhook_id, "project_id": project_id}
        row = await self._read(lambda tx: self._first(tx, "get_webhook", params))
        if row is None:
            raise errors.NotFound("webhook not found")
        return self._webhook(row)

    async def list_webhooks(
        self, project_id: str, *, limit: int = 20, offset: int = 0
    ) -> list[base.Webhook]:
        params = {"project_id": project_id, "limit": limit, "offset": offset}
        found = await self._read(lambda tx: tx.rows(self.queries["list_webhooks"], params))
        return [self._webhook(row) for row in found]

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
    ) -> base.Webhook:
        params = {
            "id": webhook_id,
            "project_id": project_id,
            "name": name,
            "url": url,
            "events": self._json(list(events)),
            "shared_secret": shared_secret,
            "now": to_ms(_now(now)),
        }
        row = await self._write(lambda tx: self._first(tx, "update_webhook", params))
        if row is None:
            raise errors.NotFound("webhook not found")
        return self._webhook(row)

    async def delete_webhook(
        self, webhook_id: str, project_id: str, *, now: datetime | None = None
    ) -> base.Webhook:
        now_ms = to_ms(_now(now))

        async def run(tx: Any) -> dict[str, Any] | None:
            row = await self._first(
                tx, "delete_webhook", {"id": webhook_id, "project_id": project_id, "now": now_ms}
            )
            if row is not None:
                await tx.rows(
                    self.queries["drop_pending_deliveries"],
                    {"webhook_id": webhook_id, "now": now_ms},
                )
            return row

        row = await self._write(run)
        if row is None:
            raise errors.NotFound("webhook not found")
        return self._webhook(row)

    # -- delivering -----------------------------------------------------------------------------
    async def dispatch_events(self, *, limit: int = 200, now: datetime | None = None) -> int:
        now_ms = to_ms(_now(now))

        async def run(tx: Any) -> int:
            events = await tx.rows(self.queries["undispatched_events"], {"limit": limit})
            if not events:
                return 0
            hooks: dict[str, list[base.Webhook]] = {}
            for event in events:
                project_id = event["project_id"]
                if project_id not in hooks:
                    found = await tx.rows(
                        self.queries["project_webhooks"], {"project_id": project_id}
                    )
                    hooks[project_id] = [self._webhook(row) for row in found]
                for hook in hooks[project_id]:
                    if event["name"] in hook.events:
                        await tx.rows(
                            self.queries["insert_delivery"],
                            {
                                "id": str(uuid.uuid4()),
                                "webhook_id": hook.id,
                                "event_id": event["id"],
                                "project_id": project_id,
                                "locked_until": None,
                                "now": now_ms,
                            },
                        )
            params: dict[str, Any] = {"now": now_ms}
            marks = []
            for i, event in enumerate(events):
                params[f"e{i}"] = event["id"]
                marks.append(self._placeholder(f"e{i}"))
            await tx.rows(
                "UPDATE webhook_events SET dispatched_at = "
                f"{self._placeholder('now')} WHERE id IN ({', '.join(marks)})",
                params,
            )
            return len(events)

        return await self._write(run)

    async def _delivery(
        self, tx: Any, row: Mapping[str, Any], hooks: dict[str, base.Webhook | None]
    ) -> base.Delivery | None:
        webhook_id = row["webhook_id"]
        if webhook_id not in hooks:
            found = await tx.rows(
                "SELECT * FROM webhooks WHERE id = "
                f"{self._placeholder('id')} AND deleted_at IS NULL",
                {"id": webhook_id},
            )
            hooks[webhook_id] = self._webhook(found[0]) if found else None
        hook = hooks[webhook_id]
        event = await self._first(tx, "get_webhook_event", {"id": row["event_id"]})
        if hook is None or event is None:
            return None
        locked = maybe_from_ms(row["locked_until"])
        assert locked is not None
        return base.Delivery(
            id=row["id"],
            webhook=hook,
            event=self._outbox_event(event),
            attempts=row["attempts"],
            locked_until=locked,
        )

    async def claim_deliveries(
        self, *, limit: int, lock_s: float, now: datetime | None = None
    ) -> list[base.Delivery]:
        moment = _now(now)
        params = {
            "limit": limit,
            "now": to_ms(moment),
            "locked_until": to_ms(moment + timedelta(seconds=lock_s)),
        }

        async def run(tx: Any) -> list[base.Delivery]:
            hooks: dict[str, base.Webhook | None] = {}
            claimed = []
            for row in await tx.rows(self.queries["claim_deliveries"], params):
                delivery = await self._delivery(tx, row, hooks)
                if delivery is not None:
                    claimed.append(delivery)
            return claimed

        return await self._write(run)

    async def finish_attempt(
        self,
        delivery: base.Delivery,
        *,
        success: bool,
        duration_ms: int,
        request: Mapping[str, Any],
        response: Mapping[str, Any],
        retry_at: datetime | None,
        now: datetime | None = None,
    ) -> base.WebhookLogEntry:
        now_ms = to_ms(_now(now))
        if success:
            state, next_at = "delivered", now_ms
        elif retry_at is None:
            state, next_at = "failed", now_ms
        else:
            state, next_at = "pending", to_ms(retry_at)

        async def run(tx: Any) -> base.WebhookLogEntry:
            await tx.rows(
                self.queries["finish_attempt"],
                {
                    "id": delivery.id,
                    "state": state,
                    "next_attempt_at": next_at,
                    "locked_until": to_ms(delivery.locked_until),
                    "now": now_ms,
                },
            )
            row = await self._first(
                tx,
                "insert_webhook_log",
                {
                    "id": str(uuid.uuid4()),
                    "webhook_id": delivery.webhook.id,
                    "delivery_id": delivery.id,
                    "event_id": delivery.event.id,
                    "event": delivery.event.name,
                    "project_id": delivery.webhook.project_id,
                    "now": now_ms,
                    "duration_ms": duration_ms,
                    "success": success,
                    "request": self._json(dict(request)),
                    "response": self._json(dict(response)),
                },
            )
            failure = {
                "timestamp": now_ms,
                "statusCode": response.get("status"),
                "error": response.get("error"),
                "response": response.get("body"),
            }
            await tx.rows(
                self.queries["webhook_triggered"],
                {
                    "id": delivery.webhook.id,
                    "now": now_ms,
                    "success": success,
                    "failure": self._json(failure),
                },
            )
            assert row is not None
            return self._log(row)

        return await self._write(run)

    async def list_webhook_log(
        self,
        webhook_id: str,
        project_id: str,
        *,
        limit: int = 20,
        offset: int = 0,
        success: bool | None = None,
    ) -> list[base.WebhookLogEntry]:
        params: dict[str, Any] = {
            "webhook_id": webhook_id,
            "project_id": project_id,
            "limit": limit,
            "offset": offset,
        }
        name = "list_webhook_log"
        if success is not None:
            name = "list_webhook_log_by_outcome"
            params["success"] = success
        found = await self._read(lambda tx: tx.rows(self.queries[name], params))
        return [self._log(row) for row in found]

    async def get_webhook_log(
        self, webhook_id: str, log_id: str, project_id: str
    ) -> base.WebhookLogEntry:
        params = {"id": log_id, "webhook_id": webhook_id, "project_id": project_id}
        row = await self._read(lambda tx: self._first(tx, "get_webhook_log", params))
        if row is None:
            raise errors.NotFound("webhook log entry not found")
        return self._log(row)

    async def list_task_deliveries(
        self, task_id: str, project_id: str, *, limit: int = 200
    ) -> list[base.TaskDelivery]:
        params = {"task_id": task_id, "project_id": project_id, "limit": limit}
        found = await self._read(lambda tx: tx.rows(self.queries["task_deliveries"], params))
        return [self._task_delivery(row) for row in found]

    @staticmethod
    def _task_delivery(row: Mapping[str, Any]) -> base.TaskDelivery:
        last = row["last_response"]
        response = {} if last is None else load_json(last)
        status = response.get("status")
        error = response.get("error")
        return base.TaskDelivery(
            id=row["id"],
            webhook_id=row["webhook_id"],
            webhook_name=row["webhook_name"],
            webhook_url=row["webhook_url"],
            event_id=row["event_id"],
            event=row["event"],
            event_at=maybe_from_ms(row["event_at"]) or datetime.now(UTC),
            state=row["state"],
            attempts=row["attempts"],
            updated_at=maybe_from_ms(row["updated_at"]) or datetime.now(UTC),
            last_status=status if isinstance(status, int) else None,
            last_error=error if isinstance(error, str) else None,
            last_attempt_at=maybe_from_ms(row["last_attempt_at"]),
        )

    async def resend(
        self,
        webhook_id: str,
        log_id: str,
        project_id: str,
        *,
        lock_s: float,
        now: datetime | None = None,
    ) -> base.Delivery:
        moment = _now(now)
        now_ms = to_ms(moment)

        async def run(tx: Any) -> base.Delivery | None:
            hook = await self._first(
                tx, "get_webhook", {"id": webhook_id, "project_id": project_id}
            )
            log = await self._first(
                tx,
                "get_webhook_log",
                {"id": log_id, "webhook_id": webhook_id, "project_id": project_id},
            )
            if hook is None or log is None:
                return None
            row = await self._first(
                tx,
                "insert_delivery",
                {
                    "id": str(uuid.uuid4()),
                    "webhook_id": webhook_id,
                    "event_id": log["event_id"],
                    "project_id": project_id,
                    "locked_until": to_ms(moment + timedelta(seconds=lock_s)),
                    "now": now_ms,
                },
            )
            assert row is not None
            return await self._delivery(tx, row, {})

        delivery = await self._write(run)
        if delivery is None:
            raise errors.NotFound("webhook log entry not found")
        return delivery
