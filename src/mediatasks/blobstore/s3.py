"""A blob store in an S3-compatible bucket: AWS S3, MinIO, Cloudflare R2, Storj, moto...

Two ways to name one (see :func:`parse_location`)::

    s3://bucket/prefix?endpoint=http://127.0.0.1:9000&region=us-east-1
    s3+https://ACCESS_KEY:SECRET_KEY@host:port/bucket/prefix

The first is the usual form; credentials and the endpoint default to the ``MEDIATASKS_S3_*``
settings (given as an :class:`S3Config`), and without credentials boto3's own chain applies
(``AWS_*`` variables, ``~/.aws``, an instance role).  The second is Livepeer's object store URL
(reference §5.1): the endpoint is the host, the bucket the first path segment, and the credentials
are percent-encoded in the URL; it is what ``transcode-file`` tasks store for the caller's bucket.

**Folders.**  A bucket has no folders, only keys, but the blob store contract says a key cannot
be both a file and a folder (``hls/a`` and ``hls/a/0.ts``).  With ``check_folders`` (the default)
a write looks before it leaps: a ``HEAD`` per parent key and one listing, which makes the rule hold
for one writer but cannot make it atomic against a concurrent one, as S3 has no such guard.  A
caller's bucket is written with ``check_folders=False``: it is theirs, and write-only credentials
must be enough.

**Atomicity.**  S3 replaces an object in one step: a reader sees the old object or the new one.

**Blocking calls.**  boto3 is synchronous; every call runs in a thread (``asyncio.to_thread``).
One client serves them all (boto3 clients are thread-safe); it is created on first use, as
creating it reads botocore's service models, and it is closed by :meth:`S3BlobStore.close`.

**Errors** are translated where boto3 raises them (:func:`_translated`): a missing key becomes
``errors.NotFound``; a missing bucket, refused credentials or access, and any other refusal become
``errors.ConfigurationError`` (retrying cannot help); network failures, timeouts, throttling and 5xx
answers become ``errors.Unavailable`` (try again later).  Messages name the bucket and the key,
never a credential.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import mimetypes
import os
import re
import secrets
import shutil
import threading
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Final, TypeVar

import boto3
import boto3.exceptions
import boto3.s3.transfer
import botocore.config
import botocore.exceptions

from mediatasks import errors
from mediatasks.blobstore import base

__all__ = ["S3BlobStore", "S3Config", "S3Location", "parse_location"]

_T = TypeVar("_T")

#: Uploads in flight at once while publishing a tree (segments are small: latency dominates).
_PARALLEL_UPLOADS: Final = 8
#: Large files go up as a multipart upload, streamed from the file in parts of this size, a
#: few parts at once; small ones (segments, playlists) in one request.
_PART_BYTES: Final = 8 * 1024 * 1024
_TRANSFER: Final = boto3.s3.transfer.TransferConfig(
    multipart_threshold=_PART_BYTES, multipart_chunksize=_PART_BYTES, max_concurrency=4
)
#: ``DeleteObjects`` takes at most this many keys per request.
_DELETE_BATCH: Final = 1000
_COPY_CHUNK_BYTES: Final = 1024 * 1024
#: Seconds a readiness ping waits to connect, and for the answer.
_PING_TIMEOUT_S: Final = 2.0
#: S3 bucket names (the DNS-compatible rules, plus ``_`` and capitals, which some services
#: accept).
_BUCKET: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{1,254}")
_CONTENT_TYPES: Final = {
    ".m3u8": "application/vnd.apple.mpegurl",
    ".ts": "video/mp2t",
    ".mp4": "video/mp4",
    ".m4s": "video/iso.segment",
    ".vtt": "text/vtt",
    ".jpg": "image/jpeg",
    ".mpd": "application/dash+xml",
}
#: Error codes that mean "no such key" (``HEAD`` answers have no body, hence the bare 404).
_MISSING_KEY_CODES: Final = frozenset({"NoSuchKey", "404", "NotFound"})
#: Error codes that retrying cannot fix, with what to tell the user.
_REFUSALS: Final = {
    "NoSuchBucket": "the bucket {bucket!r} does not exist",
    "AccessDenied": "access to the bucket {bucket!r} was denied",
    "403": "access to the bucket {bucket!r} was denied",
    "AllAccessDisabled": "access to the bucket {bucket!r} was denied",
    "AccountProblem": "access to the bucket {bucket!r} was denied",
    "InvalidAccessKeyId": "the access key id is not known to the storage service",
    "SignatureDoesNotMatch": "the secret access key does not match the access key id",
    "InvalidBucketName": "the bucket name {bucket!r} is not valid",
    "PermanentRedirect": "the bucket {bucket!r} is in another region or at another endpoint",
    "AuthorizationHeaderMalformed": "the region does not match the bucket {bucket!r}",
}
#: Error codes worth another attempt later, whatever their HTTP status.
_TRANSIENT_CODES: Final = frozenset(
    {
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "RequestTimeout",
        "RequestTimeTooSkewed",
        "InternalError",
        "ServiceUnavailable",
        "503",
        "500",
    }
)


@dataclasses.dataclass(frozen=True, kw_only=True)
class S3Config:
    """How to reach a bucket: endpoint, region, credentials and patience."""

    #: ``https://host[:port]``; ``None`` means AWS's own endpoint for :attr:`region`.
    endpoint_url: str | None = None
    #: The region requests are signed for; S3-compatible services mostly accept ``us-east-1``.
    region: str = "us-east-1"
    #: ``None`` for both means boto3's credential chain.
    access_key_id: str | None = dataclasses.field(default=None, repr=False)
    secret_access_key: str | None = dataclasses.field(default=None, repr=False)
    #: Seconds to wait for a connection, and for the next bytes of an answer.
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 60.0
    #: Attempts per request (botocore's ``standard`` retry mode) before an error is raised.
    max_attempts: int = 3


@dataclasses.dataclass(frozen=True, kw_only=True)
class S3Location:
    """A bucket, a key prefix in it, and how to reach it: what a location URL names."""

    bucket: str
    #: ``""`` or a valid blob key (no leading or trailing ``/``).
    prefix: str
    config: S3Config

    @property
    def endpoint_host(self) -> str:
        """The endpoint's host, for messages (never the credentials)."""
        if self.config.endpoint_url is None:
            return "AWS S3"
        return urllib.parse.urlsplit(self.config.endpoint_url).netloc or "AWS S3"


