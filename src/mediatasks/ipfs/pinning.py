"""Putting a file on IPFS through a service, and checking that it stored what we computed.

Two services are supported:

* a **kubo RPC API** (``Settings.ipfs_api_url``): ``POST /api/v0/add`` with the import settings
  spelled out (``cid-version=1``, ``raw-leaves``, ``chunker=size-262144``, ``hash=sha2-256``), so
  that a node whose configuration changed its defaults still builds the DAG of
  ``ipfs add --cid-version=1``;
* **Pinata** (``Settings.pinata_api_url``): ``POST /pinning/pinFileToIPFS`` with
  ``pinataOptions.cidVersion = 1``, with the credentials a request brings (Livepeer's
  ``ipfs.pinata``: a JWT, or an API key and secret) or the service-wide ``Settings.pinata_jwt``.

Either way the service answers a CID, and :func:`check_cid` compares it with the one
:mod:`mediatasks.ipfs.cid` computed: a difference means the service built another DAG, and the
export fails rather than publish a CID that does not match the file.

Errors follow the task error tree: a 4xx answer (bad credentials, a refused request) is
:class:`~mediatasks.errors.Unretriable`; a 5xx, a 408 or 429, a timeout or a network error is a
:class:`~mediatasks.errors.TaskFailure` that the retry policy retries.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterable, AsyncIterator, Mapping
from typing import Any, Final, Protocol

import httpx

from mediatasks import errors, fetch
from mediatasks import settings as settings_module
from mediatasks.ipfs import cid as cid_module

__all__ = [
    "KuboPinner",
    "PinataPinner",
    "Pinner",
    "check_cid",
    "describe_failure",
    "not_configured_message",
    "pinner_for",
]

#: 4xx answers that mean "not now" rather than "never".
_TRANSIENT_CLIENT_STATUSES: Final = frozenset({408, 425, 429})


class Pinner(Protocol):
    """A service that stores a file on IPFS and answers its CID."""

    #: How errors name the service (never with credentials).
    name: str

    async def add(self, chunks: AsyncIterable[bytes], *, size_bytes: int, filename: str) -> str:
        """Send the file's bytes; return the CID the service gives it."""
        ...


def not_configured_message() -> str:
    """Why an export to IPFS is refused on a server with no IPFS service."""
    return (
        "IPFS export is not configured on this server: set MEDIATASKS_IPFS_API_URL (a kubo RPC "
        "API) or MEDIATASKS_PINATA_JWT, or pass ipfs.pinata credentials"
    )


def pinner_for(
    settings: settings_module.Settings, pinata: Mapping[str, Any] | None = None
) -> Pinner | None:
    """The service an export to IPFS goes to, or ``None`` when there is none.

    A request's own Pinata credentials come first (as on Livepeer Studio), then the kubo API of
    the settings, then the service-wide Pinata JWT.
    """
    timeout_s = settings.export_timeout_s
    if pinata:
        jwt = pinata.get("jwt")
        key, secret = pinata.get("apiKey"), pinata.get("apiSecret")
        if jwt:
            return PinataPinner(settings.pinata_api_url, timeout_s=timeout_s, jwt=str(jwt))
        if key and secret:
            return PinataPinner(
                settings.pinata_api_url,
                timeout_s=timeout_s,
                api_key=str(key),
                api_secret=str(secret),
            )
    if settings.ipfs_api_url:
        return KuboPinner(settings.ipfs_api_url, timeout_s=timeout_s)
    if settings.pinata_jwt:
        return PinataPinner(settings.pinata_api_url, timeout_s=timeout_s, jwt=settings.pinata_jwt)
    return None


def check_cid(service: str, answered: str, computed: str) -> None:
    """Raise ``Unretriable`` unless the service stored the file under the CID we computed."""
    if answered.strip().lower() != computed.lower():
        raise errors.Unretriable(
            f"{service} stored the file as {answered}, but its CID is {computed}: the service "
            "does not import files as 'ipfs add --cid-version=1' does"
        )


def describe_failure(service: str, response: httpx.Response) -> errors.TaskFailure:
    """The error for a non-2xx answer (read already): ``Unretriable`` for a 4xx that will not
    change."""
    status = response.status_code
    phrase = httpx.codes.get_reason_phrase(status)
    message = f"{service} answered {status} {phrase}".rstrip()
    detail = response.text[:500]
    if 400 <= status < 500 and status not in _TRANSIENT_CLIENT_STATUSES:
        return errors.Unretriable(message, detail=detail)
    return errors.TaskFailure(message, detail=detail)


