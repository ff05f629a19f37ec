"""``export`` and ``export-data``: send an asset's file to a URL or to IPFS; put a document on IPFS.

``export`` reads the source file of its input asset from the blob store and either

* sends it to a **custom URL** (``{"custom": {"url", "method": "PUT"|"POST", "headers"}}``) as
  the raw request body.  The URL is checked like a source URL (``fetch.check_url`` and
  ``fetch.resolve_url``: private addresses are refused unless ``allow_private_urls``), and the
  request goes to the very address that was checked, with the original ``Host`` and TLS name.  A
  2xx answer completes the task with ``{"export": {}}``; a 3xx or a 4xx fails it at once (a
  redirect is not followed: the body would have to be sent again elsewhere), except 408, 425 and
  429, which like a 5xx, a timeout or a lost connection are retried;
* or puts it on **IPFS** (``{"ipfs": {...}}``): the file goes to the service that
  ``ipfs.pinning.pinner_for`` picks, its CID is computed on the way (``ipfs.cid``, exactly as
  ``ipfs add --cid-version=1``) and must equal the service's answer.  The output is Livepeer's
  ``{"export": {"ipfs": {"videoFileCid", "videoFileUrl": "ipfs://<cid>",
  "videoFileGatewayUrl": "<gateway>/ipfs/<cid>", "nftMetadataCid", "nftMetadataUrl",
  "nftMetadataGatewayUrl"}}}``: the NFT metadata document (``ipfs.nft``, from the
  ``nftMetadataTemplate`` with ``nftMetadata`` merged in) is pinned after the video, as Livepeer
  does.  With no IPFS service configured the task fails with a message that says so: a CID that
  no node serves is not an export.

``export-data`` puts its ``content`` on IPFS the same way: a string as its UTF-8 bytes, anything
else as compact JSON with sorted keys (stable whatever database kept the params; Go's
``json.Marshal`` of a map sorts them too).  Output: ``{"exportData": {"ipfs": {"cid"}}}``.

Progress: reading the file from a remote blob store is the first 10 %, sending the rest.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, BinaryIO, Final, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from mediatasks import assets, errors, fetch
from mediatasks import settings as settings_module
from mediatasks.ipfs import cid, nft, pinning
from mediatasks.worker import handler, outcome

__all__ = [
    "CustomTarget",
    "ExportDataHandler",
    "ExportDataParams",
    "ExportHandler",
    "ExportParams",
    "IpfsTarget",
    "document_bytes",
    "send_file",
]

#: Bytes read from the file per step while sending.
_READ_BYTES: Final = 1024 * 1024
#: Headers that the sender sets itself; a request's own values for them are ignored.
_OWN_HEADERS: Final = frozenset(
    {"host", "content-length", "transfer-encoding", "connection", "expect", "te", "upgrade"}
)

#: ``on_sent(bytes_sent)``, awaited as the body goes out.
SentFunc = Callable[[int], Awaitable[None]]


class _Params(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


class CustomTarget(_Params):
    """Where a custom export sends the file."""

    url: str
    method: Literal["PUT", "POST"] = "PUT"
    headers: dict[str, str] = Field(default_factory=dict)


class IpfsTarget(_Params):
    """Livepeer's IPFS export parameters; ``pinata`` holds a request's own Pinata credentials."""

    nft_metadata_template: Literal["file", "player"] | None = None
    nft_metadata: dict[str, Any] | None = None
    pinata: dict[str, Any] | None = None


class ExportParams(_Params):
    """The ``params.export`` of an export task: exactly one target."""

    custom: CustomTarget | None = None
    ipfs: IpfsTarget | None = None


class ExportDataParams(_Params):
    """The ``params.exportData`` of an export-data task."""

    content: Any
    ipfs: IpfsTarget = Field(default_factory=IpfsTarget)
    type: str | None = None
    id: str | None = None


def document_bytes(content: Any) -> bytes:
    """The bytes an export-data task puts on IPFS for ``content``."""
    if isinstance(content, str):
        return content.encode()
    return json.dumps(content, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()


class ExportHandler:
    """Sends an asset's source file to a custom URL or to IPFS."""

    async def run(self, ctx: handler.Context) -> outcome.Complete:
        params = ExportParams.model_validate(ctx.task.params)
        if params.custom is None and params.ipfs is None:
            raise errors.Unretriable("an export needs a custom or an ipfs target")
        asset = await _input_asset(ctx)
        source = await _source_file(ctx, asset)
        size_bytes = (await asyncio.to_thread(source.stat)).st_size
        on_sent = _sent_progress(ctx, size_bytes, start=0.1)
        if params.custom is not None:
            await send_file(params.custom, source, size_bytes, ctx.settings, on_sent=on_sent)
            await ctx.report_progress(1.0)
            return outcome.Complete(output={"export": {}})
        assert params.ipfs is not None
        found = await _put_on_ipfs(
            ctx.settings, params.ipfs, source, size_bytes, filename=asset.name, on_sent=on_sent
        )
        document = nft.document(
            nft.metadata(
                name=asset.name,
                playback_id=asset.playback_id,
                video_cid=found,
                template=params.ipfs.nft_metadata_template,
                overrides=params.ipfs.nft_metadata,
                player_url=ctx.settings.nft_player_url,
            )
        )
        path = ctx.workdir / "nft-metadata.json"
        await asyncio.to_thread(path.write_bytes, document)
        metadata_cid = await _put_on_ipfs(
            ctx.settings,
            params.ipfs,
            path,
            len(document),
            filename=f"metadata-{asset.playback_id}",
            on_sent=_no_progress,
        )
        await ctx.report_progress(1.0)
        gateway = ctx.settings.ipfs_gateway_url.rstrip("/")
        return outcome.Complete(
            output={
                "export": {
                    "ipfs": {
                        "videoFileCid": found,
                        "videoFileUrl": f"ipfs://{found}",
                        "videoFileGatewayUrl": f"{gateway}/ipfs/{found}",
                        "nftMetadataCid": metadata_cid,
                        "nftMetadataUrl": f"ipfs://{metadata_cid}",
                        "nftMetadataGatewayUrl": f"{gateway}/ipfs/{metadata_cid}",
                    }
                }
            }
        )