def parse_location(url: str, defaults: S3Config | None = None) -> S3Location:
    """Read ``s3://bucket/prefix?endpoint=...&region=...`` or ``s3+https://KEY:SECRET@host/bucket``.

    ``defaults`` supplies what the URL does not say.  Raises ``errors.ConfigurationError`` with a
    message that never repeats the credentials.
    """
    config = defaults or S3Config()
    try:
        parts = urllib.parse.urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise errors.ConfigurationError("the S3 location is not a valid URL") from exc
    scheme = parts.scheme.lower()
    user, password = _credentials(parts)
    query = urllib.parse.parse_qs(parts.query, keep_blank_values=True)
    unknown = sorted(set(query) - {"endpoint", "region"})
    if unknown:
        raise errors.ConfigurationError(
            f"unknown S3 location parameter {unknown[0]!r}: use endpoint= and region="
        )
    endpoint = query.get("endpoint", [config.endpoint_url or ""])[-1] or None
    region = query.get("region", [config.region])[-1] or config.region
    if scheme == "s3":
        bucket = parts.netloc.rpartition("@")[2]  # as written: hostname would lower-case it
        path = parts.path
    elif scheme in ("s3+http", "s3+https"):
        host = parts.hostname
        if not host:
            raise errors.ConfigurationError("an s3+http(s) location needs a host")
        netloc_host = f"[{host}]" if ":" in host else host
        endpoint = f"{scheme[3:]}://{netloc_host}" + (f":{port}" if port is not None else "")
        bucket, _, path = parts.path.lstrip("/").partition("/")
    else:
        raise errors.ConfigurationError(f"not an S3 location: scheme {scheme!r}")
    bucket = urllib.parse.unquote(bucket)
    if not _BUCKET.fullmatch(bucket):
        raise errors.ConfigurationError(f"the S3 location names no valid bucket: {bucket!r}")
    if endpoint is not None:
        _check_endpoint(endpoint)
    prefix = urllib.parse.unquote(path).strip("/")
    try:
        prefix = base.check_prefix(prefix)
    except errors.InvalidInput as exc:
        raise errors.ConfigurationError(f"the S3 location's prefix is not valid: {exc}") from exc
    if user is not None or password is not None:
        if not user or not password:
            raise errors.ConfigurationError(
                "the S3 credentials are incomplete: write ACCESS_KEY:SECRET_KEY@"
            )
        config = dataclasses.replace(config, access_key_id=user, secret_access_key=password)
    return S3Location(
        bucket=bucket,
        prefix=prefix,
        config=dataclasses.replace(config, endpoint_url=endpoint, region=region),
    )


