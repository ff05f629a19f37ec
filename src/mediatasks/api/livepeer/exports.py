"""Exports and asset updates: ``POST /asset/{id}/export``, ``PATCH /asset/{id}``,
``POST /data/export``.

``POST /asset/{assetId}/export`` answers 201 ``{"task": ...}``; 404 for an asset that is not the
caller's, 412 ``asset is not ready to be exported``, 422 for a malformed body, a custom URL that is
not allowed, or an export to IPFS on a server with no IPFS service.

``PATCH /asset/{assetId}`` (Livepeer's ``asset-patch-payload``) answers 200 with the updated asset.
``storage.ipfs`` starts an export to IPFS as Studio does (422 ``asset is not ready`` unless the
asset is ready); removing an asset from IPFS is refused with 422 (Studio answers 400).

``POST /data/export`` is this service's way to create an ``export-data`` task.  Studio creates
them only from ``POST /experiment/-/attestation`` (signed attestations); a plain endpoint that
takes any JSON or text document is more useful here, and the task and its output have Studio's
shape.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import Field, field_validator, model_validator

from mediatasks import errors, export
from mediatasks.api.livepeer import schemas, views, wire
from mediatasks.api.livepeer.auth import ApiError, Project, runtime_of
from mediatasks.api.runtime import Runtime

__all__ = [
    "AssetPatchBody",
    "DataExportBody",
    "ExportTaskBody",
    "router",
    "storage_request",
]

router = APIRouter()
RuntimeDep = Annotated[Runtime, Depends(runtime_of)]


class PinataCredentials(schemas.Body):
    """A request's own Pinata account: a JWT, or an API key and secret."""

    jwt: str | None = Field(default=None, min_length=1)
    api_key: str | None = Field(default=None, min_length=1)
    api_secret: str | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _complete(self) -> PinataCredentials:
        if not self.jwt and not (self.api_key and self.api_secret):
            raise ValueError("pinata needs a jwt, or an apiKey and an apiSecret")
        return self


class IpfsExportBody(schemas.Body):
    """Livepeer's ``ipfs-export-params``."""

    nft_metadata_template: Literal["file", "player"] | None = None
    nft_metadata: dict[str, Any] | None = None
    pinata: PinataCredentials | None = None


#: An HTTP header name (RFC 9110 ``token``), and a value of visible ASCII, spaces and tabs.
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_HEADER_VALUE = re.compile(r"[\t\x20-\x7e]*")


