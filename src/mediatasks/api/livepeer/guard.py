"""What every request to ``/api`` must be before any route sees it: the limits of the wire.

A request is refused here, with the dialect's ``{"errors": [...]}`` body and a 4xx, when

* its path holds a control character (a NUL or a newline in an id): 404, as for any unknown id;
* a query parameter holds a control character: 400;
* its JSON body is larger than ``Settings.max_json_body_bytes`` (413), is not JSON, or holds
  what no store can keep or no field can mean (422): ``NaN`` or ``Infinity``, a number too large
  for a float, an integer beyond 64 bits, a NUL character, objects nested deeper than
  ``Settings.max_json_depth``, a ``name`` longer than ``Settings.max_name_chars`` or any other
  string longer than ``Settings.max_string_chars``.

Checking these once, for every body, means that no route can forget them, and that a value which
PostgreSQL would refuse (a NUL in a text, ``Infinity`` in a JSON document) never reaches it: a
store error would be a 500.  The uploaded bytes of ``/asset/upload/direct`` and
``/asset/upload/tus`` are not JSON and pass through untouched (their size is the upload limit's).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Final
from urllib.parse import parse_qsl

from mediatasks import settings as settings_module

__all__ = ["Refused", "RequestGuard", "check_target", "route_path"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_BODY_METHODS: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: Routes whose bodies are uploaded bytes.
_BYTE_STREAMS: Final = ("/asset/upload/direct", "/asset/upload/tus")
_INT64: Final = 2**63


class Refused(Exception):
    """A request the guard answers itself."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def route_path(scope: Scope) -> str:
    """The path inside this application (a mount keeps its own prefix in ``root_path``)."""
    path: str = scope.get("path", "")
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


_CONTROL: Final = re.compile("[\x00-\x1f\x7f]")


def _has_control(text: str) -> bool:
    return _CONTROL.search(text) is not None


def check_target(scope: Scope) -> None:
    """``Refused`` (404, 400) if the path or a query parameter holds a control character."""
    if _has_control(scope.get("path", "")):
        raise Refused(404, "not found")
    query = scope.get("query_string", b"").decode("latin-1")
    if "%" not in query and not _has_control(query):
        return  # nothing a parameter could decode to holds one
    for name, value in parse_qsl(query, keep_blank_values=True):
        if _has_control(name) or _has_control(value):
            raise Refused(400, f"query parameter {name[:40]!r} holds a control character")


def _constant(name: str) -> Any:
    raise Refused(422, f"{name} is not a number this API takes")


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise Refused(422, f"the number {text[:40]} is too large")
    return value


def _int(text: str) -> int | float:
    if len(text.lstrip("-")) > 19 or not -_INT64 <= int(text) < _INT64:
        raise Refused(422, f"the integer {text[:40]} is out of range (64 bits)")
    return int(text)


class RequestGuard:
    """ASGI middleware of the ``/api`` application; see the module's docstring."""

    def __init__(self, app: ASGIApp, settings: settings_module.Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            check_target(scope)
            if scope["method"] in _BODY_METHODS and not route_path(scope).startswith(_BYTE_STREAMS):
                body = await self._body(scope, receive)
                if body.strip():
                    self._check_json(body)
                receive = _replay(body, receive)
        except Refused as refused:
            await _answer(send, refused.status, refused.message)
            return
        await self.app(scope, receive, send)

    async def _body(self, scope: Scope, receive: Receive) -> bytes:
        limit = self.settings.max_json_body_bytes
        for name, value in scope.get("headers", []):
            if name.lower() == b"content-length" and value.isdigit() and int(value) > limit:
                raise Refused(413, f"the request body is larger than {limit} bytes")
        body = bytearray()
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > limit:
                raise Refused(413, f"the request body is larger than {limit} bytes")
        return bytes(body)

    def _check_json(self, body: bytes) -> None:
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise Refused(422, "the request body is not UTF-8 JSON") from exc
        try:
            value = json.loads(text, parse_constant=_constant, parse_float=_float, parse_int=_int)
        except Refused:
            raise
        except (ValueError, RecursionError) as exc:
            raise Refused(422, "the request body is not valid JSON") from exc
        self._walk(value, (), 0)

    def _walk(self, value: Any, path: tuple[str, ...], depth: int) -> None:
        """Check every value; ``path`` is where it is (``custom.headers.X-Token``)."""
        if depth > self.settings.max_json_depth:
            raise Refused(422, f"the JSON is nested deeper than {self.settings.max_json_depth}")
        where = ".".join(path)[:200] or "the body"
        if isinstance(value, dict):
            for name, item in value.items():
                self._string(name, f"a key of {where}", self.settings.max_string_chars)
                self._walk(item, (*path, name), depth + 1)
        elif isinstance(value, list):
            for i, item in enumerate(value):
                self._walk(item, (*path, str(i)), depth + 1)
        elif isinstance(value, str):
            is_name = bool(path) and path[-1] == "name"
            limit = self.settings.max_name_chars if is_name else self.settings.max_string_chars
            self._string(value, where, limit)

    @staticmethod
    def _string(value: str, where: str, limit: int) -> None:
        if "\x00" in value:
            raise Refused(422, f"{where}: a NUL character is not allowed")
        if len(value) > limit:
            raise Refused(422, f"{where}: longer than {limit} characters")


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


async def _answer(send: Send, status: int, message: str) -> None:
    raw = json.dumps({"errors": [message]}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": raw})