class ExportDataHandler:
    """Puts a JSON or text document on IPFS."""

    async def run(self, ctx: handler.Context) -> outcome.Complete:
        params = ExportDataParams.model_validate(ctx.task.params)
        path = ctx.workdir / "document"
        data = document_bytes(params.content)
        await asyncio.to_thread(path.write_bytes, data)
        found = await _put_on_ipfs(
            ctx.settings,
            params.ipfs,
            path,
            len(data),
            filename=params.id or "document",
            on_sent=_sent_progress(ctx, len(data), start=0.0),
        )
        await ctx.report_progress(1.0)
        return outcome.Complete(output={"exportData": {"ipfs": {"cid": found}}})


# -- reading the input ---------------------------------------------------------------------------


async def _input_asset(ctx: handler.Context) -> assets.Asset:
    if ctx.task.input_asset_id is None:
        raise errors.Unretriable("the export task names no asset")
    try:
        return await ctx.store.get_asset(ctx.task.input_asset_id)
    except errors.NotFound as exc:
        raise errors.Unretriable("the asset to export has been deleted") from exc


async def _source_file(ctx: handler.Context, asset: assets.Asset) -> Path:
    """The asset's source file on local disk: the blob store's own file, or a copy of it."""
    key = asset.media.get("source")
    if not isinstance(key, str) or not key:
        raise errors.Unretriable("the asset has no source file to export")
    local = ctx.blobs.local_path(key)
    if local is not None and await asyncio.to_thread(local.is_file):
        return local
    dest = ctx.workdir / "source"
    try:
        await ctx.blobs.get_file(key, dest)
    except errors.NotFound as exc:
        raise errors.Unretriable("the asset's source file is missing") from exc
    await ctx.report_progress(0.1)
    return dest


async def _no_progress(sent_bytes: int) -> None:
    """The metadata document is small: its sending reports no progress of its own."""


def _sent_progress(ctx: handler.Context, size_bytes: int, *, start: float) -> SentFunc:
    span = ctx.progress_span(start, 0.99)

    async def report(sent_bytes: int) -> None:
        await span(sent_bytes / size_bytes if size_bytes else 1.0)

    return report


def _read_block(file: BinaryIO, hasher: cid.FileCid | None) -> bytes:
    block = file.read(_READ_BYTES)
    if hasher is not None and block:
        hasher.update(block)
    return block