class S3BlobStore:
    """Published media as objects under ``prefix`` in ``bucket``."""

    def __init__(
        self,
        bucket: str,
        *,
        prefix: str = "",
        config: S3Config | None = None,
        check_folders: bool = True,
    ) -> None:
        if not _BUCKET.fullmatch(bucket):
            raise errors.ConfigurationError(f"not a valid bucket name: {bucket!r}")
        self._bucket = bucket
        self._root = base.check_prefix(prefix)
        self._config = config or S3Config()
        self._check_folders = check_folders
        self._client: Any = None
        self._ping_client: Any = None
        self._client_lock = threading.Lock()

    @classmethod
    def at(cls, location: S3Location, *, check_folders: bool = True) -> S3BlobStore:
        """The store that ``location`` names."""
        return cls(
            location.bucket,
            prefix=location.prefix,
            config=location.config,
            check_folders=check_folders,
        )

    def __repr__(self) -> str:
        endpoint = self._config.endpoint_url or "aws"
        return f"S3BlobStore({endpoint!r}, bucket={self._bucket!r}, prefix={self._root!r})"

    @property
    def bucket(self) -> str:
        """The bucket that holds every key."""
        return self._bucket

    @property
    def prefix(self) -> str:
        """The key prefix (a folder) under which this store's keys live; ``""`` for the root."""
        return self._root

    # -- the BlobStore protocol ---------------------------------------------------------------

    async def put_file(self, key: str, path: Path) -> None:
        """Store a copy of ``path`` as ``key``; see :meth:`BlobStore.put_file`."""
        base.check_key(key)

        def put(client: Any) -> None:
            with Path(path).open("rb") as file:  # a missing source raises before any request
                if self._check_folders:
                    self._check_free(client, key)
                self._upload(client, key, file)

        await self._run(put, key)

    async def move_file(self, key: str, path: Path) -> None:
        """Upload ``path`` as ``key`` (in parts when large: :data:`_PART_BYTES`), remove it."""
        await self.put_file(key, path)
        await asyncio.to_thread(Path(path).unlink)

    async def put_tree(self, prefix: str, directory: Path) -> list[str]:
        """Publish ``directory`` under ``prefix``; see :meth:`BlobStore.put_tree`.

        Files are uploaded :data:`_PARALLEL_UPLOADS` at a time; playlists and manifests go last,
        one after the other in :func:`base.staged_files` order, once everything they list is
        stored.
        """
        files = await asyncio.to_thread(base.staged_files, prefix, Path(directory))
        keys = [key for key, _ in files]
        if not files:
            return []
        if self._check_folders:
            folder = base.check_prefix(prefix)
            await self._run(lambda client: self._check_tree(client, folder, keys), folder)
        manifests_from = len(files)
        while manifests_from > 0 and _is_manifest(files[manifests_from - 1][0]):
            manifests_from -= 1
        limit = asyncio.Semaphore(_PARALLEL_UPLOADS)

        async def upload(key: str, source: Path) -> None:
            async with limit:
                await self._run(lambda client: self._upload_path(client, key, source), key)

        try:
            async with asyncio.TaskGroup() as group:
                for key, source in files[:manifests_from]:
                    group.create_task(upload(key, source))
        except ExceptionGroup as failed:
            # The first failure is the one to report; the group only says that several ran.
            raise failed.exceptions[0] from None
        for key, source in files[manifests_from:]:
            await upload(key, source)
        return sorted(keys)

    async def get_file(self, key: str, dest: Path) -> None:
        """Copy ``key`` to ``dest`` (replacing it at once); see :meth:`BlobStore.get_file`."""
        base.check_key(key)
        target = Path(dest)

        def get(client: Any) -> None:
            answer = client.get_object(Bucket=self._bucket, Key=self._full(key))
            body = answer["Body"]
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                temp = target.with_name(f".{target.name}.{secrets.token_hex(8)}.part")
                try:
                    with temp.open("wb") as writer:
                        shutil.copyfileobj(body, writer, _COPY_CHUNK_BYTES)
                    os.replace(temp, target)
                finally:
                    temp.unlink(missing_ok=True)
            finally:
                body.close()

        await self._run(get, key)

    async def exists(self, key: str) -> bool:
        """Whether ``key`` is a stored object (a folder of keys is not)."""
        base.check_key(key)
        return await self._run(lambda client: self._head(client, key) is not None, key)

    async def size_bytes(self, key: str) -> int:
        """The size of ``key``; raise ``errors.NotFound`` if it is missing."""
        base.check_key(key)
        size = await self._run(lambda client: self._head(client, key), key)
        if size is None:
            raise errors.NotFound(f"no such blob key: {key}")
        return size

    async def list_keys(self, prefix: str) -> list[str]:
        """Every key in the folder ``prefix`` (all keys for ``""``), sorted.

        Objects whose names are not valid keys (written by other tools: ``a//b``, a "folder"
        marker ending in ``/``) are left out: no method of this store could address them.
        """
        folder = base.check_prefix(prefix)
        return await self._run(lambda client: sorted(self._list(client, folder)), folder)

    async def delete_prefix(self, prefix: str) -> int:
        """Delete every key in the folder ``prefix`` and count them."""
        folder = base.check_prefix(prefix)
        if not folder:
            raise errors.InvalidInput("refusing to delete every key: name a prefix")
        return await self._run(lambda client: self._delete(client, folder), folder)

    def local_path(self, key: str) -> None:
        """Always ``None``: objects in a bucket are not files a local web server can send."""
        base.check_key(key)

    async def ping(self) -> None:
        """``HEAD`` the bucket, with a client of its own that tries once and waits little: a
        readiness check must neither wait out the retries nor hold the work's connections."""

        def head(client: Any) -> None:
            try:
                client.head_bucket(Bucket=self._bucket)
            except botocore.exceptions.ClientError as exc:
                if _code(exc) in {"404", "NoSuchBucket"}:
                    raise errors.NotFound(
                        f"the bucket {self._bucket!r} does not exist at {self._where()}"
                    ) from exc
                raise

        def call() -> None:
            with _translated(self._bucket, ""):
                with self._client_lock:
                    if self._ping_client is None:
                        self._ping_client = _new_client(
                            dataclasses.replace(
                                self._config,
                                connect_timeout_s=_PING_TIMEOUT_S,
                                read_timeout_s=_PING_TIMEOUT_S,
                                max_attempts=1,
                            )
                        )
                    client = self._ping_client
                head(client)

        await asyncio.to_thread(call)

    async def create_bucket(self) -> None:
        """Create the bucket (in the configured region); nothing happens if we own it already."""

        def create(client: Any) -> None:
            options: dict[str, Any] = {"Bucket": self._bucket}
            if self._config.region != "us-east-1":  # the one region that takes no constraint
                options["CreateBucketConfiguration"] = {"LocationConstraint": self._config.region}
            try:
                client.create_bucket(**options)
            except botocore.exceptions.ClientError as exc:
                if _code(exc) != "BucketAlreadyOwnedByYou":
                    raise

        await self._run(create, "")

    async def close(self) -> None:
        """Close the client's connections; a later call opens a new client."""
        with self._client_lock:
            client, self._client = self._client, None
            pinger, self._ping_client = self._ping_client, None
        for closing in (client, pinger):
            if closing is not None:
                await asyncio.to_thread(closing.close)

    # -- helpers (they run in a thread, with a client) -----------------------------------------

    def _where(self) -> str:
        endpoint = self._config.endpoint_url
        return urllib.parse.urlsplit(endpoint).netloc if endpoint else "AWS S3"

    def _full(self, key: str) -> str:
        return f"{self._root}/{key}" if self._root else key

    def _folder_prefix(self, folder: str) -> str:
        """The object name prefix of every key in ``folder`` (``""``: the whole store)."""
        if folder:
            return self._full(folder) + "/"
        return f"{self._root}/" if self._root else ""

    def _s3(self) -> Any:
        with self._client_lock:
            if self._client is None:
                self._client = _new_client(self._config)
            return self._client

    async def _run(self, work: Callable[[Any], _T], key: str) -> _T:
        def call() -> _T:
            with _translated(self._bucket, key):
                return work(self._s3())

        return await asyncio.to_thread(call)

    def _head(self, client: Any, key: str) -> int | None:
        """The size of ``key``, or ``None`` when there is no such object."""
        try:
            answer = client.head_object(Bucket=self._bucket, Key=self._full(key))
        except botocore.exceptions.ClientError as exc:
            if _code(exc) in _MISSING_KEY_CODES:
                return None
            raise
        return int(answer["ContentLength"])

    def _upload_path(self, client: Any, key: str, source: Path) -> None:
        with source.open("rb") as file:
            self._upload(client, key, file)

    def _upload(self, client: Any, key: str, file: Any) -> None:
        content_type = _content_type(key)
        try:
            client.upload_fileobj(
                file,
                self._bucket,
                self._full(key),
                ExtraArgs={"ContentType": content_type},
                Config=_TRANSFER,
            )
        except boto3.exceptions.S3UploadFailedError as exc:
            # boto3 wraps the service's answer in a message; the original is the context.
            cause = exc.__cause__ or exc.__context__
            if isinstance(
                cause, botocore.exceptions.ClientError | botocore.exceptions.BotoCoreError
            ):
                raise cause from exc
            raise errors.Unavailable(
                f"the upload of {key!r} to the bucket {self._bucket!r} failed"
            ) from exc

    def _iter_objects(self, client: Any, name_prefix: str) -> Iterator[str]:
        paginator = client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self._bucket, Prefix=name_prefix):
            for item in page.get("Contents", ()):
                yield str(item["Key"])

    def _list(self, client: Any, folder: str) -> list[str]:
        cut = len(f"{self._root}/") if self._root else 0
        keys = []
        for name in self._iter_objects(client, self._folder_prefix(folder)):
            key = name[cut:]
            try:
                keys.append(base.check_key(key))
            except errors.InvalidInput:
                continue
        return keys

    def _delete(self, client: Any, folder: str) -> int:
        names = list(self._iter_objects(client, self._folder_prefix(folder)))
        for start in range(0, len(names), _DELETE_BATCH):
            batch = names[start : start + _DELETE_BATCH]
            answer = client.delete_objects(
                Bucket=self._bucket,
                Delete={"Objects": [{"Key": name} for name in batch], "Quiet": True},
            )
            failed = answer.get("Errors") or []
            if failed:
                first = failed[0]
                raise botocore.exceptions.ClientError(
                    {"Error": {"Code": first.get("Code", ""), "Message": first.get("Message", "")}},
                    "DeleteObjects",
                )
        return len(names)

    def _check_free(self, client: Any, key: str) -> None:
        """Refuse a key that is a folder of other keys, or inside a key that is a file."""
        segments = key.split("/")
        for end in range(1, len(segments)):
            if self._head(client, "/".join(segments[:end])) is not None:
                raise errors.Conflict(
                    f"blob key {key!r} is inside a key that is a file, not a folder"
                )
        answer = client.list_objects_v2(
            Bucket=self._bucket, Prefix=self._full(key) + "/", MaxKeys=1
        )
        if answer.get("Contents"):
            raise errors.Conflict(f"blob key {key!r} is a folder of other keys")

    def _check_tree(self, client: Any, folder: str, keys: Sequence[str]) -> None:
        """:meth:`_check_free` for a whole tree: one listing, and a ``HEAD`` per parent of it."""
        segments = folder.split("/") if folder else []
        for end in range(1, len(segments) + 1):
            parent = "/".join(segments[:end])
            if self._head(client, parent) is not None:
                raise errors.Conflict(
                    f"blob key {parent!r} is a file: it cannot hold the folder {folder!r}"
                )
        existing = set(self._list(client, folder))
        existing_folders = {
            key.rsplit("/", depth)[0] for key in existing for depth in range(1, key.count("/") + 1)
        }
        depth_of_folder = len(segments)
        for key in keys:
            if key in existing_folders:
                raise errors.Conflict(f"blob key {key!r} is a folder of other keys")
            parts = key.split("/")
            for end in range(depth_of_folder + 1, len(parts)):
                if "/".join(parts[:end]) in existing:
                    raise errors.Conflict(
                        f"blob key {key!r} is inside a key that is a file, not a folder"
                    )


