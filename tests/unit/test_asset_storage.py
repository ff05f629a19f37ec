"""How export tasks move an asset's IPFS storage document: pure functions, no database."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from mediatasks import tasks
from mediatasks.ipfs import asset_storage

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def task(phase: tasks.Phase, task_id: str = "t1", **changes: Any) -> tasks.Task:
    return tasks.Task(
        id=task_id,
        project_id="p",
        type="export",
        phase=phase,
        params={"ipfs": {}},
        created_at=NOW,
        updated_at=NOW,
        run_at=NOW,
        input_asset_id="a",
        **changes,
    )


@pytest.mark.parametrize(
    ("requested", "spec"),
    [
        (True, {}),
        ({}, {}),
        ({"spec": {"nftMetadataTemplate": "player"}}, {"nftMetadataTemplate": "player"}),
        (False, None),
        (None, None),
        ({"spec": None}, None),
    ],
)
def test_spec_of_request(requested: Any, spec: Any) -> None:
    assert asset_storage.spec_of_request(requested) == spec


def test_an_export_moves_storage_through_its_phases() -> None:
    storage = asset_storage.requested({}, {}, "t1", 1)
    assert storage == {
        "ipfs": {"spec": {}, "updatedAt": 1},
        "status": {"phase": "waiting", "tasks": {"pending": "t1"}},
    }
    running = asset_storage.follow(storage, task(tasks.Phase.RUNNING, progress=0.4567), 2)
    assert running is not None
    assert running["status"] == {
        "phase": "processing",
        "progress": 0.457,
        "tasks": {"pending": "t1"},
    }
    assert asset_storage.follow(running, task(tasks.Phase.RUNNING, progress=0.4567), 3) is None
    output = {
        "export": {
            "ipfs": {
                "videoFileCid": "bafy",
                "videoFileUrl": "ipfs://bafy",
                "videoFileGatewayUrl": "g",
            }
        }
    }
    done = asset_storage.follow(running, task(tasks.Phase.COMPLETED, output=output), 4)
    assert done == {
        "ipfs": {
            "spec": {},
            "cid": "bafy",
            "url": "ipfs://bafy",
            "gatewayUrl": "g",
            "updatedAt": 4,
        },
        "status": {"phase": "ready", "tasks": {"last": "t1"}},
    }


def test_failure_and_manual_retry() -> None:
    storage = asset_storage.requested(
        {"status": {"phase": "ready", "tasks": {"last": "t0"}}}, {}, "t1", 1
    )
    failed = asset_storage.follow(storage, task(tasks.Phase.FAILED, error_message="boom"), 2)
    assert failed is not None
    assert failed["status"] == {
        "phase": "failed",
        "errorMessage": "boom",
        "tasks": {"last": "t0", "failed": "t1"},
    }
    retried = asset_storage.follow(failed, task(tasks.Phase.WAITING), 3)
    assert retried is not None
    assert retried["status"]["tasks"] == {"last": "t0", "failed": "t1", "pending": "t1"}
    cancelled = asset_storage.follow(
        retried, task(tasks.Phase.CANCELLED, error_message="task cancelled"), 4
    )
    assert cancelled is not None and cancelled["status"]["phase"] == "failed"


def test_only_the_pending_export_moves_storage() -> None:
    storage = asset_storage.requested({}, {}, "t2", 1)
    for phase in tasks.Phase:
        assert asset_storage.follow(storage, task(phase, task_id="t1"), 2) is None
    # An automatic retry waiting out its back-off changes nothing either.
    assert asset_storage.follow(storage, task(tasks.Phase.WAITING, task_id="t2"), 2) is None
    assert asset_storage.current_spec(storage) == {}
    assert asset_storage.current_spec({}) is None
