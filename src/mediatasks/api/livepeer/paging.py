"""Studio's list parameters (``limit``, ``cursor``, ``order``, ``filters``, ``count``), parsed
and checked, and the ``Link`` header of the next page.

Every value is checked against its field's type and range here, before it reaches a store: a
filter on a text field takes a string, one on a time field a number of Unix milliseconds within
64 bits; anything else is a 400 ``error parsing filters``, never a database error.

Pages are keyset pages (``taskstore.listing``): ``cursor`` is opaque, the base64url of the last
row's values of the order's columns and ``id``, and the next page starts strictly after that
row.  So a client that walks a list by its ``Link`` header while tasks change sees every item
that existed during the whole walk exactly once, as long as the order is by a field that does
not change: the default, ``createdAt`` newest first (Studio orders by ``updatedAt`` by default,
under which a walk cannot be stable).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from typing import Any, Final, Literal

from fastapi import Request, Response

from mediatasks import taskstore
from mediatasks.api.livepeer.auth import ApiError
from mediatasks.taskstore import listing

__all__ = [
    "ASSET_FIELDS",
    "DEFAULT_LIMIT",
    "DEFAULT_ORDER",
    "MAX_LIMIT",
    "TASK_FIELDS",
    "decode_cursor",
    "encode_cursor",
    "finish_page",
    "list_query",
]

#: Wire names of the fields a task list filters and orders on, and their store columns.
TASK_FIELDS: Final = {
    "id": "id",
    "type": "type",
    "phase": "phase",
    "createdAt": "created_at",
    "updatedAt": "updated_at",
    "inputAssetId": "input_asset_id",
    "outputAssetId": "output_asset_id",
}
ASSET_FIELDS: Final = {
    "id": "id",
    "name": "name",
    "phase": "phase",
    "playbackId": "playback_id",
    "createdAt": "created_at",
    "updatedAt": "updated_at",
}
_RANGE_OPS: Final[dict[str, Literal["gt", "gte", "lt", "lte"]]] = {
    "gt": "gt",
    "gte": "gte",
    "lt": "lt",
    "lte": "lte",
}
DEFAULT_LIMIT: Final = 20
MAX_LIMIT: Final = 1000
#: Newest first, by a field that never changes: stable pages (see the module's docstring).
DEFAULT_ORDER: Final = (("created_at", True),)
_MAX_CURSOR_CHARS: Final = 4096
_INT64: Final = 2**63


def encode_cursor(key: Sequence[tuple[str, bool]], values: Sequence[Any]) -> str:
    """The opaque cursor of the page that starts after the row with ``values``."""
    raw = json.dumps([_fields(key), list(values)], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _fields(key: Sequence[tuple[str, bool]]) -> list[str]:
    """How a cursor names its order: ``created_at-true`` for newest first."""
    return [f"{column}-{'true' if descending else 'false'}" for column, descending in key]


def decode_cursor(cursor: str, key: Sequence[tuple[str, bool]]) -> list[Any]:
    """The values a cursor holds, checked against the order it was made for; 400 otherwise."""
    invalid = ApiError(400, "invalid cursor")
    if len(cursor) > _MAX_CURSOR_CHARS:
        raise invalid
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        fields, values = json.loads(raw)
    except (ValueError, TypeError, binascii.Error) as exc:
        raise invalid from exc
    if fields != _fields(key) or not isinstance(values, list):
        raise ApiError(400, "invalid cursor: it was made for another order")
    if len(values) != len(fields):
        raise invalid
    for (column, _), value in zip(key, values, strict=True):
        if column in listing.TIME_COLUMNS:
            if not isinstance(value, int) or isinstance(value, bool) or abs(value) >= _INT64:
                raise invalid
        elif not isinstance(value, str) or "\x00" in value:
            raise invalid
    return values


def list_query(
    request: Request, project: str, fields: Mapping[str, str], *, types: Sequence[str] = ()
) -> taskstore.Query:
    """A store query from the request's list parameters; 400 for anything malformed."""
    params = request.query_params
    if "projectId" in params:
        raise ApiError(400, "projectId as query param not supported")
    raw_limit = params.get("limit", "")
    limit = DEFAULT_LIMIT
    if raw_limit.isdigit() and len(raw_limit) < 10 and int(raw_limit) > 0:
        limit = min(int(raw_limit), MAX_LIMIT)
    order: list[tuple[str, bool]] = []
    for part in filter(None, params.get("order", "").split(",")):
        name, _, descending = part.rpartition("-")
        if name not in fields or descending not in {"true", "false"}:
            raise ApiError(400, f"invalid order: {part[:100]}")
        order.append((fields[name], descending == "true"))
    query = taskstore.Query(
        project_id=project,
        limit=limit,
        order=order or DEFAULT_ORDER,
        filters=_filters(params.get("filters"), fields),
        types=types,
        with_total=params.get("count") in {"1", "true"},
    )
    cursor = params.get("cursor", "")
    if cursor:
        key = listing.sort_key(query, frozenset(fields.values()))
        query = taskstore.Query(
            project_id=query.project_id,
            limit=query.limit,
            order=query.order,
            filters=query.filters,
            types=query.types,
            with_total=query.with_total,
            after=decode_cursor(cursor, key),
        )
    return query


def _bad_filters() -> ApiError:
    return ApiError(400, "error parsing filters")


def _filter_value(column: str, value: Any) -> str | int | float:
    """A filter's value, if it fits the field: a string, or milliseconds for a time."""
    if column in listing.TIME_COLUMNS:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _bad_filters()
        if not -_INT64 <= value < _INT64:
            raise _bad_filters()
        return int(value)
    if not isinstance(value, str) or "\x00" in value or len(value) > _MAX_CURSOR_CHARS:
        raise _bad_filters()
    return value


def _filters(raw: str | None, fields: Mapping[str, str]) -> list[taskstore.Filter]:
    if not raw:
        return []
    try:
        parsed = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise _bad_filters() from exc
    if not isinstance(parsed, list):
        raise _bad_filters()
    found = []
    for item in parsed:
        if not isinstance(item, dict) or item.get("id") not in fields or "value" not in item:
            raise _bad_filters()
        column = fields[item["id"]]
        value = item["value"]
        if isinstance(value, dict):
            if not value:
                raise _bad_filters()
            for op, bound in value.items():
                if op not in _RANGE_OPS:
                    raise _bad_filters()
                found.append(
                    taskstore.Filter(
                        field=column, op=_RANGE_OPS[op], value=_filter_value(column, bound)
                    )
                )
        else:
            equal: Literal["eq", "like"] = "like" if column == "name" else "eq"
            checked = _filter_value(column, value)
            found.append(taskstore.Filter(field=column, op=equal, value=checked))
    return found


def finish_page(
    request: Request, response: Response, query: taskstore.Query, page: taskstore.Page[Any]
) -> None:
    """Set ``Link`` (only when a next page exists) and ``X-Total-Count`` (when asked for)."""
    if page.next_after is not None:
        key = listing.sort_key(query, frozenset(query_columns(query)))
        next_url = request.url.include_query_params(
            limit=str(query.limit), cursor=encode_cursor(key, page.next_after)
        )
        response.headers["Link"] = f'<{next_url}>; rel="next"'
    if page.total is not None:
        response.headers["X-Total-Count"] = str(page.total)


def query_columns(query: taskstore.Query) -> list[str]:
    """The columns a query orders by (already checked when the query was made)."""
    return [column for column, _ in query.order] + ["id"]