def _new_client(config: S3Config) -> Any:
    """A boto3 S3 client for ``config`` (path-style addressing on custom endpoints)."""
    options = botocore.config.Config(
        region_name=config.region,
        signature_version="s3v4",
        connect_timeout=config.connect_timeout_s,
        read_timeout=config.read_timeout_s,
        retries={"max_attempts": config.max_attempts, "mode": "standard"},
        # A custom endpoint rarely resolves ``bucket.host`` names: address buckets by path.
        s3={"addressing_style": "path" if config.endpoint_url else "auto"},
        # Compute checksums only where S3 requires them: older S3-compatible services refuse the
        # newer default trailers.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    session = boto3.session.Session()
    return session.client(
        "s3",
        endpoint_url=config.endpoint_url,
        aws_access_key_id=config.access_key_id,
        aws_secret_access_key=config.secret_access_key,
        config=options,
    )


@contextlib.contextmanager
def _translated(bucket: str, key: str) -> Iterator[None]:
    """Turn boto3's exceptions into the error tree: the one place that knows about them."""
    where = f"{key!r} in the bucket {bucket!r}" if key else f"the bucket {bucket!r}"
    try:
        yield
    except botocore.exceptions.ClientError as exc:
        code = _code(exc)
        status = _status(exc)
        if code in _MISSING_KEY_CODES and code != "404":
            raise errors.NotFound(f"no such blob key: {key}") from exc
        if code in _REFUSALS:
            raise errors.ConfigurationError(_REFUSALS[code].format(bucket=bucket)) from exc
        if code in _TRANSIENT_CODES or status >= 500 or status == 429:
            raise errors.Unavailable(
                f"the storage service did not handle {where} now ({code or status})"
            ) from exc
        if code == "404":
            raise errors.NotFound(f"no such blob key: {key}") from exc
        raise errors.ConfigurationError(
            f"the storage service refused {where}: {code or status}"
        ) from exc
    except (
        botocore.exceptions.NoCredentialsError,
        botocore.exceptions.PartialCredentialsError,
    ) as exc:
        raise errors.ConfigurationError("no S3 credentials were configured") from exc
    except botocore.exceptions.ParamValidationError as exc:
        raise errors.ConfigurationError(f"the S3 request for {where} is not valid") from exc
    except botocore.exceptions.BotoCoreError as exc:
        # Connection refused or reset, timeouts, DNS failures, a truncated answer.
        raise errors.Unavailable(
            f"the storage service could not be reached for {where}: {type(exc).__name__}"
        ) from exc


def _code(exc: botocore.exceptions.ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _status(exc: botocore.exceptions.ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)


def _credentials(parts: urllib.parse.SplitResult) -> tuple[str | None, str | None]:
    if "@" not in parts.netloc:
        return None, None
    userinfo = parts.netloc.rpartition("@")[0]
    user, sep, password = userinfo.partition(":")
    return urllib.parse.unquote(user), (urllib.parse.unquote(password) if sep else None)


def _check_endpoint(endpoint: str) -> None:
    parts = urllib.parse.urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise errors.ConfigurationError("the S3 endpoint must be an http:// or https:// URL")
    if "@" in parts.netloc:
        raise errors.ConfigurationError("the S3 endpoint must not hold credentials")


def _is_manifest(key: str) -> bool:
    return os.path.splitext(key)[1].lower() in (".m3u8", ".mpd")


def _content_type(key: str) -> str:
    suffix = os.path.splitext(key)[1].lower()
    if suffix in _CONTENT_TYPES:
        return _CONTENT_TYPES[suffix]
    guessed, _ = mimetypes.guess_type(key)
    return guessed or "application/octet-stream"
