"""The NFT metadata that an export to IPFS pins beside the video, as Livepeer makes it.

Two templates (``ipfs.nftMetadataTemplate``): ``file`` (the default) points at the immutable
video file only; ``player`` also embeds a player for the asset's playback id (``animation_url``)
and links to it (``external_url``).  ``ipfs.nftMetadata`` is deep-merged over the template: an
object merges into an object, any other value replaces, and ``null`` removes the key.  This is
Livepeer's task-runner ``nftMetadata`` and ``mergeJson``, field for field.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Mapping
from typing import Any, Final, Literal

__all__ = ["IMAGE_URL", "document", "merge", "metadata"]

#: The image of every NFT that Livepeer exports (its logo, pinned on IPFS).
IMAGE_URL: Final = "ipfs://bafkreidmlgpjoxgvefhid2xjyqjnpmjjmq47yyrcm6ifvoovclty7sm4wm"


def _player_url(player_url: str, playback_id: str, *, loop: bool) -> str:
    parts = urllib.parse.urlsplit(player_url)
    query = dict(urllib.parse.parse_qsl(parts.query))
    if loop:
        query["loop"] = "1"
    query["v"] = playback_id
    encoded = urllib.parse.urlencode(sorted(query.items()))
    return urllib.parse.urlunsplit(parts._replace(query=encoded))


def merge(target: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Deep-merge ``overrides`` into ``target`` (in place, and returned)."""
    for key, value in overrides.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(target.get(key), dict):
            merge(target[key], value)
        else:
            target[key] = value
    return target


def metadata(
    *,
    name: str,
    playback_id: str,
    video_cid: str,
    template: Literal["file", "player"] | None,
    overrides: Mapping[str, Any] | None,
    player_url: str,
) -> dict[str, Any]:
    """The metadata document of an exported video."""
    video_url = f"ipfs://{video_cid}"
    found: dict[str, Any] = {
        "name": name,
        "description": f"Livepeer video from asset {json.dumps(name, ensure_ascii=False)}",
        "image": IMAGE_URL,
        "animation_url": video_url,
        "properties": {"video": video_url},
    }
    if template == "player":
        found["animation_url"] = _player_url(player_url, playback_id, loop=True)
        found["external_url"] = _player_url(player_url, playback_id, loop=False)
        found["properties"]["com.livepeer.playbackId"] = playback_id
    return merge(found, overrides or {})


def document(found: Mapping[str, Any]) -> bytes:
    """The bytes pinned for a metadata document: compact JSON, keys sorted (Go's encoding)."""
    return json.dumps(found, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()
