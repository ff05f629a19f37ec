"""Rows of the task store as domain objects, and times as Unix milliseconds."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import orjson

from mediatasks import assets, tasks

__all__ = ["asset_from_row", "from_ms", "load_json", "maybe_from_ms", "task_from_row", "to_ms"]


def to_ms(moment: datetime) -> int:
    """Unix milliseconds of an aware datetime."""
    return tasks.unix_ms(moment)


_fromtimestamp = datetime.fromtimestamp


def from_ms(value: int) -> datetime:
    """The aware UTC datetime of Unix milliseconds."""
    return _fromtimestamp(value / 1000, UTC)


def maybe_from_ms(value: int | None) -> datetime | None:
    return None if value is None else _fromtimestamp(value / 1000, UTC)


def task_from_row(row: Mapping[str, Any]) -> tasks.Task:
    """A task from a row of ``tasks`` (or an outbox copy of one)."""
    return tasks.Task(
        id=row["id"],
        project_id=row["project_id"],
        type=row["type"],
        phase=tasks.Phase(row["phase"]),
        params=load_json(row["params"]),
        output=None if row["output"] is None else load_json(row["output"]),
        progress=row["progress"],
        retries=row["retries"],
        max_retries=row["max_retries"],
        attempt=row["attempt"],
        rescues=row.get("rescues") or 0,
        error_message=row["error_message"],
        input_asset_id=row["input_asset_id"],
        output_asset_id=row["output_asset_id"],
        # datetime.fromtimestamp at once, not from_ms: a page turns 140 times into datetimes.
        created_at=_fromtimestamp(row["created_at"] / 1000, UTC),
        updated_at=_fromtimestamp(row["updated_at"] / 1000, UTC),
        scheduled_at=maybe_from_ms(row["scheduled_at"]),
        run_at=_fromtimestamp(row["run_at"] / 1000, UTC),
        started_at=maybe_from_ms(row.get("started_at")),
        lease_token=row["lease_token"],
        lease_expires_at=maybe_from_ms(row["lease_expires_at"]),
        worker_id=row["worker_id"],
    )


def asset_from_row(row: Mapping[str, Any]) -> assets.Asset:
    """An asset from a row of ``assets`` (or an outbox copy of one)."""
    return assets.Asset(
        id=row["id"],
        project_id=row["project_id"],
        name=row["name"],
        playback_id=row["playback_id"],
        phase=assets.AssetPhase(row["phase"]),
        progress=row["progress"],
        error_message=row["error_message"],
        source=load_json(row["source"]),
        options=load_json(row["options"]),
        media=load_json(row["media"]),
        storage=load_json(row.get("storage") or "{}"),
        created_at=_fromtimestamp(row["created_at"] / 1000, UTC),
        updated_at=_fromtimestamp(row["updated_at"] / 1000, UTC),
        deleted_at=maybe_from_ms(row["deleted_at"]),
    )


#: A tuple, not ``str | bytes``: that union is built again at each call (a page reads hundreds).
_TEXT = (str, bytes)


def load_json(value: Any) -> Any:
    """A JSON column's value: text in SQLite, already decoded by psycopg.

    orjson reads it several times faster than ``json``; what orjson refuses (an integer beyond
    64 bits, which no API lets in but an older row might hold) is read by ``json``.
    """
    if not isinstance(value, _TEXT):
        return value
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError:
        return json.loads(value)
