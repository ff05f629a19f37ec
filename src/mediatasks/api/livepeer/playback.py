"""``GET /playback/{playbackId}``: where and how a player plays an asset, in Livepeer's
``playback-info`` shape.

``{"type": "vod", "meta": {"playbackPolicy", "source": [...]}}``: the static MP4s (largest
first, with size, width, height and bitrate), the HLS playlist, and the thumbnails when the
asset's media list them.  ``meta.playbackPolicy`` is the asset's (``null`` when it is public), so
that a player knows to send a token (``?jwt=``) or an access key (``?accessKey=``) with every
URL it fetches.  As in Studio, an asset that is not ready answers 422; an unknown playback id, or
another project's, 404.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from mediatasks import assets
from mediatasks.api.livepeer.auth import ApiError, Project, runtime_of
from mediatasks.api.runtime import Runtime

__all__ = ["playback_info_json", "router"]

router = APIRouter()
RuntimeDep = Annotated[Runtime, Depends(runtime_of)]

_HLS = {"hrn": "HLS (TS)", "type": "html5/application/vnd.apple.mpegurl"}
_MP4 = {"hrn": "MP4", "type": "html5/video/mp4"}
_THUMBNAILS = {"hrn": "Thumbnails", "type": "text/vtt"}
_THUMBNAIL = {"hrn": "Thumbnail (JPEG)", "type": "image/jpeg"}


def playback_info_json(asset: assets.Asset, *, base_url: str) -> dict[str, Any]:
    """A ready asset's playback info."""
    media = asset.media

    def url(key: str) -> str:
        return f"{base_url.rstrip('/')}/media/{key}"

    sources: list[dict[str, Any]] = []
    for mp4 in media.get("staticMp4s") or []:
        sources.append(
            {
                **_MP4,
                "url": url(mp4["key"]),
                **{k: mp4[k] for k in ("size", "width", "height", "bitrate") if k in mp4},
            }
        )
    if media.get("hls"):
        sources.append({**_HLS, "url": url(media["hls"])})
    thumbnails = media.get("thumbnails")
    if isinstance(thumbnails, str):
        thumbnails = {"vtt": thumbnails}
    if isinstance(thumbnails, Mapping):
        if thumbnails.get("vtt"):
            sources.append({**_THUMBNAILS, "url": url(thumbnails["vtt"])})
        images = thumbnails.get("images") or thumbnails.get("keyframes") or []
        if not images and thumbnails.get("first"):  # the upload handler records the first one
            images = [thumbnails["first"]]
        if images:
            sources.append({**_THUMBNAIL, "url": url(images[0])})
    policy = asset.options.get("playbackPolicy")
    return {"type": "vod", "meta": {"playbackPolicy": policy or None, "source": sources}}


@router.get("/playback/{playback_id}")
async def playback_info(
    playback_id: str, request: Request, project: Project, runtime: RuntimeDep
) -> dict[str, Any]:
    asset = await runtime.store.asset_by_playback_id(playback_id, project)
    if asset.phase is not assets.AssetPhase.READY:
        raise ApiError(422, "asset is not ready for playback")
    return playback_info_json(asset, base_url=runtime.base_url(str(request.base_url)))
