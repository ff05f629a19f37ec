"""Request bodies of the Flat dialect.  Unknown fields are ignored, as Flat's clients add some."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["ScoreCreation", "TaskExportOptions"]


class _Body(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore")


class ScoreCreation(_Body):
    """``POST /scores``: a file import (``data``); builder data and Google Drive are refused."""

    data: str | None = None
    #: Only ``base64``; the data is sniffed anyway (the 2.0.4 client may drop this field).
    data_encoding: str | None = Field(default=None, alias="dataEncoding")
    filename: str | None = None
    title: str | None = None
    privacy: Literal["public", "private", "organizationPublic", "privateLink"] | None = None
    collection: str | None = None
    supports_tasks: bool | None = Field(default=None, alias="supportsTasks")
    builder_data: dict[str, Any] | None = Field(default=None, alias="builderData")
    source: dict[str, Any] | None = None


class TaskExportOptions(_Body):
    """``POST /scores/{score}/revisions/{revision}/{format}/task``: which parts to export."""

    parts: list[str] | None = None