async def _file_chunks(
    path: Path, on_sent: SentFunc | None, hasher: cid.FileCid | None = None
) -> AsyncIterator[bytes]:
    """The file's bytes, read in a thread (and hashed there when ``hasher`` is given)."""
    sent_bytes = 0
    file = await asyncio.to_thread(path.open, "rb")
    try:
        while block := await asyncio.to_thread(_read_block, file, hasher):
            sent_bytes += len(block)
            yield block
            if on_sent is not None:
                await on_sent(sent_bytes)
    finally:
        file.close()


# -- IPFS ----------------------------------------------------------------------------------------


async def _put_on_ipfs(
    settings: settings_module.Settings,
    target: IpfsTarget,
    path: Path,
    size_bytes: int,
    *,
    filename: str,
    on_sent: SentFunc,
) -> str:
    """Send the file to the IPFS service, hashing it on the way; return the checked CID."""
    pinner = pinning.pinner_for(settings, target.pinata)
    if pinner is None:
        raise errors.Unretriable(pinning.not_configured_message())
    hasher = cid.FileCid()
    answered = await pinner.add(
        _file_chunks(path, on_sent, hasher), size_bytes=size_bytes, filename=filename
    )
    if hasher.size_bytes != size_bytes:
        raise errors.TaskFailure(
            f"{pinner.name} answered before the whole file was sent "
            f"({hasher.size_bytes} of {size_bytes} bytes)"
        )
    computed = hasher.cid()
    pinning.check_cid(pinner.name, answered, computed)
    return computed


# -- a custom URL --------------------------------------------------------------------------------


async def send_file(
    target: CustomTarget,
    path: Path,
    size_bytes: int,
    settings: settings_module.Settings,
    *,
    on_sent: SentFunc | None = None,
) -> None:
    """Send the file at ``path`` as the body of ``target.method target.url``."""
    allow = settings.allow_private_urls
    timeout_s = settings.export_timeout_s
    shown = fetch.redact_url(target.url)
    service = f"the export target {shown}"
    try:
        fetch.check_url(target.url, allow_private=allow)
        addresses = await fetch.resolve_url(target.url, allow_private=allow, timeout_s=timeout_s)
    except errors.UnsafeURL as exc:
        raise errors.Unretriable(f"export url refused: {exc.message}") from exc
    except errors.SourceUnavailable as exc:
        raise errors.TaskFailure(
            f"could not resolve the host of {shown}", detail=exc.message
        ) from exc
    url = httpx.URL(target.url)
    headers = _headers(target.headers, url, size_bytes)
    extensions = {"sni_hostname": url.raw_host.decode("ascii")} if url.scheme == "https" else {}
    async with httpx.AsyncClient(
        timeout=httpx.Timeout(timeout_s), follow_redirects=False, trust_env=False
    ) as client:
        response = None
        failure: Exception | None = None
        for address in addresses:
            request = client.build_request(
                target.method,
                url.copy_with(host=str(address)),
                headers=headers,
                content=_file_chunks(path, on_sent),
                extensions=extensions,
            )
            try:
                response = await client.send(request)
                break
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                failure = exc
            except httpx.TimeoutException as exc:
                raise errors.TaskFailure(
                    f"{service} did not answer within {timeout_s:g} s", detail=repr(exc)
                ) from exc
            except httpx.TransportError as exc:
                raise errors.TaskFailure(
                    f"the connection to {service} was lost", detail=repr(exc)
                ) from exc
        if response is None:
            raise errors.TaskFailure(f"could not connect to {service}", detail=repr(failure))
    _check_answer(service, response)


def _headers(given: Mapping[str, str], url: httpx.URL, size_bytes: int) -> dict[str, str]:
    headers = {name: value for name, value in given.items() if name.lower() not in _OWN_HEADERS}
    if not any(name.lower() == "content-type" for name in headers):
        headers["Content-Type"] = "application/octet-stream"
    headers["Host"] = url.netloc.decode("ascii")
    headers["Content-Length"] = str(size_bytes)
    return headers


def _check_answer(service: str, response: httpx.Response) -> None:
    status = response.status_code
    if response.is_success:
        return
    if 300 <= status < 400:
        raise errors.Unretriable(
            f"{service} answered {status} {httpx.codes.get_reason_phrase(status)}; "
            "redirects are not followed",
            detail=response.headers.get("Location"),
        )
    raise pinning.describe_failure(service, response)
