"""``POST /transcode``: a ``transcode-file`` task that writes into the caller's own bucket.

The request is Livepeer's ``transcode-payload`` (reference §3.3); the answer is 200 with the task,
which the official SDK exposes as ``.task``.  The task's params are stored as Studio stores them
(§5.1): S3 locations become object store URLs, ``s3+https://KEY:SECRET@host/bucket/path``, and
every answer shows them with the credentials masked (``***``).

What this service does not do is refused here, with a 422 that says so, rather than accepted and
failed later: ``web3.storage`` outputs and C2PA signing.  ``ipfs://`` and ``ar://`` inputs are read
through the configured gateways (``ipfs.gateway``).
Endpoints are checked like source URLs (:func:`mediatasks.fetch.check_url`): one that points at a
private address is refused unless ``allow_private_urls`` is set.
"""

from __future__ import annotations

import re
import urllib.parse
from typing import Annotated, Any, Final, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import Field

from mediatasks import errors, fetch, tasks, taskstore
from mediatasks import settings as settings_module
from mediatasks.api.livepeer import schemas, views
from mediatasks.api.livepeer.auth import Project, runtime_of
from mediatasks.api.runtime import Runtime
from mediatasks.blobstore import base
from mediatasks.ipfs import gateway
from mediatasks.media import limits

__all__ = ["TranscodeRequest", "router", "transcode_params"]

router = APIRouter()
RuntimeDep = Annotated[Runtime, Depends(runtime_of)]

#: S3 bucket names: 3 to 63 characters (some services allow up to 255, capitals and ``_``).
_BUCKET: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{1,254}")
#: What ``encodeURIComponent`` leaves alone, besides letters, digits and ``-_.``.
_URI_COMPONENT_SAFE: Final = "!~*'()"


class S3Credentials(schemas.Body):
    """An access key pair."""

    access_key_id: str = Field(min_length=1)
    secret_access_key: str = Field(min_length=1)


class UrlInput(schemas.Body):
    """A file to fetch by URL."""

    url: str = Field(pattern=r"^(https?|ipfs|ar)://")


class S3Input(schemas.Body):
    """An object in an S3-compatible bucket."""

    type: Literal["s3"]
    endpoint: str = Field(min_length=1)
    bucket: str = Field(min_length=1)
    path: str = Field(min_length=1)
    credentials: S3Credentials


class S3Storage(schemas.Body):
    """An S3-compatible bucket for the outputs."""

    type: Literal["s3"]
    endpoint: str = Field(min_length=1)
    bucket: str = Field(min_length=1)
    credentials: S3Credentials


class Web3Proof(schemas.Body):
    """A UCAN delegation proof."""

    proof: str


class Web3Storage(schemas.Body):
    """web3.storage: accepted by the schema, refused by this service."""

    type: Literal["web3.storage"]
    credentials: Web3Proof


class CreatorId(schemas.Body):
    """Who made the video, as the SDK sends it (a bare string is accepted too)."""

    type: Literal["unverified"]
    value: str


class OutputPath(schemas.Body):
    """Where one output format goes in the bucket."""

    path: str = Field(min_length=1)


class Outputs(schemas.Body):
    """The formats to write; at least one."""

    hls: OutputPath | None = None
    mp4: OutputPath | None = None
    fmp4: OutputPath | None = None


class TranscodeRequest(schemas.Body):
    """Livepeer's ``transcode-payload``."""

    input: UrlInput | S3Input
    storage: Annotated[S3Storage | Web3Storage, Field(discriminator="type")]
    outputs: Outputs
    profiles: list[schemas.TranscodeProfile] | None = None
    target_segment_size_secs: float | None = Field(default=None, ge=0)
    creator_id: str | CreatorId | None = None
    c2pa: bool | None = None


