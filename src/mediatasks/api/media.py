"""``/media``: an asset's published media (HLS playlists and segments, MP4s, its source file).

Only the media of a live asset that is ``ready`` are served, and only as its playback policy
allows (``mediatasks.access``); everything else in the blob store (uploads in progress, scores,
exports, the media of a failed or deleted asset) answers 404.  ``GET`` and ``HEAD`` take range
requests.  Playlists served to a viewer who showed a token or an access key name their
renditions and segments with it, so players carry it on.  Answers carry CORS headers, so that
players on other sites can play: for any origin, or only for the ``allowedOrigins`` that the
asset's playback policy lists.

From a local blob store the file is served as it is; from a bucket a copy is fetched for each
answer, so that ranges work and playlists keep their relative links to this service.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path, PurePosixPath
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse, Response

from mediatasks import access, assets, errors
from mediatasks.api import blobfile
from mediatasks.api.runtime import Runtime
from mediatasks.blobstore import base as blobstore

__all__ = ["CONTENT_TYPES", "create_media_router"]

#: Media types by file extension; anything else is ``application/octet-stream``.
CONTENT_TYPES = {
    ".m3u8": "application/vnd.apple.mpegurl",
    ".ts": "video/mp2t",
    ".mp4": "video/mp4",
    ".m4s": "video/iso.segment",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".vtt": "text/vtt",
}
#: Text files that name other media: a gated asset's viewer's credentials go into their links.
_CARRIERS = {".m3u8": access.carry, ".vtt": access.carry_vtt}


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"errors": [message]}, status_code=status, headers=headers)


def create_media_router(runtime: Runtime) -> APIRouter:
    """The ``/media`` routes over the runtime's stores."""
    router = APIRouter()
    gate = access.Gate(runtime.settings, runtime.store)

    @router.api_route("/media/{key:path}", methods=["GET", "HEAD"], include_in_schema=False)
    async def media(
        key: str,
        request: Request,
        jwt: Annotated[str, Query()] = "",
        access_key: Annotated[str, Query(alias="accessKey")] = "",
        livepeer_jwt: Annotated[str, Header()] = "",
        livepeer_access_key: Annotated[str, Header()] = "",
        origin: Annotated[str, Header()] = "",
    ) -> Response:
        not_found = _error(404, "not found")
        parts = key.split("/")
        if len(parts) < 3 or parts[0] != "asset":  # scores and exports are not public media
            return not_found
        try:
            blobstore.check_key(key)
            asset = await runtime.store.playback_asset(parts[1])
        except (errors.InvalidInput, errors.NotFound):
            return not_found
        except errors.Unavailable as exc:
            return _error(503, exc.message)
        if asset.phase is not assets.AssetPhase.READY:
            return not_found
        try:
            headers = _cors(access.allowed_origin(asset, origin))
        except errors.AccessDenied as exc:
            return _error(403, exc.message)
        credentials = access.Credentials(
            jwt=jwt or livepeer_jwt, access_key=access_key or livepeer_access_key
        )
        try:
            await gate.check(asset, credentials)
        except errors.AccessDenied as exc:
            return _error(403 if credentials else 401, exc.message, headers)
        except errors.Unavailable as exc:
            return _error(503, exc.message, headers)
        gated = access.policy_type(asset) != "public"
        suffix = PurePosixPath(key).suffix
        media_type = CONTENT_TYPES.get(suffix, "application/octet-stream")
        if gated:
            headers["Cache-Control"] = "private, no-store"
        if suffix in _CARRIERS and credentials and gated:
            head = request.method == "HEAD"
            return await _carried(runtime, key, suffix, credentials, headers, head=head)
        return await _file(runtime, key, media_type, headers)

    @router.options("/media/{key:path}", include_in_schema=False)
    async def preflight(origin: Annotated[str, Header()] = "") -> Response:
        """A browser's CORS preflight: players may send the credential headers and ranges.  The
        request that follows is checked against the asset's ``allowedOrigins``."""
        headers = {
            **_cors(origin or "*"),
            "Access-Control-Allow-Methods": "GET, HEAD",
            "Access-Control-Allow-Headers": "Range, Livepeer-Jwt, Livepeer-Access-Key",
            "Access-Control-Max-Age": "600",
        }
        return Response(status_code=204, headers=headers)

    return router


def _cors(allowed: str) -> dict[str, str]:
    """CORS headers that let a page on ``allowed`` (``*``: any) read the answer."""
    if not allowed:
        return {}
    headers = {
        "Access-Control-Allow-Origin": allowed,
        "Access-Control-Expose-Headers": "Content-Length, Content-Range, Accept-Ranges",
    }
    if allowed != "*":
        headers["Vary"] = "Origin"
    return headers


async def _file(runtime: Runtime, key: str, media_type: str, headers: dict[str, str]) -> Response:
    """The stored file ``key`` (with ranges), or 404."""
    try:
        return await blobfile.blob_response(runtime.blobs, key, media_type, headers)
    except errors.NotFound:
        return _error(404, "not found")
    except errors.Unavailable as exc:
        return _error(503, exc.message)


async def _carried(
    runtime: Runtime,
    key: str,
    suffix: str,
    credentials: access.Credentials,
    headers: dict[str, str],
    *,
    head: bool,
) -> Response:
    """A playlist or WebVTT whose links carry the viewer's credentials (``HEAD`` gets the same
    headers)."""
    with tempfile.TemporaryDirectory(prefix="mediatasks-media-") as folder:
        copy = Path(folder) / "playlist"
        path = runtime.blobs.local_path(key)
        try:
            if path is None:
                await runtime.blobs.get_file(key, copy)
                path = copy
            text = await asyncio.to_thread(path.read_text, "utf-8")
        except (errors.NotFound, FileNotFoundError, IsADirectoryError):
            return _error(404, "not found")
        except errors.Unavailable as exc:
            return _error(503, exc.message)
    body = _CARRIERS[suffix](text, credentials.query()).encode()
    if head:
        headers = {**headers, "Content-Length": str(len(body))}
        body = b""
    return Response(body, media_type=CONTENT_TYPES[suffix], headers=headers)