class _Multipart:
    """A ``multipart/form-data`` body streamed from text fields and one file's chunks."""

    def __init__(
        self,
        fields: Mapping[str, str],
        *,
        file_field: str,
        filename: str,
        chunks: AsyncIterable[bytes],
        size_bytes: int,
    ) -> None:
        self.boundary = secrets.token_hex(16)
        safe_name = filename.replace('"', "'").replace("\r", " ").replace("\n", " ") or "file"
        head = b"".join(
            f'--{self.boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
            f"{value}\r\n".encode()
            for name, value in fields.items()
        )
        head += (
            f'--{self.boundary}\r\nContent-Disposition: form-data; name="{file_field}"; '
            f'filename="{safe_name}"\r\nContent-Type: application/octet-stream\r\n\r\n'
        ).encode()
        self._head = head
        self._tail = f"\r\n--{self.boundary}--\r\n".encode()
        self._chunks = chunks
        self.size_bytes = len(head) + size_bytes + len(self._tail)

    @property
    def headers(self) -> dict[str, str]:
        return {
            "Content-Type": f"multipart/form-data; boundary={self.boundary}",
            "Content-Length": str(self.size_bytes),
        }

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self._head
        async for chunk in self._chunks:
            yield chunk
        yield self._tail


async def _post(
    service: str,
    url: str,
    body: _Multipart,
    *,
    headers: Mapping[str, str],
    params: Mapping[str, str] | None = None,
    timeout_s: float,
) -> httpx.Response:
    """POST ``body``; return the (read) 2xx answer or raise a task error."""
    try:
        async with httpx.AsyncClient(timeout=httpx.Timeout(timeout_s)) as client:
            response = await client.post(
                url, params=params, headers={**headers, **body.headers}, content=aiter(body)
            )
    except httpx.TimeoutException as exc:
        raise errors.TaskFailure(
            f"{service} did not answer within {timeout_s:g} s", detail=repr(exc)
        ) from exc
    except httpx.TransportError as exc:
        raise errors.TaskFailure(f"could not reach {service}", detail=repr(exc)) from exc
    if not response.is_success:
        raise describe_failure(service, response)
    return response


class KuboPinner:
    """A kubo node's RPC API (``ipfs daemon``), which adds and pins the file."""

    def __init__(self, api_url: str, *, timeout_s: float) -> None:
        self.api_url = api_url.rstrip("/")
        self.timeout_s = timeout_s
        self.name = f"the IPFS node at {fetch.redact_url(self.api_url)}"

    async def add(self, chunks: AsyncIterable[bytes], *, size_bytes: int, filename: str) -> str:
        body = _Multipart(
            {}, file_field="file", filename=filename, chunks=chunks, size_bytes=size_bytes
        )
        params = {
            "cid-version": "1",
            "raw-leaves": "true",
            "chunker": f"size-{cid_module.CHUNK_SIZE}",
            "hash": "sha2-256",
            "pin": "true",
            "quieter": "true",
        }
        response = await _post(
            self.name,
            f"{self.api_url}/api/v0/add",
            body,
            headers={},
            params=params,
            timeout_s=self.timeout_s,
        )
        # One JSON object per line; with quieter=true only the file's own, with "Hash".
        answered = None
        for line in response.text.splitlines():
            if line.strip():
                try:
                    answered = json.loads(line).get("Hash") or answered
                except (json.JSONDecodeError, AttributeError) as exc:
                    raise errors.TaskFailure(
                        f"{self.name} sent an answer that is not JSON", detail=line[:500]
                    ) from exc
        if not isinstance(answered, str):
            raise errors.TaskFailure(
                f"{self.name} answered without a CID", detail=response.text[:500]
            )
        return answered


class PinataPinner:
    """Pinata's pinning API, with a JWT or an API key and secret."""

    name = "Pinata"

    def __init__(
        self,
        api_url: str,
        *,
        timeout_s: float,
        jwt: str | None = None,
        api_key: str | None = None,
        api_secret: str | None = None,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.timeout_s = timeout_s
        if jwt:
            self._auth = {"Authorization": f"Bearer {jwt}"}
        elif api_key and api_secret:
            self._auth = {"pinata_api_key": api_key, "pinata_secret_api_key": api_secret}
        else:
            raise errors.ConfigurationError("Pinata needs a JWT, or an API key and secret")

    async def add(self, chunks: AsyncIterable[bytes], *, size_bytes: int, filename: str) -> str:
        fields = {
            "pinataOptions": json.dumps({"cidVersion": 1}),
            "pinataMetadata": json.dumps({"name": filename}),
        }
        body = _Multipart(
            fields, file_field="file", filename=filename, chunks=chunks, size_bytes=size_bytes
        )
        response = await _post(
            self.name,
            f"{self.api_url}/pinning/pinFileToIPFS",
            body,
            headers=self._auth,
            timeout_s=self.timeout_s,
        )
        try:
            answered = response.json().get("IpfsHash")
        except (json.JSONDecodeError, AttributeError) as exc:
            raise errors.TaskFailure(
                f"{self.name} sent an answer that is not JSON", detail=response.text[:500]
            ) from exc
        if not isinstance(answered, str):
            raise errors.TaskFailure(
                f"{self.name} answered without a CID", detail=response.text[:500]
            )
        return answered