def transcode_params(body: TranscodeRequest, settings: settings_module.Settings) -> dict[str, Any]:
    """The task's params for a request (§5.1), or ``errors.InvalidInput`` for what is refused."""
    allow_private = settings.allow_private_urls
    if isinstance(body.storage, Web3Storage):
        raise errors.InvalidInput(
            "web3.storage outputs are not supported by this service: use an S3-compatible storage"
        )
    if body.c2pa:
        raise errors.InvalidInput("C2PA signing is not supported by this service")
    outputs: dict[str, dict[str, str]] = {}
    for name in ("hls", "mp4", "fmp4"):
        output: OutputPath | None = getattr(body.outputs, name)
        if output is not None:
            outputs[name] = {"path": _output_path(name, output.path)}
    if not outputs:
        raise errors.InvalidInput("outputs must name at least one of hls, mp4 or fmp4")
    if body.profiles is not None and not body.profiles:
        raise errors.InvalidInput("no transcode profiles could be resolved")
    if body.profiles is not None:
        limits.check_profiles(
            [p.model_dump(by_alias=True, exclude_none=True) for p in body.profiles],
            limits.profile_limits(settings),
        )

    source: str
    if isinstance(body.input, S3Input):
        key = body.input.path.lstrip("/")
        try:
            base.check_key(key)
        except errors.InvalidInput as exc:
            raise errors.InvalidInput(f"input.path is not a valid object path: {exc}") from exc
        source = _object_store_url(
            body.input.endpoint,
            body.input.credentials,
            body.input.bucket,
            "/" + key,
            allow_private=allow_private,
            field="input",
        )
    else:
        source = gateway.http_url(body.input.url, settings)  # ipfs:// and ar:// via gateways
        fetch.check_url(source, allow_private=allow_private)
    storage = _object_store_url(
        body.storage.endpoint,
        body.storage.credentials,
        body.storage.bucket,
        "",
        allow_private=allow_private,
        field="storage",
    )

    params: dict[str, Any] = {"input": {"url": source}, "storage": {"url": storage}}
    params["outputs"] = outputs
    if body.profiles is not None:
        params["profiles"] = [
            profile.model_dump(by_alias=True, exclude_none=True) for profile in body.profiles
        ]
    if isinstance(body.creator_id, CreatorId):
        params["creatorId"] = body.creator_id.model_dump()
    elif body.creator_id is not None:
        params["creatorId"] = body.creator_id
    for key, value in (
        ("targetSegmentSizeSecs", body.target_segment_size_secs),
        ("c2pa", body.c2pa),
    ):
        if value is not None:
            params[key] = value
    return params


@router.post("/transcode")
async def create_transcode(
    body: TranscodeRequest, request: Request, project: Project, runtime: RuntimeDep
) -> dict[str, Any]:
    """Schedule a ``transcode-file`` task; answer 200 with it (Studio's code, the SDK's too)."""
    params = transcode_params(body, runtime.settings)
    task = await runtime.store.create_task(
        taskstore.NewTask(
            project_id=project,
            type=tasks.TaskType.TRANSCODE_FILE,
            params=params,
            max_retries=runtime.settings.max_retries,
        )
    )
    return await views.render_task(runtime, task, runtime.base_url(str(request.base_url)))


def _output_path(name: str, path: str) -> str:
    """A leading ``/`` added (as Studio does), a valid folder below it."""
    try:
        base.check_prefix(path.strip("/"))
    except errors.InvalidInput as exc:
        raise errors.InvalidInput(f"outputs.{name}.path is not a valid path: {exc}") from exc
    return path if path.startswith("/") else "/" + path


def _object_store_url(
    endpoint: str,
    credentials: S3Credentials,
    bucket: str,
    path: str,
    *,
    allow_private: bool,
    field: str,
) -> str:
    """Studio's ``toObjectStoreUrl``: ``s3+<scheme>://KEY:SECRET@<host>/<bucket><path>``."""
    try:
        fetch.check_url(endpoint, allow_private=allow_private)
    except errors.UnsafeURL as exc:
        raise errors.UnsafeURL(f"{field}.endpoint: {exc.message}") from exc
    parts = urllib.parse.urlsplit(endpoint)
    if "@" in parts.netloc:
        raise errors.InvalidInput(f"{field}.endpoint must not hold credentials")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise errors.InvalidInput(f"{field}.endpoint must be a scheme and a host, with no path")
    if not _BUCKET.fullmatch(bucket):
        raise errors.InvalidInput(f"{field}.bucket is not a valid bucket name")
    key = urllib.parse.quote(credentials.access_key_id, safe=_URI_COMPONENT_SAFE)
    secret = urllib.parse.quote(credentials.secret_access_key, safe=_URI_COMPONENT_SAFE)
    scheme = parts.scheme.lower()
    return f"s3+{scheme}://{key}:{secret}@{parts.netloc}/{bucket}{urllib.parse.quote(path)}"
