"""Fetching a source video from a URL that a user gave us, without letting it reach our own network.

A URL from a client is a server-side request forgery risk: ``http://169.254.169.254/`` reads cloud
credentials, ``http://127.0.0.1:5432/`` probes the database.  The defence has three layers:

1. :func:`check_url`, when the request arrives: the scheme must be ``http`` or ``https``, a host
   must be present, and a host that is a literal address (or ``localhost``) must be public.  This
   answers the client at once with a clear error, but proves nothing about host *names*.
2. :func:`resolve_url`, before every connection: the host is resolved and *every* address it
   resolves to must be public.
3. :func:`download` then connects to the very address that was checked (the request goes to the IP
   address, with the original ``Host`` header and TLS server name), so a DNS server that answers
   differently the second time ("DNS rebinding") cannot slip a private address in between the
   check and the connection.  Redirects are followed by hand, at most :data:`MAX_REDIRECTS`, and
   each hop goes through the same checks.  Environment proxies are ignored, as a proxy would make
   the connection on our behalf to an address we never checked.

``allow_private`` turns the address checks off (tests and development only; ``Settings`` refuses it
elsewhere).  The scheme and host checks always apply.

Errors follow the task error tree: a download raises :class:`~mediatasks.errors.Unretriable` when
retrying cannot help (a 4xx answer, a file over the size limit, an empty file, a URL that is not
allowed) and :class:`~mediatasks.errors.SourceUnavailable` when it might (a 5xx answer, a refused
connection, a DNS failure, a timeout).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import ipaddress
import re
import socket
import urllib.parse
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Final, TypeAlias

import httpx

from mediatasks import errors

__all__ = [
    "MAX_REDIRECTS",
    "PRIVATE_URLS_HINT",
    "PROGRESS_INTERVAL_S",
    "Arrival",
    "Download",
    "IPAddress",
    "ProgressFunc",
    "check_url",
    "download",
    "follow",
    "redact_url",
    "resolve_url",
]

#: An IPv4 or IPv6 address.
IPAddress: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address
#: ``on_progress(received_bytes, total_bytes)``; ``total_bytes`` is ``None`` when the server did
#: not announce a length.
ProgressFunc: TypeAlias = Callable[[int, int | None], Awaitable[None]]

#: Redirects followed before a download gives up.
MAX_REDIRECTS: Final = 5
#: Least time between two progress reports during a download.
PROGRESS_INTERVAL_S: Final = 0.25
#: Said with every refusal of a private address: the setting that allows them.
PRIVATE_URLS_HINT: Final = " (MEDIATASKS_ALLOW_PRIVATE_URLS=true allows it, for development only)"

#: Bytes gathered before one write (and hash update) is handed to a thread.
_WRITE_BATCH_BYTES: Final = 1024 * 1024
_REDIRECT_STATUSES: Final = frozenset({301, 302, 303, 307, 308})
#: 4xx answers that say "not now" rather than "never".
_TRANSIENT_CLIENT_STATUSES: Final = frozenset({408, 425, 429})
_FAILURE_PREFIX: Final = "file could not be imported from URL: "

#: RFC 6598 shared address space (carrier-grade NAT); ``ipaddress`` has no flag for it.
_SHARED_ADDRESS_SPACE: Final = ipaddress.IPv4Network("100.64.0.0/10")
#: RFC 6052 well-known NAT64 prefix: the last 32 bits are an IPv4 address.
_NAT64_PREFIX: Final = ipaddress.IPv6Network("64:ff9b::/96")
#: A host name after IDNA encoding: LDH labels (plus ``_``), an optional trailing dot.
_HOST_NAME: Final = re.compile(r"[a-z0-9_-]+(?:\.[a-z0-9_-]+)*\.?")
_IPV4_NUMBER: Final = {
    10: re.compile(r"[0-9]+"),
    16: re.compile(r"[0-9a-f]*"),
    8: re.compile(r"[0-7]+"),
}

#: Query parameter names (lower case) whose values are always masked by :func:`redact_url`.
_SECRET_PARAMS: Final = frozenset({"key", "sig", "auth", "authorization", "pass", "pwd", "code"})
#: Parts of query parameter names that mark a credential (``X-Amz-Signature``, ``api_key``...).
_SECRET_PARAM_PARTS: Final = (
    "token",
    "secret",
    "signature",
    "credential",
    "password",
    "passwd",
    "apikey",
    "api_key",
    "api-key",
    "accesskey",
    "access_key",
    "private",
)
_MASK: Final = "***"


@dataclass(frozen=True, kw_only=True)
class Download:
    """A source file saved by :func:`download`."""

    #: Bytes written to the destination file.
    size_bytes: int
    #: SHA-256 of those bytes, lower-case hex.
    sha256: str
    #: The ``Content-Type`` the server announced, if any.
    content_type: str | None
    #: The URL the file came from after redirects; may hold credentials, so show it through
    #: :func:`redact_url`.
    final_url: str


@dataclass(kw_only=True)
class Arrival:
    """How much of a download is in its file so far: for a reader that follows the bytes in.

    :func:`download` updates it as each batch is written and flushed, and once more when it
    ends, with ``finished`` or ``failure`` set.  Waiters wake up on every change.
    """

    #: The length the server announced, if it did.
    total_bytes: int | None = None
    #: Bytes in the file, readable by another file handle.
    written_bytes: int = 0
    finished: bool = False
    #: What the download raised, once it has.
    failure: BaseException | None = None
    _changed: asyncio.Event = dataclasses.field(default_factory=asyncio.Event, repr=False)

    @property
    def over(self) -> bool:
        """Whether the download has ended, one way or the other."""
        return self.finished or self.failure is not None

    async def wait_for(self, condition: Callable[[Arrival], bool]) -> None:
        """Return once ``condition(self)`` holds or the download is over."""
        while True:
            self._changed.clear()
            if self.over or condition(self):
                return
            await self._changed.wait()

    async def wait_past(self, offset: int) -> None:
        """Return once more than ``offset`` bytes are written, or the download is over."""
        await self.wait_for(lambda arrival: arrival.written_bytes > offset)

    def _update(self, **changes: object) -> None:
        for name, value in changes.items():
            setattr(self, name, value)
        self._changed.set()


async def follow(path: Path, arrival: Arrival, writer: asyncio.StreamWriter) -> None:
    """Copy ``path`` into ``writer`` as a download writes it, until it is complete.

    Raises what the download raised, should it fail: the bytes already passed on are then a
    truncated file, which the reader must not take for the whole.
    """
    offset = 0
    with await asyncio.to_thread(path.open, "rb") as file:
        while True:
            if offset < arrival.written_bytes:
                size = min(_WRITE_BATCH_BYTES, arrival.written_bytes - offset)
                chunk = await asyncio.to_thread(file.read, size)
                if not chunk:  # the file went away (a failed download removes it)
                    await arrival.wait_for(lambda a: a.over)
                else:
                    writer.write(chunk)
                    await writer.drain()
                    offset += len(chunk)
                    continue
            if arrival.failure is not None:
                raise arrival.failure
            if arrival.finished and offset >= arrival.written_bytes:
                return
            await arrival.wait_past(offset)


def check_url(url: str, *, allow_private: bool) -> None:
    """Refuse a source URL that can never be fetched safely; raise ``errors.UnsafeURL``.

    This runs when a request arrives and does no network I/O: a host name is only checked if it is
    ``localhost`` or a ``.localhost`` name.  :func:`download` checks what names resolve to.
    """
    _parse_url(url, allow_private=allow_private)


async def resolve_url(url: str, *, allow_private: bool, timeout_s: float) -> list[IPAddress]:
    """Resolve the host of ``url`` and return its addresses, refusing the URL if any is private.

    Every address must be allowed, not just one: the connection may use any of them.  Raises
    ``errors.UnsafeURL`` for a refused URL and ``errors.SourceUnavailable`` when the name does not
    resolve within ``timeout_s``.
    """
    return await _resolve(_parse_url(url, allow_private=allow_private), allow_private, timeout_s)


#: A URL that ``redact_url`` gives back as it is: a lower-case scheme, a host (and port) without
#: user information or brackets, an optional path, no query, no fragment, nothing but printable
#: ASCII.  Splitting and joining such a URL gives it back unchanged, and it holds nothing to mask.
_PLAIN_URL: Final = re.compile(
    r"[a-z][a-z0-9+.-]*://[A-Za-z0-9._~%!$&'()*+,;=:-]+(?:/[A-Za-z0-9._~%!$&'()*+,;=:@/-]*)?"
)


def redact_url(url: str) -> str:
    """Return ``url`` with its credentials masked, for showing it back in task parameters.

    ``user:password@`` becomes ``***:***@`` (as Livepeer shows ``s3+https://***:***@host/...``),
    and the values of query (and fragment) parameters that look like credentials become ``***``.
    Everything else is kept as it was written.  Never raises: a URL that cannot be parsed has
    anything before an ``@`` masked.
    """
    if _PLAIN_URL.fullmatch(url):  # most URLs: no need to split them (a task page shows many)
        return url
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return re.sub(r"//[^/?#]*@", f"//{_MASK}:{_MASK}@", url)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{_MASK}:{_MASK}@{netloc.rpartition('@')[2]}"
    return urllib.parse.urlunsplit(
        (
            parts.scheme,
            netloc,
            parts.path,
            _redact_params(parts.query),
            _redact_params(parts.fragment),
        )
    )


async def download(
    url: str,
    dest: Path,
    *,
    allow_private: bool,
    max_bytes: int,
    timeout_s: float,
    total_timeout_s: float,
    on_progress: ProgressFunc | None = None,
    arrival: Arrival | None = None,
) -> Download:
    """Download ``url`` to ``dest``, hashing it on the way; remove ``dest`` again on any failure.

    With ``arrival``, another reader can follow the bytes into ``dest`` while they arrive.

    ``timeout_s`` bounds each wait (name resolution, connecting, the next bytes of the answer) and
    ``total_timeout_s`` the whole download.  ``on_progress`` is awaited at most every
    :data:`PROGRESS_INTERVAL_S` while bytes arrive, and once more when the file is complete.

    Raises ``errors.Unretriable`` when retrying cannot help (4xx, too large, empty, a URL or a
    redirect that is not allowed) and ``errors.SourceUnavailable`` when it might (5xx, connection
    or name resolution failures, timeouts).  Other errors (a full disk) propagate unchanged.
    """
    arrival = arrival or Arrival()
    try:
        done = await _download(
            url,
            dest,
            allow_private=allow_private,
            max_bytes=max_bytes,
            timeout_s=timeout_s,
            total_timeout_s=total_timeout_s,
            on_progress=on_progress,
            arrival=arrival,
        )
    except BaseException as exc:
        arrival._update(failure=exc)
        raise
    arrival._update(finished=True)
    return done


async def _download(
    url: str,
    dest: Path,
    *,
    allow_private: bool,
    max_bytes: int,
    timeout_s: float,
    total_timeout_s: float,
    on_progress: ProgressFunc | None,
    arrival: Arrival,
) -> Download:
    deadline = asyncio.timeout(total_timeout_s)
    try:
        async with deadline:
            return await _follow(
                _parse_url(url, allow_private=allow_private),
                dest,
                allow_private=allow_private,
                max_bytes=max_bytes,
                timeout_s=timeout_s,
                on_progress=on_progress,
                arrival=arrival,
            )
    except TimeoutError as exc:
        if not deadline.expired():
            raise
        raise errors.SourceUnavailable(
            f"{_FAILURE_PREFIX}the download did not finish within {_seconds(total_timeout_s)}"
        ) from exc
    except errors.UnsafeURL as exc:
        # By the time a worker downloads, a refused URL is a final answer, not bad request input.
        raise errors.Unretriable(f"{_FAILURE_PREFIX}{exc.message}") from exc


# -- URL checks ------------------------------------------------------------------------------------


def _parse_url(url: str, *, allow_private: bool) -> httpx.URL:
    """Parse ``url`` with the same parser that will send the request, and check it."""
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in url):
        raise errors.UnsafeURL("url must not contain control characters")
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise errors.UnsafeURL(f"url is not valid: {exc}") from exc
    if parsed.scheme not in ("http", "https"):
        raise errors.UnsafeURL("url must use http or https")
    host = parsed.raw_host.decode("ascii")
    if not host:
        raise errors.UnsafeURL("url must have a host")
    if parsed.port is not None and not 0 < parsed.port < 65536:
        raise errors.UnsafeURL("url has an invalid port")
    address = _literal_address(host)
    if address is None and not _HOST_NAME.fullmatch(host):
        raise errors.UnsafeURL("url has an invalid host")
    if not allow_private:
        if address is not None:
            kind = _refused_kind(address)
            if kind is not None:
                raise errors.UnsafeURL(
                    f"url points to {kind} address, which is not allowed{PRIVATE_URLS_HINT}"
                )
        elif host.rstrip(".") == "localhost" or host.rstrip(".").endswith(".localhost"):
            # RFC 6761: these names always mean this machine.
            raise errors.UnsafeURL(
                f"url points to a loopback address, which is not allowed{PRIVATE_URLS_HINT}"
            )
    return parsed


def _literal_address(host: str) -> IPAddress | None:
    """The address that ``host`` spells literally, or ``None`` for a host name."""
    if ":" in host:
        try:
            return ipaddress.IPv6Address(host)
        except ValueError:
            return None
    return _loose_ipv4(host)


def _loose_ipv4(host: str) -> ipaddress.IPv4Address | None:
    """Parse IPv4 the way ``inet_aton`` and browsers do: ``127.1``, ``0x7f.1``, ``2130706433``.

    These forms reach the resolver unchanged, which reads them as addresses, so they must be
    checked as addresses too.
    """
    labels = host.split(".")
    if len(labels) > 1 and labels[-1] == "":
        labels.pop()
    if not 1 <= len(labels) <= 4:
        return None
    numbers: list[int] = []
    for label in labels:
        number = _ipv4_number(label)
        if number is None:
            return None
        numbers.append(number)
    *head, last = numbers
    if any(number > 255 for number in head) or last >= 256 ** (5 - len(numbers)):
        return None
    value = last
    for index, number in enumerate(head):
        value += number << (8 * (3 - index))
    return ipaddress.IPv4Address(value)


def _ipv4_number(label: str) -> int | None:
    base = 10
    if label[:2] in ("0x", "0X"):
        base, label = 16, label[2:]
    elif len(label) > 1 and label.startswith("0"):
        base, label = 8, label[1:]
    if not _IPV4_NUMBER[base].fullmatch(label.lower()):
        return None
    return int(label, base) if label else 0


def _refused_kind(address: IPAddress) -> str | None:
    """Describe why ``address`` is not public ("a loopback"), or ``None`` when it is."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in _NAT64_PREFIX:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            return _refused_kind(embedded)
    # Most specific first: 127.0.0.1 is also "private" to the ipaddress module.
    if address.is_unspecified:
        return "an unspecified"
    if address.is_loopback:
        return "a loopback"
    if address.is_link_local:
        return "a link-local"
    if address.is_multicast:
        return "a multicast"
    if address in _SHARED_ADDRESS_SPACE:
        return "a shared (carrier-grade NAT)"
    if address.is_reserved:
        return "a reserved"
    if address.is_private:
        return "a private"
    if not address.is_global:  # documentation, benchmarking and other special-purpose blocks
        return "a reserved"
    return None


def _redirect_target(current: httpx.URL, location: str, *, allow_private: bool) -> httpx.URL:
    """The URL a redirect leads to, checked like the first one."""
    try:
        target = current.join(location)
    except httpx.InvalidURL as exc:
        raise errors.UnsafeURL(f"the server redirected to an invalid url: {exc}") from exc
    return _parse_url(str(target.copy_with(fragment=None)), allow_private=allow_private)


async def _resolve(url: httpx.URL, allow_private: bool, timeout_s: float) -> list[IPAddress]:
    host = url.raw_host.decode("ascii")
    port = url.port or (443 if url.scheme == "https" else 80)
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(timeout_s):
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except TimeoutError as exc:
        raise errors.SourceUnavailable(
            f"{_FAILURE_PREFIX}the host name {host} was not resolved within {_seconds(timeout_s)}"
        ) from exc
    except OSError as exc:  # socket.gaierror, and the rare OSError of a broken resolver
        raise errors.SourceUnavailable(
            f"{_FAILURE_PREFIX}the host name {host} could not be resolved", detail=str(exc)
        ) from exc
    addresses: list[IPAddress] = []
    for _family, _type, _proto, _canonname, sockaddr in infos:
        # IPv6 link-local answers carry a zone ("fe80::1%eth0"), which ip_address() refuses.
        address = ipaddress.ip_address(str(sockaddr[0]).partition("%")[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise errors.SourceUnavailable(f"{_FAILURE_PREFIX}the host name {host} has no address")
    if not allow_private:
        for address in addresses:
            kind = _refused_kind(address)
            if kind is not None:
                raise errors.UnsafeURL(
                    f"url host {host} resolves to {kind} address, which is not allowed"
                    f"{PRIVATE_URLS_HINT}"
                )
    return addresses


def _redact_params(text: str) -> str:
    if "=" not in text:
        return text
    fields = []
    for field in text.split("&"):
        name, sep, _value = field.partition("=")
        if sep and _is_secret_param(urllib.parse.unquote_plus(name)):
            field = f"{name}={_MASK}"
        fields.append(field)
    return "&".join(fields)


def _is_secret_param(name: str) -> bool:
    lowered = name.lower()
    return lowered in _SECRET_PARAMS or any(part in lowered for part in _SECRET_PARAM_PARTS)


# -- the download ----------------------------------------------------------------------------------


async def _follow(
    url: httpx.URL,
    dest: Path,
    *,
    allow_private: bool,
    max_bytes: int,
    timeout_s: float,
    on_progress: ProgressFunc | None,
    arrival: Arrival,
) -> Download:
    """Request ``url``, following redirects by hand, and save the final answer's body."""
    with _translate_httpx_errors(timeout_s):
        for _hop in range(MAX_REDIRECTS + 1):
            addresses = await _resolve(url, allow_private, timeout_s)
            # One client per hop: a pooled connection is pinned to an address and a TLS name, so
            # it must not be reused for a redirect to another host on the same address.
            async with httpx.AsyncClient(
                timeout=httpx.Timeout(timeout_s), follow_redirects=False, trust_env=False
            ) as client:
                response = await _send_pinned(client, url, addresses)
                try:
                    status = response.status_code
                    if status in _REDIRECT_STATUSES:
                        location = response.headers.get("Location")
                        if not location:
                            raise errors.Unretriable(
                                f"{_FAILURE_PREFIX}the server answered {_status_text(status)} "
                                "without a Location"
                            )
                        url = _redirect_target(url, location, allow_private=allow_private)
                        continue
                    _check_status(response)
                    return await _save_body(
                        response,
                        url,
                        dest,
                        max_bytes=max_bytes,
                        on_progress=on_progress,
                        arrival=arrival,
                    )
                finally:
                    await response.aclose()
    raise errors.Unretriable(
        f"{_FAILURE_PREFIX}the server redirected more than {MAX_REDIRECTS} times"
    )


async def _send_pinned(
    client: httpx.AsyncClient, url: httpx.URL, addresses: list[IPAddress]
) -> httpx.Response:
    """Send ``GET url`` to the first of ``addresses`` that accepts a connection."""
    extensions = {"sni_hostname": url.raw_host.decode("ascii")} if url.scheme == "https" else {}
    headers = {
        "Host": url.netloc.decode("ascii"),
        # We want the file as stored, and a size limit that means what it says.
        "Accept-Encoding": "identity",
    }
    failure: httpx.TransportError | None = None
    for address in addresses:
        request = client.build_request(
            "GET", url.copy_with(host=str(address)), headers=headers, extensions=extensions
        )
        try:
            return await client.send(request, stream=True)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            failure = exc
    assert failure is not None  # _resolve never returns an empty list
    raise failure


def _check_status(response: httpx.Response) -> None:
    status = response.status_code
    if 200 <= status < 300:
        return
    message = f"{_FAILURE_PREFIX}the server answered {_status_text(status)}"
    detail = f"HTTP {status} {response.reason_phrase}".rstrip()
    if status >= 500 or status in _TRANSIENT_CLIENT_STATUSES:
        raise errors.SourceUnavailable(message, detail=detail)
    raise errors.Unretriable(message, detail=detail)


async def _save_body(
    response: httpx.Response,
    url: httpx.URL,
    dest: Path,
    *,
    max_bytes: int,
    on_progress: ProgressFunc | None,
    arrival: Arrival,
) -> Download:
    too_large = f"the source file is larger than the limit of {max_bytes} bytes"
    total_bytes = _content_length(response)
    if total_bytes is not None and total_bytes > max_bytes:
        raise errors.Unretriable(too_large)
    arrival._update(total_bytes=total_bytes)
    loop = asyncio.get_running_loop()
    digest = hashlib.sha256()
    received_bytes = 0
    pending = bytearray()
    last_report_s = loop.time()
    file = dest.open("wb")
    try:
        async for chunk in response.aiter_bytes():
            received_bytes += len(chunk)
            if received_bytes > max_bytes:
                raise errors.Unretriable(too_large)
            pending += chunk
            if len(pending) >= _WRITE_BATCH_BYTES:
                batch, pending = pending, bytearray()
                await asyncio.to_thread(_write_batch, file, digest, batch)
                arrival._update(written_bytes=received_bytes)
            if on_progress is not None and loop.time() - last_report_s >= PROGRESS_INTERVAL_S:
                last_report_s = loop.time()
                await on_progress(received_bytes, total_bytes)
        if pending:
            await asyncio.to_thread(_write_batch, file, digest, pending)
        arrival._update(written_bytes=received_bytes)
        if received_bytes == 0:
            raise errors.Unretriable("the source file is empty")
        await asyncio.to_thread(file.close)
        if on_progress is not None:
            await on_progress(received_bytes, total_bytes)
    except BaseException:
        # Also on cancellation (the total timeout, a cancelled task).  A batch still being written
        # by its thread holds the file's lock, so close() waits for it rather than racing it.
        file.close()
        dest.unlink(missing_ok=True)
        raise
    return Download(
        size_bytes=received_bytes,
        sha256=digest.hexdigest(),
        content_type=response.headers.get("Content-Type"),
        final_url=str(url),
    )


def _write_batch(file: BinaryIO, digest: hashlib._Hash, batch: bytearray) -> None:
    file.write(batch)
    file.flush()  # readable by whoever follows the download (Arrival)
    digest.update(batch)


def _content_length(response: httpx.Response) -> int | None:
    try:
        return int(response.headers["Content-Length"])
    except (KeyError, ValueError):
        return None


@contextlib.contextmanager
def _translate_httpx_errors(timeout_s: float) -> Iterator[None]:
    """Turn httpx's exceptions into task failures: the one place that knows about them."""
    within = _seconds(timeout_s)
    try:
        yield
    except httpx.ConnectTimeout as exc:
        raise errors.SourceUnavailable(
            f"{_FAILURE_PREFIX}the server did not accept a connection within {within}",
            detail=_describe(exc),
        ) from exc
    except httpx.TimeoutException as exc:
        raise errors.SourceUnavailable(
            f"{_FAILURE_PREFIX}the server did not answer within {within}", detail=_describe(exc)
        ) from exc
    except httpx.ConnectError as exc:
        raise errors.SourceUnavailable(
            f"{_FAILURE_PREFIX}could not connect to the server", detail=_describe(exc)
        ) from exc
    except httpx.RemoteProtocolError as exc:
        raise errors.SourceUnavailable(
            f"{_FAILURE_PREFIX}the server closed the connection before the whole file arrived "
            "or sent an invalid answer",
            detail=_describe(exc),
        ) from exc
    except httpx.NetworkError as exc:
        raise errors.SourceUnavailable(
            f"{_FAILURE_PREFIX}the connection to the server was lost", detail=_describe(exc)
        ) from exc
    except httpx.DecodingError as exc:
        raise errors.Unretriable(
            f"{_FAILURE_PREFIX}the server sent a body that could not be decoded",
            detail=_describe(exc),
        ) from exc
    except (httpx.UnsupportedProtocol, httpx.LocalProtocolError) as exc:
        raise errors.Unretriable(
            f"{_FAILURE_PREFIX}the url cannot be requested", detail=_describe(exc)
        ) from exc
    except httpx.TransportError as exc:
        raise errors.SourceUnavailable(
            f"{_FAILURE_PREFIX}the request failed", detail=_describe(exc)
        ) from exc


def _describe(exc: Exception) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _status_text(status: int) -> str:
    phrase = httpx.codes.get_reason_phrase(status)
    return f"{status} {phrase}" if phrase else str(status)


def _seconds(value_s: float) -> str:
    return f"{value_s:g} s"
