"""Loading the named SQL queries of a dialect.

The ``.sql`` files directly in ``sql/`` hold the queries that read the same in both dialects
(one file per concern) and ``sql/<dialect>/queries.sql`` those that differ (a dialect's query
wins over a shared one of the same name).  Each query starts with ``-- name: <name>``.
Parameters are written ``:name``; ``paramstyle="pyformat"`` rewrites them to psycopg's
``%(name)s``.
"""

from __future__ import annotations

import re
from importlib import resources
from typing import Literal

__all__ = ["load_migrations", "load_queries"]

_NAME = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)
_PARAM = re.compile(r"(?<![:\w]):([a-z_][a-z0-9_]*)")


def _parse(text: str) -> dict[str, str]:
    parts = _NAME.split(text)
    queries: dict[str, str] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        lines = [line for line in body.splitlines() if not line.lstrip().startswith("--")]
        queries[name] = "\n".join(lines).strip().rstrip(";")
    return queries


def load_queries(
    dialect: Literal["sqlite", "postgres"], paramstyle: Literal["named", "pyformat"]
) -> dict[str, str]:
    """The dialect's named queries, with parameters in ``paramstyle``."""
    root = resources.files("mediatasks.taskstore") / "sql"
    queries: dict[str, str] = {}
    for entry in sorted(root.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".sql"):
            queries.update(_parse(entry.read_text()))
    queries.update(_parse((root / dialect / "queries.sql").read_text()))
    if paramstyle == "pyformat":
        queries = {
            name: _PARAM.sub(r"%(\1)s", sql.replace("%", "%%")) for name, sql in queries.items()
        }
    return queries


def load_migrations(dialect: Literal["sqlite", "postgres"]) -> list[tuple[int, str]]:
    """``(version, script)`` for every migration of the dialect, in order."""
    folder = resources.files("mediatasks.taskstore") / "sql" / dialect / "migrations"
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            found.append((int(entry.name.split("_", 1)[0]), entry.read_text()))
    return sorted(found)
