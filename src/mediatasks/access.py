"""Who may play an asset: Livepeer's playback policies, signing keys and playback tokens.

An asset's ``playbackPolicy`` decides who may fetch its media (playlists, segments, MP4s, its
source file):

* ``public`` (or none): anyone with the playback id.
* ``jwt``: a JSON Web Token signed (ES256) with one of the project's signing keys that is not
  disabled, whose ``sub`` is the playback id and whose ``exp`` is at most seven days away (the
  limit Livepeer's playback servers apply).  The token carries the signing key's public half in
  its ``pub`` claim, as Livepeer's SDKs write it; a token without ``pub`` is tried against each of
  the project's keys.  It arrives as ``?jwt=`` or in the ``Livepeer-Jwt`` header.
* ``webhook``: the viewer's access key (``?accessKey=`` or ``Livepeer-Access-Key``) is sent to the
  policy's webhook as Livepeer does, ``POST {"context", "accessKey", "timestamp"}`` (signed with
  ``Livepeer-Signature`` when the webhook has a shared secret), and only a 2xx answer plays.  An
  allowed key is remembered for the policy's ``refreshInterval`` (600 s by default), so that a
  player fetching segments does not call the webhook for each one.

Every file is checked, not only the master playlist, and the playlists served to a viewer carry
the viewer's credential in the URIs they name (:func:`carry`): players fetch the renditions and
segments with it, whether or not they could send headers (Safari's native player cannot).
A token is checked on every request, so a key that is disabled or deleted stops playback at
once, and a token must outlast the viewing it is made for.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import json
import logging
import re
import time
import urllib.parse
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from mediatasks import assets, errors, fetch, taskstore
from mediatasks import settings as settings_module
from mediatasks.webhooks import message

__all__ = [
    "MAX_TOKEN_LIFETIME",
    "Credentials",
    "Gate",
    "carry",
    "new_key_pair",
    "policy_type",
]

log = logging.getLogger(__name__)

#: The furthest in the future a playback token may expire.
MAX_TOKEN_LIFETIME: Final = timedelta(days=7)
_ALGORITHM: Final = "ES256"
#: How often a signing key's ``lastSeen`` is written, at most (per process).
_SEEN_EVERY_S: Final = 60.0
#: Allowed access keys remembered at most (per process); older ones are asked about again.
_MAX_REMEMBERED: Final = 10_000


def new_key_pair() -> tuple[str, str]:
    """A new ES256 (P-256) key pair as Livepeer hands it out: Base64 of the SPKI PEM of the
    public key, and Base64 of the PKCS #8 PEM of the private key."""
    private = ec.generate_private_key(ec.SECP256R1())
    private_pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(public_pem).decode(), base64.b64encode(private_pem).decode()


def policy_type(asset: assets.Asset) -> str:
    """``public``, ``jwt`` or ``webhook``: the asset's playback policy (public without one)."""
    policy = asset.options.get("playbackPolicy")
    kind = policy.get("type") if isinstance(policy, Mapping) else None
    return str(kind) if kind else "public"


def allowed_origin(asset: assets.Asset, origin: str) -> str:
    """The ``Access-Control-Allow-Origin`` that a request from ``origin`` gets for the asset's
    media: ``*`` when its policy names no ``allowedOrigins``, ``origin`` when they name it, and
    nothing for a request without an ``Origin`` (not a browser's cross-origin request).  Raises
    ``errors.AccessDenied`` for an origin that they leave out."""
    policy = asset.options.get("playbackPolicy")
    listed = policy.get("allowedOrigins") if isinstance(policy, Mapping) else None
    if not listed:
        return "*"
    if not origin:
        return ""
    if origin.rstrip("/").lower() in {str(item).rstrip("/").lower() for item in listed}:
        return origin
    raise errors.AccessDenied("this asset plays only on the origins that its playback policy lists")


@dataclasses.dataclass(frozen=True, kw_only=True)
class Credentials:
    """What a viewer showed: a playback token, an access key, or nothing."""

    jwt: str = ""
    access_key: str = ""

    def __bool__(self) -> bool:
        return bool(self.jwt or self.access_key)

    def query(self) -> dict[str, str]:
        """The query parameters that carry these credentials in a URL."""
        found = {"jwt": self.jwt, "accessKey": self.access_key}
        return {name: value for name, value in found.items() if value}


