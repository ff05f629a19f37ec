"""Request bodies of the Livepeer dialect, as Studio validates them (unknown fields refused)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

__all__ = [
    "WEBHOOK_EVENTS",
    "ClipPayload",
    "NewAsset",
    "NewAssetFromUrl",
    "PlaybackPolicy",
    "TranscodeProfile",
    "WebhookInput",
]


class _Body(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class TranscodeProfile(_Body):
    """One rendition of a ladder."""

    name: str | None = Field(default=None, min_length=1, max_length=500)
    width: int | None = Field(default=None, ge=128)
    height: int | None = Field(default=None, ge=128)
    bitrate: int = Field(ge=400)
    fps: int | None = Field(default=None, ge=0)
    fps_den: int | None = Field(default=None, ge=1)
    quality: int | None = Field(default=None, ge=0, le=44)
    gop: str | None = None
    profile: Literal["H264Baseline", "H264Main", "H264High", "H264ConstrainedHigh"] | None = None
    encoder: Literal["H.264"] | None = None


class PlaybackPolicy(_Body):
    """Who may play an asset (``mediatasks.access``): anyone (``public``), a viewer with a token
    signed by one of the project's signing keys (``jwt``), or one whose access key the policy's
    webhook (``webhookId``, required) allows (``webhook``)."""

    type: Literal["public", "jwt", "webhook"]
    webhook_id: str | None = Field(default=None, min_length=1, max_length=200)
    webhook_context: dict[str, Any] | None = None
    refresh_interval: float | None = Field(default=None, ge=0, le=365 * 24 * 3600)
    allowed_origins: list[str] | None = None

    @model_validator(mode="after")
    def _webhook_named(self) -> PlaybackPolicy:
        if self.type == "webhook" and not self.webhook_id:
            raise ValueError("a webhook playback policy needs a webhookId")
        return self


class ClipPayload(_Body):
    """``POST /clip``: milliseconds from the start of the asset named by ``playbackId``."""

    playback_id: str = Field(min_length=1)
    start_time: float = Field(ge=0)
    end_time: float = Field(gt=0)
    name: str | None = Field(default=None, min_length=1)
    session_id: str | None = None


class NewAsset(_Body):
    """``POST /asset/request-upload``."""

    name: str = Field(min_length=1)
    static_mp4: bool | None = None
    playback_policy: PlaybackPolicy | None = None
    creator_id: str | dict[str, Any] | None = None
    storage: dict[str, Any] | None = None
    c2pa: bool | None = None
    profiles: list[TranscodeProfile] | None = None
    target_segment_size_secs: float | None = Field(default=None, ge=0)
    encryption: dict[str, Any] | None = None


class NewAssetFromUrl(_Body):
    """``POST /asset/upload/url``."""

    name: str = Field(min_length=1)
    url: str = Field(pattern=r"^(https?)://")
    static_mp4: bool | None = None
    playback_policy: PlaybackPolicy | None = None
    creator_id: str | dict[str, Any] | None = None
    storage: dict[str, Any] | None = None
    c2pa: bool | None = None
    profiles: list[TranscodeProfile] | None = None
    target_segment_size_secs: float | None = Field(default=None, ge=0)
    encryption: dict[str, Any] | None = None


#: Every event name Livepeer's webhook schema allows (stream events never fire here).
WEBHOOK_EVENTS = Literal[
    "stream.started",
    "stream.detection",
    "stream.idle",
    "recording.ready",
    "recording.started",
    "recording.waiting",
    "multistream.connected",
    "multistream.error",
    "multistream.disconnected",
    "playback.user.new",
    "playback.accessControl",
    "asset.created",
    "asset.updated",
    "asset.failed",
    "asset.ready",
    "asset.deleted",
    "task.spawned",
    "task.updated",
    "task.completed",
    "task.failed",
]


class WebhookInput(_Body):
    """``POST /webhook`` and ``PUT /webhook/{id}``."""

    name: str = Field(min_length=1, max_length=500)
    url: str = Field(pattern=r"^https?://")
    events: list[WEBHOOK_EVENTS] = Field(min_length=1)
    shared_secret: str | None = Field(default=None, max_length=500)
    stream_id: str | None = None
    project_id: str | None = None
