"""Request bodies of the Livepeer dialect, as Livepeer's OpenAPI document describes them.

Each model is the spec's schema (``components.schemas.*``): the same required fields, the same
enums, unknown fields refused (the spec's ``additionalProperties: false``).  Where the spec is
silent about a range, the bound is this service's, chosen so that no value can break a store or
the media pipeline (a segment of ``4e107`` seconds, an infinite number): those are refused with
422 rather than stored.  Lengths of strings are bounded for every request by
``api.livepeer.guard`` (settings ``max_name_chars`` and ``max_string_chars``).
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

__all__ = [
    "MAX_SEGMENT_SIZE_S",
    "WEBHOOK_EVENTS",
    "Body",
    "ClipPayload",
    "CreatorId",
    "InputCreatorId",
    "IpfsSpec",
    "IpfsStorage",
    "NewAsset",
    "NewAssetFromUrl",
    "PlaybackPolicy",
    "StorageBody",
    "TranscodeProfile",
    "WebhookInput",
]

#: The longest segment a ``targetSegmentSizeSecs`` may ask for.  The spec gives no bound; longer
#: asks are clamped to 20 s anyway (``hls.MAX_SEGMENT_S``), so a minute is generous.
MAX_SEGMENT_SIZE_S: Final = 60.0


class Body(BaseModel):
    """A request body: camelCase fields, unknown ones refused, and JSON's own types only (no
    ``"yes"`` for a boolean, no ``"5"`` for a number, as the spec's validator has it)."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        allow_inf_nan=False,
        strict=True,
    )


#: A segment duration in seconds: positive and bounded.
SegmentSeconds = Annotated[float, Field(gt=0, le=MAX_SEGMENT_SIZE_S)]


class TranscodeProfile(Body):
    """One rendition of a ladder (``transcode-profile``)."""

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


#: ``<scheme>://<hostname>`` or ``<scheme>://<hostname>:<port>``, as a browser's ``Origin``.
Origin = Annotated[
    str, Field(max_length=300, pattern=r"^https?://[A-Za-z0-9.\-\[\]:]+(:[0-9]{1,5})?/?$")
]


class PlaybackPolicy(Body):
    """Who may play an asset (``mediatasks.access``): anyone (``public``), a viewer with a token
    signed by one of the project's signing keys (``jwt``), or one whose access key the policy's
    webhook (``webhookId``, required) allows (``webhook``)."""

    type: Literal["public", "jwt", "webhook"]
    webhook_id: str | None = Field(default=None, min_length=1, max_length=200)
    webhook_context: dict[str, Any] | None = None
    refresh_interval: float | None = Field(default=None, ge=0, le=365 * 24 * 3600)
    allowed_origins: list[Origin] | None = Field(default=None, max_length=100)

    @model_validator(mode="after")
    def _webhook_named(self) -> PlaybackPolicy:
        if self.type == "webhook" and not self.webhook_id:
            raise ValueError("a webhook playback policy needs a webhookId")
        return self


class CreatorId(Body):
    """``input-creator-id`` in its object form."""

    type: Literal["unverified"]
    value: str


#: ``input-creator-id``: the object form, or a bare string for an unverified id.
InputCreatorId = CreatorId | str


class IpfsSpec(Body):
    """What an asset stored on IPFS is exported with (``storage.ipfs.spec``)."""

    nft_metadata_template: Literal["file", "player"] | None = None
    nft_metadata: dict[str, Any] | None = None


class IpfsStorage(Body):
    """``storage.ipfs`` in its object form; ``spec: null`` means removal."""

    spec: IpfsSpec | None = None


class StorageBody(Body):
    """``storage`` of a new asset or an update: ``ipfs`` is ``true``, ``{"spec": ...}``, or
    ``false``/``null`` (removal)."""

    ipfs: bool | IpfsStorage | None = None


class ClipPayload(Body):
    """``POST /clip``: milliseconds from the start of the asset named by ``playbackId``;
    without ``endTime`` the clip runs to the end of the asset."""

    playback_id: str = Field(min_length=1)
    start_time: float = Field(ge=0)
    end_time: float | None = Field(default=None, gt=0)
    name: str | None = None
    session_id: str | None = None


class _NewAssetFields(Body):
    """What ``new-asset-payload`` and ``new-asset-from-url-payload`` share."""

    name: str
    static_mp4: bool | None = None
    playback_policy: PlaybackPolicy | None = None
    creator_id: InputCreatorId | None = None
    storage: StorageBody | None = None
    c2pa: bool | None = None
    profiles: list[TranscodeProfile] | None = None
    target_segment_size_secs: SegmentSeconds | None = None
    encryption: dict[str, Any] | None = None


class NewAsset(_NewAssetFields):
    """``POST /asset/request-upload`` (``new-asset-payload``)."""


class NewAssetFromUrl(_NewAssetFields):
    """``POST /asset/upload/url`` (``new-asset-from-url-payload``): ``http(s)://``,
    ``ipfs://<cid>`` or ``ar://<id>``."""

    url: str = Field(pattern=r"^(https?|ipfs|ar)://")


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


class WebhookInput(Body):
    """``POST /webhook`` and ``PUT /webhook/{id}`` (the ``webhook`` schema; ``name`` and
    ``url`` are required).  A webhook without ``events`` is kept and receives none.

    The read-only fields of the schema (``id``, ``kind``, ``userId``, ``createdAt``,
    ``status``) are accepted and ignored, so that a webhook read back can be sent again.
    """

    name: str
    url: str = Field(pattern=r"^https?://")
    events: list[WEBHOOK_EVENTS] = Field(default_factory=list)
    shared_secret: str | None = None
    stream_id: str | None = None
    project_id: str | None = None
    id: str | None = None
    kind: str | None = None
    user_id: str | None = None
    created_at: float | None = None
    status: dict[str, Any] | None = None