class CustomExportBody(schemas.Body):
    """Where a custom export sends the file."""

    url: str = Field(pattern=r"^https?://", max_length=4096)
    method: Literal["PUT", "POST"] = "PUT"
    headers: dict[str, str] = Field(default_factory=dict)

    @field_validator("method", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("headers")
    @classmethod
    def _sendable(cls, value: dict[str, str]) -> dict[str, str]:
        """Refused now rather than failing every attempt later: a header that HTTP cannot
        carry (CR, LF or another control character, a name that is not a token)."""
        for name, text in value.items():
            if not _HEADER_NAME.fullmatch(name):
                raise ValueError(f"{name!r} is not a valid HTTP header name")
            if not _HEADER_VALUE.fullmatch(text):
                raise ValueError(
                    f"the value of header {name} may only hold visible ASCII, spaces and tabs"
                )
        return value


class ExportTaskBody(schemas.Body):
    """Livepeer's ``export-task-params``: exactly one of ``custom`` and ``ipfs``."""

    custom: CustomExportBody | None = None
    ipfs: IpfsExportBody | None = None

    @model_validator(mode="after")
    def _one_target(self) -> ExportTaskBody:
        if (self.custom is None) == (self.ipfs is None):
            raise ValueError("give exactly one of custom and ipfs")
        return self


class AssetPatchBody(schemas.Body):
    """Livepeer's ``asset-patch-payload``."""

    name: str | None = None
    creator_id: schemas.InputCreatorId | None = None
    playback_policy: schemas.PlaybackPolicy | None = None
    storage: schemas.StorageBody | None = None


class DataExportBody(schemas.Body):
    """``POST /data/export``: a JSON value or a text to put on IPFS."""

    #: A JSON object, as the spec's ``params.exportData.content`` is.
    content: dict[str, Any]
    ipfs: IpfsExportBody = Field(default_factory=IpfsExportBody)
    #: What the content is (Studio writes ``attestation``); kept in the task's params.
    type: str | None = Field(default=None, max_length=200)


def storage_request(body: schemas.StorageBody | None) -> dict[str, Any] | None:
    """``storage`` as the use cases take it (``{"ipfs": true | false | null | {"spec": ...}}``),
    or ``None`` when the request says nothing about IPFS."""
    if body is None or "ipfs" not in body.model_fields_set:
        return None
    ipfs = body.ipfs
    if isinstance(ipfs, schemas.IpfsStorage):
        spec = ipfs.spec
        dumped = None if spec is None else spec.model_dump(by_alias=True, exclude_none=True)
        return {"ipfs": {"spec": dumped}}
    return {"ipfs": ipfs}


async def _task_answer(runtime: Runtime, request: Request, task: Any) -> dict[str, Any]:
    base_url = runtime.base_url(str(request.base_url))
    return {"task": await views.render_task(runtime, task, base_url)}


@router.post("/asset/{asset_id}/export", status_code=201)
async def export_asset(
    asset_id: str, body: ExportTaskBody, request: Request, project: Project, runtime: RuntimeDep
) -> dict[str, Any]:
    """Export an asset's file to a custom URL (``PUT`` or ``POST``, with headers) or to IPFS.

    Answers 201 ``{"task": ...}``; 404 for an unknown asset, 412 when it is not ready.
    """
    try:
        task = await export.export_asset(
            runtime.store,
            runtime.settings,
            project_id=project,
            asset_id=asset_id,
            params=body.model_dump(by_alias=True, exclude_none=True),
        )
    except errors.InvalidTransition as exc:
        raise ApiError(412, exc.message) from exc
    return await _task_answer(runtime, request, task)


@router.patch("/asset/{asset_id}")
async def patch_asset(
    asset_id: str, body: AssetPatchBody, request: Request, project: Project, runtime: RuntimeDep
) -> dict[str, Any]:
    """Update an asset's ``name``, ``creatorId``, ``playbackPolicy`` or ``storage``.

    ``storage.ipfs`` (``true`` or ``{"spec": {...}}``) starts an export of the asset to IPFS
    (422 ``asset is not ready`` unless it is ready); its ``storage.status`` then follows that task.
    """
    options: dict[str, Any] = {}
    if body.creator_id is not None:
        creator = body.creator_id
        options["creatorId"] = creator if isinstance(creator, str) else creator.model_dump()
    if "playback_policy" in body.model_fields_set:
        policy = body.playback_policy
        options["playbackPolicy"] = (
            None if policy is None else policy.model_dump(by_alias=True, exclude_none=True)
        )
    storage = storage_request(body.storage)
    try:
        asset, _ = await export.patch_asset(
            runtime.store,
            runtime.settings,
            project_id=project,
            asset_id=asset_id,
            name=body.name,
            options=options,
            storage=storage,
        )
    except errors.InvalidTransition as exc:
        raise ApiError(422, exc.message) from exc
    return wire.asset_json(asset, base_url=runtime.base_url(str(request.base_url)))


@router.post("/data/export", status_code=201)
async def export_data(
    body: DataExportBody, request: Request, project: Project, runtime: RuntimeDep
) -> dict[str, Any]:
    """Put a JSON object on IPFS: an ``export-data`` task, 201 ``{"task": ...}``.

    Its output is ``{"exportData": {"ipfs": {"cid": ...}}}``; the document is compact JSON with
    sorted keys.  This endpoint is this service's:
    Studio creates ``export-data`` tasks only from ``POST /experiment/-/attestation``.
    """
    task = await export.export_document(
        runtime.store,
        runtime.settings,
        project_id=project,
        params=body.model_dump(by_alias=True, exclude_none=True),
    )
    return await _task_answer(runtime, request, task)
