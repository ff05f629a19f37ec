"""``ipfs://`` and ``ar://`` URLs, read through the HTTP gateways that the settings name.

Livepeer accepts imports (and transcode inputs) from ``ipfs://<cid>[/path]`` and ``ar://<id>``.
This service fetches them over HTTP from ``Settings.ipfs_gateway_url`` (``<gateway>/ipfs/<cid>``)
and ``Settings.arweave_gateway_url`` (``<gateway>/<id>``): the gateway URL is what a task
downloads, checked like any other source URL, while the asset's ``source.url`` keeps the URL as
it was given and ``source.gatewayUrl`` says where it was read from.
"""

from __future__ import annotations

import re
import urllib.parse
from typing import Final

from mediatasks import errors
from mediatasks import settings as settings_module

__all__ = ["http_url", "is_gateway_scheme"]

#: A CID (base32 or base58) or an Arweave transaction id (base64url).
_CONTENT_ID: Final = re.compile(r"[A-Za-z0-9_-]{1,200}")
_SCHEMES: Final = ("ipfs://", "ar://")


def is_gateway_scheme(url: str) -> bool:
    """Whether ``url`` is read through a gateway (``ipfs://`` or ``ar://``)."""
    return url.lower().startswith(_SCHEMES)


def http_url(url: str, settings: settings_module.Settings) -> str:
    """The gateway URL that serves ``url``; ``url`` itself when it is already ``http(s)``.

    Raises ``errors.InvalidInput`` for an ``ipfs://`` or ``ar://`` URL without a valid content id.
    """
    if not is_gateway_scheme(url):
        return url
    scheme, _, rest = url.partition("://")
    content_id, slash, path = rest.partition("/")
    if not _CONTENT_ID.fullmatch(content_id):
        raise errors.InvalidInput(f"{scheme}:// URLs must name a content id: {scheme}://<id>")
    if any(part in (".", "..") for part in urllib.parse.unquote(path).split("/")):
        raise errors.InvalidInput(f"{scheme}:// paths must not hold . or .. segments")
    suffix = slash + urllib.parse.quote(urllib.parse.unquote(path), safe="/") if path else ""
    if scheme.lower() == "ipfs":
        return f"{settings.ipfs_gateway_url.rstrip('/')}/ipfs/{content_id}{suffix}"
    return f"{settings.arweave_gateway_url.rstrip('/')}/{content_id}{suffix}"
