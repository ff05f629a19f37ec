"""The Asset: a video that the service holds, and how its phase follows its task's.

An asset is created with the task that fills it (``upload``, later ``clip``).  While that task
runs, the asset's phase and progress mirror it; ``mirror_phase`` is the one place that says how.
"""

from __future__ import annotations

import dataclasses
import enum
import secrets
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from mediatasks import tasks

__all__ = ["Asset", "AssetPhase", "mirror_phase", "new_playback_id"]

_BASE36 = "0123456789abcdefghijklmnopqrstuvwxyz"


class AssetPhase(enum.StrEnum):
    """Livepeer's asset ``status.phase`` words."""

    #: Created by request-upload; the bytes have not all arrived.
    UPLOADING = "uploading"
    #: Its task is queued.
    WAITING = "waiting"
    #: Its task is running.
    PROCESSING = "processing"
    #: Playable.
    READY = "ready"
    #: Its task failed or was cancelled.
    FAILED = "failed"
    #: Deletion is under way.
    DELETING = "deleting"
    #: Deleted; it answers 404 from then on.
    DELETED = "deleted"


def mirror_phase(task_phase: tasks.Phase) -> AssetPhase | None:
    """The phase an output asset takes when its task enters ``task_phase``.

    ``None`` means the asset keeps its phase: a task waiting out a retry's back-off leaves its
    asset ``processing``, as Livepeer does.
    """
    return {
        tasks.Phase.RUNNING: AssetPhase.PROCESSING,
        tasks.Phase.COMPLETED: AssetPhase.READY,
        tasks.Phase.FAILED: AssetPhase.FAILED,
        tasks.Phase.CANCELLED: AssetPhase.FAILED,
    }.get(task_phase)


def new_playback_id(asset_id: str) -> str:
    """Livepeer's shape: 16 base-36 characters, the first 4 taken from the asset id."""
    prefix = "".join(c for c in asset_id.lower() if c in _BASE36)[:4]
    return prefix + "".join(secrets.choice(_BASE36) for _ in range(16 - len(prefix)))


@dataclasses.dataclass(frozen=True, kw_only=True)
class Asset:
    """One asset as the store last saw it."""

    id: str
    project_id: str
    name: str
    playback_id: str
    phase: AssetPhase
    progress: float | None = None
    error_message: str | None = None
    #: Where it came from, in Livepeer's shape: ``{"type": "url", "url": ...}``.
    source: Mapping[str, Any]
    #: What the client asked for: profiles, staticMp4, targetSegmentSizeSecs, creatorId, ...
    options: Mapping[str, Any]
    #: What processing produced: size, hash, videoSpec, renditions, blob prefix.
    media: Mapping[str, Any]
    #: Livepeer's ``storage``: the IPFS spec and CID, and the status of the export that keeps
    #: them (``mediatasks.ipfs.asset_storage``).
    storage: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None = None

    def evolve(self, **changes: Any) -> Asset:
        """A copy with ``changes`` applied."""
        return dataclasses.replace(self, **changes)
