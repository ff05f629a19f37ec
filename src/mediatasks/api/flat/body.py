"""Request bodies of ``/v2``: read with a size limit, parsed as JSON, validated by a model.

Every failure is a ``FlatError`` (400 with Flat's codes), never FastAPI's 422.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Final, TypeVar

import pydantic
from fastapi import Request

from mediatasks.api.flat.auth import FlatError
from mediatasks.scores import source

__all__ = ["MAX_BODY_BYTES", "MAX_SCORE_BODY_BYTES", "read_json", "validate", "validation_message"]

_ModelT = TypeVar("_ModelT", bound=pydantic.BaseModel)

#: The largest request body of ``POST /scores``: a Base64 file at the size limit, and some JSON.
MAX_SCORE_BODY_BYTES: Final = source.MAX_SOURCE_BYTES * 4 // 3 + 64 * 1024
#: The largest body of the other requests.
MAX_BODY_BYTES: Final = 64 * 1024


async def read_json(request: Request, limit_bytes: int, *, code: str, empty: Any = None) -> Any:
    """The request's JSON body, read with a size limit; ``empty`` for an empty body."""
    declared = request.headers.get("content-length", "")
    too_large = FlatError(
        400, code, f"the request body is larger than {limit_bytes // 1024**2 or 1} MiB"
    )
    if declared.isascii() and declared.isdigit() and int(declared) > limit_bytes:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit_bytes:
            raise too_large
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.strip():
        if empty is None:
            raise FlatError(400, "CLIENT_ERROR", "the request needs a JSON body")
        return empty
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise FlatError(400, "CLIENT_ERROR", f"the request body is not valid JSON: {exc}") from None


def validate(model: type[_ModelT], body: Any) -> _ModelT:
    """``body`` as ``model``, or a ``FlatError`` naming what is wrong."""
    if not isinstance(body, dict):
        raise FlatError(400, "CLIENT_ERROR", "the request body must be a JSON object")
    try:
        return model.model_validate(body)
    except pydantic.ValidationError as exc:
        raise FlatError(400, "CLIENT_ERROR", validation_message(exc.errors())) from None


def validation_message(found: Sequence[Any]) -> str:
    """One line naming each invalid field of a validation error."""
    messages = []
    for error in found:
        where = ".".join(str(part) for part in error.get("loc", ()) if part != "body")
        text = str(error.get("msg", "invalid"))
        messages.append(f"{where}: {text}" if where else text)
    return "; ".join(messages) or "invalid request"
