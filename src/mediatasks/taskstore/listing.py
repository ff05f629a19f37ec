"""The SQL of a list query (a page of tasks or assets), and the key of where the next page starts.

Pages are **keyset** pages: a page is ordered by the query's columns and then by ``id``, and
the next one starts strictly after the last row's values of those columns (``Query.after``).
Unlike ``OFFSET``, a row that is inserted or deleted before the cursor does not shift the rows
after it, so a walk never repeats or skips a row because others changed.  That holds for rows
whose sort values do not change during the walk: order by ``created_at`` (the dialects'
default) or ``id``; a row whose ``updated_at`` changes while a walk orders by it moves, and may
be seen twice or not at all.  ``Query.offset`` is still honoured when no ``after`` is given.

This module only builds SQL text and parameters from whitelisted column names, so it is the same
for every backend: a backend supplies how a parameter is written (``placeholder``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from mediatasks import errors
from mediatasks.taskstore import base

__all__ = ["TIME_COLUMNS", "ListSql", "build", "next_key", "sort_key"]

#: Columns holding Unix milliseconds; every other listed column holds text.
TIME_COLUMNS: Final = frozenset({"created_at", "updated_at"})
#: Columns that may be NULL: they sort (and compare) as the empty string.
_NULLABLE: Final = frozenset({"input_asset_id", "output_asset_id"})
_OPS: Final = {"eq": "=", "gt": ">", "gte": ">=", "lt": "<", "lte": "<=", "like": "LIKE"}
_INT64: Final = 2**63

PlaceholderFunc = Callable[[str], str]


@dataclasses.dataclass(frozen=True, kw_only=True)
class ListSql:
    """The statements of one page, and the columns its keyset is made of."""

    #: The page itself: one row more than the page holds, to know whether another follows.
    select: str
    #: How many rows match in all (ignoring the page).
    count: str
    params: dict[str, Any]
    count_params: dict[str, Any]
    #: ``(column, descending)``, ending with ``id``.
    key: tuple[tuple[str, bool], ...]


def _expression(column: str) -> str:
    return f"COALESCE({column}, '')" if column in _NULLABLE else column


def _checked_value(column: str, value: Any, what: str) -> Any:
    if column in TIME_COLUMNS:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise errors.InvalidInput(f"{what} on {column} needs a number (Unix milliseconds)")
        if not -_INT64 <= value < _INT64:
            raise errors.InvalidInput(f"{what} on {column} is out of range")
        return int(value)
    if not isinstance(value, str):
        raise errors.InvalidInput(f"{what} on {column} needs a string")
    return value


def sort_key(query: base.Query, allowed: frozenset[str]) -> tuple[tuple[str, bool], ...]:
    """The query's order, from whitelisted columns only, ending with ``id`` (the tie-break)."""
    key: list[tuple[str, bool]] = []
    for column, descending in query.order:
        if column not in allowed:
            raise errors.InvalidInput(f"cannot order by {column}")
        if column not in (c for c, _ in key):
            key.append((column, descending))
    if "id" not in (c for c, _ in key):
        key.append(("id", True))
    return tuple(key)


def build(
    table: str,
    query: base.Query,
    allowed: frozenset[str],
    placeholder: PlaceholderFunc,
    *,
    extra_where: str = "",
) -> ListSql:
    """The statements of a page of ``table`` for ``query``."""
    clauses = [f"project_id = {placeholder('project_id')}"]
    params: dict[str, Any] = {"project_id": query.project_id}
    for i, cond in enumerate(query.filters):
        if cond.field not in allowed or cond.op not in _OPS:
            raise errors.InvalidInput(f"cannot filter on {cond.field}")
        value = _checked_value(cond.field, cond.value, "a filter")
        column = _expression(cond.field)
        if cond.op == "like":
            column, value = f"lower({column})", f"%{str(value).lower()}%"
        clauses.append(f"{column} {_OPS[cond.op]} {placeholder(f'f{i}')}")
        params[f"f{i}"] = value
    if query.types and "type" in allowed:
        marks = []
        for i, task_type in enumerate(query.types):
            params[f"y{i}"] = task_type
            marks.append(placeholder(f"y{i}"))
        clauses.append(f"type IN ({', '.join(marks)})")
    if query.related_to is not None and "input_asset_id" in allowed:
        params["related"] = query.related_to
        related = placeholder("related")
        clauses.append(
            f"(id = {related} OR input_asset_id = {related} OR output_asset_id = {related})"
        )
    if extra_where:
        clauses.append(extra_where)
    count_params = dict(params)
    where = " AND ".join(clauses)
    count = f"SELECT count(*) AS n FROM {table} WHERE {where}"

    key = sort_key(query, allowed)
    page_where = where
    if query.after is not None:
        page_where += f" AND ({_after(key, query.after, params, placeholder)})"
    order = ", ".join(f"{_expression(c)} {'DESC' if d else 'ASC'}" for c, d in key)
    params["limit"] = query.limit + 1
    limit = placeholder("limit")
    select = f"SELECT * FROM {table} WHERE {page_where} ORDER BY {order} LIMIT {limit}"
    if query.after is None and query.offset:
        if not 0 <= query.offset < _INT64:
            raise errors.InvalidInput("offset is out of range")
        params["offset"] = query.offset
        select += f" OFFSET {placeholder('offset')}"
    return ListSql(select=select, count=count, params=params, count_params=count_params, key=key)


def _after(
    key: Sequence[tuple[str, bool]],
    after: Sequence[Any],
    params: dict[str, Any],
    placeholder: PlaceholderFunc,
) -> str:
    """``(c1, c2, ...) > (v1, v2, ...)`` in the key's own directions, spelled out with ORs."""
    if len(after) != len(key):
        raise errors.InvalidInput("the cursor does not fit this order")
    values = [
        _checked_value(column, value, "the cursor")
        for (column, _), value in zip(key, after, strict=True)
    ]
    for i, value in enumerate(values):
        params[f"k{i}"] = value
    alternatives = []
    for i, (column, descending) in enumerate(key):
        equal = [f"{_expression(c)} = {placeholder(f'k{j}')}" for j, (c, _) in enumerate(key[:i])]
        beyond = f"{_expression(column)} {'<' if descending else '>'} {placeholder(f'k{i}')}"
        alternatives.append(" AND ".join([*equal, beyond]))
    return " OR ".join(f"({alternative})" for alternative in alternatives)


def next_key(
    rows: Sequence[Mapping[str, Any]], sql: ListSql, limit: int
) -> tuple[Sequence[Mapping[str, Any]], tuple[Any, ...] | None]:
    """The rows of the page, and the key to continue after when another page follows."""
    if limit <= 0:
        return rows[:0], None
    if len(rows) <= limit:
        return rows, None
    page = rows[:limit]
    last = page[-1]
    values = tuple(
        "" if last[column] is None and column in _NULLABLE else last[column]
        for column, _ in sql.key
    )
    return page, values
