"""The webhook sender: fan the outbox out, deliver due attempts, retry with back-off.

Any number of senders may run (one in every ``serve`` and ``worker`` process): the store locks
each outbox event and each delivery for one sender at a time.  A sender that dies holding
deliveries loses its locks after ``lock_s`` and another one sends them.

Policy (Livepeer's): 2xx is delivered; 5xx, a network error or a timeout is retried after
``webhook_backoff_s`` doubling up to ``webhook_backoff_cap_s``, for ``webhook_max_attempts`` in
all; any other answer (a 4xx, a redirect) fails the delivery at once.  Every attempt is logged.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from mediatasks import errors, fetch, taskstore, telemetry
from mediatasks import settings as settings_module
from mediatasks.webhooks import message

__all__ = ["Sender", "backoff_s"]

log = logging.getLogger(__name__)

_BODY_LOG_CHARS = 1024


def backoff_s(attempts_done: int, first_s: float, cap_s: float) -> float:
    """Wait before the attempt that follows ``attempts_done`` failed ones."""
    return float(min(cap_s, first_s * 2 ** max(0, attempts_done - 1)))


class Sender:
    """Delivers webhook events until stopped."""

    def __init__(
        self,
        settings: settings_module.Settings,
        store: taskstore.TaskStore,
        *,
        batch: int = 20,
    ) -> None:
        self.settings = settings
        self.store = store
        self.batch = batch
        #: How long a sender holds a delivery: longer than one attempt can take.
        self.lock_s = settings.webhook_timeout_s + 30
        self._stopping = asyncio.Event()
        self._client = httpx.AsyncClient(
            timeout=settings.webhook_timeout_s, follow_redirects=False, trust_env=False
        )

    @property
    def base_url(self) -> str:
        """The base of URLs in payloads (playback URLs of assets)."""
        return self.settings.public_url or f"http://{self.settings.host}:{self.settings.port}"

    def stop(self) -> None:
        """Make ``run()`` return after its current round."""
        self._stopping.set()

    async def close(self) -> None:
        """Release the HTTP client (``run()`` does it when it returns)."""
        await self._client.aclose()

    async def run(self) -> None:
        """Dispatch and deliver until ``stop()``."""
        try:
            while not self._stopping.is_set():
                busy = await self.step()
                if not busy:
                    try:
                        await asyncio.wait_for(
                            self._stopping.wait(), self.settings.webhook_poll_interval_s
                        )
                    except TimeoutError:
                        pass
        finally:
            await self.close()

    async def step(self, *, now: datetime | None = None) -> bool:
        """One round: fan out new events, send due deliveries.  True if there was work."""
        try:
            dispatched = await self.store.dispatch_events(now=now)
            due = await self.store.claim_deliveries(limit=self.batch, lock_s=self.lock_s, now=now)
        except errors.MediaTasksError as exc:
            log.warning("webhook round failed: %s", exc)
            return False
        if due:
            await asyncio.gather(*(self.attempt(delivery) for delivery in due))
        return bool(dispatched or due)

    async def attempt(self, delivery: taskstore.Delivery) -> taskstore.WebhookLogEntry:
        """Send one attempt of ``delivery`` and record it."""
        now = datetime.now(UTC)
        raw = message.body(delivery, base_url=self.base_url, now=now)
        timestamp_ms = int(now.timestamp() * 1000)
        headers = {"content-type": "application/json", "user-agent": "mediatasks"}
        if delivery.webhook.shared_secret:
            headers["Livepeer-Signature"] = message.signature_header(
                delivery.webhook.shared_secret, raw, timestamp_ms
            )
        request: dict[str, Any] = {
            "url": delivery.webhook.url,
            "method": "POST",
            "headers": headers,
            "body": raw.decode(),
        }
        started = time.monotonic()
        retriable = False
        try:
            await fetch.resolve_url(
                delivery.webhook.url,
                allow_private=self.settings.allow_private_urls,
                timeout_s=self.settings.webhook_timeout_s,
            )
            answer = await self._client.post(delivery.webhook.url, content=raw, headers=headers)
        except (errors.TaskFailure, errors.InvalidInput) as exc:
            response: dict[str, Any] = {"error": exc.message}
            retriable = isinstance(exc, errors.SourceUnavailable)
            success = False
        except httpx.TimeoutException:
            response = {"error": f"no answer within {self.settings.webhook_timeout_s:g} s"}
            retriable, success = True, False
        except httpx.HTTPError as exc:
            response = {"error": f"{type(exc).__name__}: {exc}"}
            retriable, success = True, False
        else:
            success = 200 <= answer.status_code < 300
            retriable = answer.status_code >= 500
            response = {
                "status": answer.status_code,
                "statusText": answer.reason_phrase,
                "body": _loggable(answer.content),
            }
        duration_ms = int((time.monotonic() - started) * 1000)
        retry_at = None
        attempts = delivery.attempts + 1
        if not success and retriable and attempts < self.settings.webhook_max_attempts:
            wait_s = backoff_s(
                attempts, self.settings.webhook_backoff_s, self.settings.webhook_backoff_cap_s
            )
            retry_at = now + timedelta(seconds=wait_s)
        entry = await self.store.finish_attempt(
            delivery,
            success=success,
            duration_ms=duration_ms,
            request=request,
            response=response,
            retry_at=retry_at,
        )
        telemetry.webhook_attempt(
            "delivered" if success else "retrying" if retry_at else "failed",
            duration_ms / 1000,
            webhook_id=delivery.webhook.id,
            event_id=delivery.event.id,
            attempt=attempts,
            detail=None if success else str(response.get("status") or response.get("error")),
            retry_at=retry_at,
        )
        return entry


def _loggable(content: bytes) -> str:
    """The first characters of a response body, as text (Base64 when it is not UTF-8)."""
    head = content[:_BODY_LOG_CHARS]
    try:
        return head.decode()
    except UnicodeDecodeError:
        return base64.b64encode(head).decode()