class Gate:
    """Decides whether a viewer may fetch an asset's media; one per process."""

    def __init__(self, settings: settings_module.Settings, store: taskstore.TaskStore) -> None:
        self.settings = settings
        self.store = store
        #: ``(playback id, webhook id, hash of access key)`` -> monotonic time it is allowed until.
        self._allowed: dict[tuple[str, str, str], float] = {}
        #: signing key id -> monotonic time its ``lastSeen`` was last written.
        self._seen: dict[str, float] = {}

    async def check(self, asset: assets.Asset, credentials: Credentials) -> None:
        """Return if ``credentials`` may play ``asset``; raise ``errors.AccessDenied`` if not."""
        kind = policy_type(asset)
        if kind == "public":
            return
        if kind == "jwt":
            if not credentials.jwt:
                raise errors.AccessDenied("this asset needs a playback token (jwt)")
            await self._check_token(asset, credentials.jwt)
            return
        if kind == "webhook":
            if not credentials.access_key:
                raise errors.AccessDenied("this asset needs an access key (accessKey)")
            await self._ask_webhook(asset, credentials.access_key)
            return
        raise errors.AccessDenied(f"unknown playback policy {kind!r}")

    # -- jwt ------------------------------------------------------------------------------------
    async def _check_token(self, asset: assets.Asset, token: str) -> None:
        try:
            claims = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            raise errors.AccessDenied("the playback token is not a valid JWT") from exc
        keys = await self.store.list_signing_keys(asset.project_id)
        pub = claims.get("pub")
        if pub is not None and not (isinstance(pub, str) and pub):
            raise errors.AccessDenied("the playback token's pub claim is not a public key")
        if pub:
            keys = [key for key in keys if key.public_key == pub]
            if not keys:
                raise errors.AccessDenied(
                    "the playback token is not signed by a signing key of this asset's project"
                )
        enabled = [key for key in keys if not key.disabled]
        if keys and not enabled:
            raise errors.AccessDenied("the playback token's signing key is disabled")
        for key in enabled:
            verified = _verify(token, key.public_key)
            if verified is None:
                continue
            _check_claims(verified, asset.playback_id)
            await self._seen_now(key)
            return
        raise errors.AccessDenied(
            "the playback token is not signed by a signing key of this asset's project"
        )

    async def _seen_now(self, key: taskstore.SigningKey) -> None:
        now = time.monotonic()
        if now - self._seen.get(key.id, -_SEEN_EVERY_S) < _SEEN_EVERY_S:
            return
        self._seen[key.id] = now
        try:
            await self.store.signing_key_seen(key.id)
        except errors.MediaTasksError as exc:  # a bookkeeping write never stops playback
            log.warning("could not record the use of signing key %s: %s", key.id, exc)

    # -- webhook --------------------------------------------------------------------------------
    async def _ask_webhook(self, asset: assets.Asset, access_key: str) -> None:
        policy = asset.options.get("playbackPolicy") or {}
        webhook_id = str(policy.get("webhookId") or "")
        digest = hashlib.sha256(access_key.encode()).hexdigest()
        remembered = (asset.playback_id, webhook_id, digest)
        now = time.monotonic()
        if self._allowed.get(remembered, 0.0) > now:
            return
        try:
            hook = await self.store.get_webhook(webhook_id, asset.project_id)
        except errors.NotFound as exc:
            raise errors.AccessDenied("the asset's playback webhook does not exist") from exc
        timestamp_ms = int(datetime.now(UTC).timestamp() * 1000)
        body = {
            "context": policy.get("webhookContext"),
            "accessKey": access_key,
            "timestamp": timestamp_ms,
        }
        raw = json.dumps(body, separators=(",", ":")).encode()
        headers = {"content-type": "application/json", "user-agent": "mediatasks"}
        if hook.shared_secret:
            headers["Livepeer-Signature"] = message.signature_header(
                hook.shared_secret, raw, timestamp_ms
            )
        timeout_s = self.settings.playback_webhook_timeout_s
        try:
            await fetch.resolve_url(
                hook.url, allow_private=self.settings.allow_private_urls, timeout_s=timeout_s
            )
            async with httpx.AsyncClient(
                timeout=timeout_s, follow_redirects=False, trust_env=False
            ) as client:
                answer = await client.post(hook.url, content=raw, headers=headers)
        except (errors.MediaTasksError, httpx.HTTPError) as exc:
            log.info("playback webhook %s of asset %s failed: %r", hook.id, asset.id, exc)
            raise errors.AccessDenied("the asset's playback webhook could not be reached") from exc
        if not 200 <= answer.status_code < 300:
            raise errors.AccessDenied(
                f"the asset's playback webhook refused this access key ({answer.status_code})"
            )
        refresh_s = policy.get("refreshInterval") or self.settings.playback_refresh_interval_s
        if len(self._allowed) >= _MAX_REMEMBERED:
            self._allowed = {k: until for k, until in self._allowed.items() if until > now}
            if len(self._allowed) >= _MAX_REMEMBERED:
                self._allowed.clear()
        self._allowed[remembered] = now + float(refresh_s)


