"""``Idempotency-Key`` on every request that creates work (``POST``, ``PUT``, ``PATCH``).

The first request with a key runs and its answer is kept (for 24 hours, per project).  The same
key with the same method, path and body answers that first answer again, marked with
``Idempotent-Replayed: true``: a client that timed out may simply retry.  The same key with a
different request is a 409, and so is a repeat while the first is still running.  A first answer
of 5xx is not kept, so the retry runs again.  Raw upload bodies (``/asset/upload/direct`` and
``/asset/upload/tus``) are byte streams, not requests to create work, and pass through.
Secrets that an answer shows only once (a new signing key's ``privateKey``) are not kept: a
replay answers the rest of it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Final

from mediatasks.api.livepeer import guard
from mediatasks.api.runtime import Runtime

__all__ = ["IdempotencyMiddleware"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_METHODS: Final = frozenset({"POST", "PUT", "PATCH"})
_MAX_KEY_CHARS: Final = 255
#: Routes whose bodies are uploaded bytes, not requests to create work.
_BYTE_STREAMS: Final = ("/asset/upload/direct", "/asset/upload/tus")
#: Fields of an answer that are shown once and never stored.
_SHOWN_ONCE: Final = frozenset({"privateKey"})


class IdempotencyMiddleware:
    """Replays the kept answer of a request repeated with the same ``Idempotency-Key``."""

    def __init__(self, app: ASGIApp, runtime: Runtime) -> None:
        self.app = app
        self.runtime = runtime

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _METHODS:
            await self.app(scope, receive, send)
            return
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        key = headers.get("idempotency-key", "").strip()
        path = guard.route_path(scope)
        if not key or path.startswith(_BYTE_STREAMS):
            await self.app(scope, receive, send)
            return
        if len(key) > _MAX_KEY_CHARS:
            await _answer(send, 422, {"errors": ["Idempotency-Key is too long"]})
            return
        scheme, _, secret = headers.get("authorization", "").partition(" ")
        api_key = await self.runtime.keys.authenticate(secret.strip())
        if scheme.lower() != "bearer" or api_key is None:
            await self.app(scope, receive, send)  # the route answers 401
            return

        body = bytearray()
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        digest = hashlib.sha256(
            b"\n".join([scope["method"].encode(), path.encode(), scope["query_string"], body])
        ).hexdigest()

        project = api_key.project_id
        first = await self.runtime.store.reserve_idempotency_key(project, key, digest)
        if first is not None:
            if first.request_hash != digest:
                message_text = "Idempotency-Key was already used for a different request"
                await _answer(send, 409, {"errors": [message_text]})
            elif first.status is None:
                await _answer(send, 409, {"errors": ["a request with this key is in progress"]})
            else:
                await _answer(send, first.status, first.body, replayed=True)
            return

        replayed_body = False

        async def replay() -> Message:
            nonlocal replayed_body
            if replayed_body:
                return await receive()
            replayed_body = True
            return {"type": "http.request", "body": bytes(body), "more_body": False}

        status = 500
        chunks: list[bytes] = []

        async def keep(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, replay, keep)
        finally:
            if status < 500:
                raw = b"".join(chunks)
                kept = json.loads(raw) if raw else None
                if isinstance(kept, dict):
                    kept = {k: v for k, v in kept.items() if k not in _SHOWN_ONCE}
                await self.runtime.store.save_idempotent_response(
                    project, key, status=status, body=kept
                )
            else:
                await self.runtime.store.release_idempotency_key(project, key)


async def _answer(send: Send, status: int, body: Any, *, replayed: bool = False) -> None:
    raw = b"" if body is None else json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode())]
    if replayed:
        headers.append((b"idempotent-replayed", b"true"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": raw})
