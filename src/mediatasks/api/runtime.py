"""What every HTTP handler needs: the settings and the open stores, shared by the dialects."""

from __future__ import annotations

import dataclasses

from mediatasks import blobstore, taskstore
from mediatasks import settings as settings_module
from mediatasks.api import keyring

__all__ = ["Runtime", "open_runtime"]


@dataclasses.dataclass(kw_only=True)
class Runtime:
    """The service's open resources; filled in by the application's start-up."""

    settings: settings_module.Settings
    store: taskstore.TaskStore
    blobs: blobstore.BlobStore
    #: The API keys this process checked lately, in front of ``store.authenticate``.
    keys: keyring.Keyring = dataclasses.field(init=False)

    def __post_init__(self) -> None:
        self.keys = keyring.Keyring(self.store)

    def base_url(self, request_base_url: str) -> str:
        """The public base URL for links: the setting, else the request's own."""
        return (self.settings.public_url or request_base_url).rstrip("/")


def open_runtime(settings: settings_module.Settings) -> Runtime:
    """The task store and blob store that ``settings`` name (no I/O until they are used)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = taskstore.open_task_store(
        settings.resolved_database_url, timeout_s=settings.store_timeout_s
    )
    blobs = blobstore.open_configured(settings)
    return Runtime(settings=settings, store=store, blobs=blobs)