def _verify(token: str, public_key: str) -> dict[str, Any] | None:
    """The claims of ``token`` if ``public_key`` signed it (``None`` if it did not)."""
    try:
        pem = base64.b64decode(public_key, validate=True)
        key = serialization.load_pem_public_key(pem)
    except (binascii.Error, ValueError):
        return None
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key=key,  # type: ignore[arg-type]
            algorithms=[_ALGORITHM],
            options={"require": ["exp", "sub"], "verify_aud": False},
        )
    except jwt.InvalidSignatureError:
        return None
    except jwt.ExpiredSignatureError as exc:
        raise errors.AccessDenied("the playback token has expired") from exc
    except jwt.PyJWTError as exc:
        raise errors.AccessDenied(f"the playback token is not valid: {exc}") from exc
    return claims


def _check_claims(claims: Mapping[str, Any], playback_id: str) -> None:
    if claims.get("sub") != playback_id:
        raise errors.AccessDenied("the playback token is for another playback id")
    # PyJWT checked that ``exp`` is a number and not past; compared as numbers, a huge one
    # cannot overflow a datetime.
    if float(claims["exp"]) - time.time() > MAX_TOKEN_LIFETIME.total_seconds():
        raise errors.AccessDenied("the playback token expires more than 7 days from now")


#: ``URI="..."`` attributes of playlist tags (media, keys, init sections, i-frame playlists).
_URI_ATTRIBUTE: Final = re.compile(r'URI="([^"]*)"')


def _with_params(uri: str, params: Mapping[str, str]) -> str:
    """A relative ``uri`` with ``params`` in its query (its fragment kept); others unchanged."""
    parts = urllib.parse.urlsplit(uri)
    if parts.scheme or parts.netloc or not uri:
        return uri
    kept = [
        (name, value)
        for name, value in urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
        if name not in params
    ]
    query = urllib.parse.urlencode([*kept, *params.items()])
    return urllib.parse.urlunsplit(parts._replace(query=query))


def carry(playlist: str, params: Mapping[str, str]) -> str:
    """``playlist`` (HLS) with ``params`` added to the query of every relative URI it names.

    Absolute URIs are left alone: a viewer's token never goes to another host.
    """
    if not params:
        return playlist
    lines = []
    for line in playlist.splitlines(keepends=True):
        body = line.rstrip("\r\n")
        ending = line[len(body) :]
        if body.startswith("#"):
            body = _URI_ATTRIBUTE.sub(lambda found: f'URI="{_with_params(found[1], params)}"', body)
        elif body.strip():
            body = _with_params(body.strip(), params)
        lines.append(body + ending)
    return "".join(lines)


def carry_vtt(vtt: str, params: Mapping[str, str]) -> str:
    """A thumbnails or storyboard WebVTT whose cues' image URIs carry ``params``, as ``carry``
    does for playlists (``#xywh=`` fragments kept)."""
    if not params:
        return vtt
    lines = []
    in_cue = False
    for line in vtt.splitlines(keepends=True):
        body = line.rstrip("\r\n")
        ending = line[len(body) :]
        if "-->" in body:
            in_cue = True
        elif not body.strip():
            in_cue = False
        elif in_cue:
            body = _with_params(body.strip(), params)
        lines.append(body + ending)
    return "".join(lines)
