"""Shared fixtures: a clean environment, and task stores on real SQLite and real PostgreSQL.

PostgreSQL tests use ``MEDIATASKS_TEST_DATABASE_URL`` (default: the local server's ``test``
database).  Each test gets its own database, cloned from a migrated template.  When the server
cannot be reached they are skipped, except in CI (``CI=true``), where that is an error.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from mediatasks import taskstore

PG_URL = os.environ.get("MEDIATASKS_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


@pytest.fixture(autouse=True)
def _clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """No setting leaks into a test from the shell that runs it."""
    for name in list(os.environ):
        if name.startswith("MEDIATASKS_") or name == "DATABASE_URL":
            monkeypatch.delenv(name)


def _pg_admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(PG_URL, autocommit=True, connect_timeout=5) as conn:
        conn.execute(sql.encode())


def _with_database(name: str) -> str:
    base, _, _ = PG_URL.rpartition("/")
    return f"{base}/{name}"


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    """A migrated database that each PostgreSQL test clones; its name."""
    try:
        import psycopg

        psycopg.connect(PG_URL, connect_timeout=5).close()
    except Exception as exc:
        if IN_CI:
            raise RuntimeError(f"PostgreSQL is required in CI and unreachable: {exc}") from exc
        pytest.skip(f"PostgreSQL unreachable at {PG_URL}: {exc}")
    name = f"mt_template_{os.getpid()}"
    _pg_admin(f"DROP DATABASE IF EXISTS {name}")
    _pg_admin(f"CREATE DATABASE {name}")

    async def migrate() -> None:
        store = taskstore.open_task_store(_with_database(name))
        await store.migrate()
        await store.close()

    asyncio.run(migrate())
    yield name
    _pg_admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def pg_url(pg_template: str) -> Iterator[str]:
    """The URL of a fresh, migrated PostgreSQL database for this test alone."""
    name = f"mt_{uuid.uuid4().hex[:12]}"
    _pg_admin(f"CREATE DATABASE {name} TEMPLATE {pg_template}")
    yield _with_database(name)
    _pg_admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def pg_empty_url(pg_template: str) -> Iterator[str]:
    """The URL of a fresh PostgreSQL database with no schema at all."""
    name = f"mt_{uuid.uuid4().hex[:12]}"
    _pg_admin(f"CREATE DATABASE {name}")
    yield _with_database(name)
    _pg_admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_store_url(request: pytest.FixtureRequest) -> str:
    """A database with no schema, once per backend."""
    name = "sqlite_url" if request.param == "sqlite" else "pg_empty_url"
    url: str = request.getfixturevalue(name)
    return url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """The URL of a SQLite file for this test alone."""
    return f"sqlite:///{tmp_path / 'tasks.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest) -> str:
    """Each test that uses it runs once per backend."""
    if request.param == "sqlite":
        url: str = request.getfixturevalue("sqlite_url")
    else:
        url = request.getfixturevalue("pg_url")
    return url


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[taskstore.TaskStore]:
    """A migrated task store on each backend."""
    opened = taskstore.open_task_store(store_url)
    await opened.migrate()
    yield opened
    await opened.close()
