"""Fixtures shared by the integration tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mediatasks import settings, taskstore
from mediatasks.api.runtime import Runtime
from mediatasks.blobstore.local import LocalBlobStore


@pytest.fixture
async def runtime(store: taskstore.TaskStore, tmp_path: Path) -> AsyncIterator[Runtime]:
    """The stores an application runs on: the test's task store, media in ``tmp_path``."""
    config = settings.Settings(data_dir=tmp_path, allow_private_urls=False)
    blobs = LocalBlobStore(tmp_path / "media")
    yield Runtime(settings=config, store=store, blobs=blobs)
    await blobs.close()
