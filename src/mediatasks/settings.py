"""Configuration: one ``Settings`` object, read from ``MEDIATASKS_*`` variables, passed explicitly.

Nothing here is created at import time: ``Settings()`` is called by the command line (or a test)
and handed to ``create_app`` and ``Worker``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from mediatasks import errors

__all__ = ["Settings"]


class Settings(BaseSettings):
    """Every setting of the service, with its ``MEDIATASKS_`` environment variable."""

    model_config = SettingsConfigDict(env_prefix="MEDIATASKS_", extra="ignore")

    #: Folder for the SQLite database, media and work files of the embedded shape.
    data_dir: Path = Path("./data")
    #: ``sqlite:///path`` or ``postgresql://...``; empty means ``sqlite`` in ``data_dir``.
    #: ``DATABASE_URL`` is read too, as most hosting platforms set it.
    database_url: str = Field(
        default="",
        validation_alias=AliasChoices("MEDIATASKS_DATABASE_URL", "DATABASE_URL"),
    )
    #: Public base URL of the API, used in playback URLs; empty means the request's own host.
    public_url: str = ""
    #: Address the HTTP service (and a worker's metrics port) listens on; ``0.0.0.0`` for all.
    host: str = "127.0.0.1"
    #: Port of the HTTP service.
    port: int = 8000

    #: Tasks one worker process runs at once.
    concurrency: int = Field(default=2, ge=1, le=256)
    #: How long a claim lasts without a beat before the rescuer takes it back.  This bounds a
    #: worker that hangs; one that dies is noticed sooner (``worker_silent_s``).
    lease_s: float = Field(default=10.0, gt=0)
    #: How often a worker beats: one statement that extends every lease it holds, tells which it
    #: lost (cancelled tasks stop within this), and saves changed progress.
    heartbeat_interval_s: float = Field(default=1.0, gt=0)
    #: How often a worker looks for work when it was not woken up (SQLite; a safety net on PG).
    poll_interval_s: float = Field(default=0.5, gt=0)
    #: How often the rescuer looks for tasks whose worker is gone.
    rescue_interval_s: float = Field(default=1.0, gt=0)
    #: A worker silent for this long whose database session is gone (PostgreSQL), or whose
    #: process is gone (same machine), is dead: its tasks run again at once.
    worker_silent_s: float = Field(default=3.0, gt=0)
    #: Times a task may lose its worker before it fails.  Rescues do not spend the task's
    #: retries (a dead worker is not the input's fault), but a task that keeps killing its
    #: workers stops here.
    max_rescues: int = Field(default=3, ge=0, le=100)
    #: Finished tasks are saved in batches: at most this many in one statement...
    outcome_batch_size: int = Field(default=100, ge=1, le=1000)
    #: ...and none waits longer than this for its batch to be written.
    outcome_flush_s: float = Field(default=0.1, ge=0)
    #: How long one task store call may take (waiting for a connection or a lock included)
    #: before it fails as unavailable: an API request then answers 503.
    store_timeout_s: float = Field(default=1.5, gt=0)
    #: On SIGTERM, how long running tasks may go on before they are handed back.
    shutdown_grace_s: float = Field(default=30.0, ge=0)
    #: Automatic retries of a task whose attempt failed with a retriable error.
    max_retries: int = Field(default=2, ge=0, le=100)
    #: Back-off before each automatic retry; the last value repeats.
    retry_backoff_s: list[float] = Field(default_factory=lambda: [30.0, 180.0])

    #: Accept source URLs that resolve to loopback, private or link-local addresses (tests only).
    allow_private_urls: bool = False
    #: Largest source file that a URL import downloads.
    max_source_bytes: int = Field(default=16 * 1024**3, gt=0)
    #: Seconds to wait for a source server to connect or to send the next bytes.
    download_timeout_s: float = Field(default=30.0, gt=0)
    #: Seconds a whole download may take.
    download_total_timeout_s: float = Field(default=3600.0, gt=0)

    #: Largest JSON request body that ``/api`` reads; a larger one answers 413.
    max_json_body_bytes: int = Field(default=1024 * 1024, gt=0)
    #: Longest ``name`` (of an asset, a webhook...) that ``/api`` accepts, in characters.
    max_name_chars: int = Field(default=500, gt=0)
    #: Longest other string in an ``/api`` request body (URLs, ids, metadata), in characters.
    max_string_chars: int = Field(default=8192, gt=0)
    #: Deepest nesting of objects and arrays in an ``/api`` request body.
    max_json_depth: int = Field(default=32, gt=0)
    #: The most renditions a request's ``profiles`` may ask for; more answer 422.
    max_profiles: int = Field(default=10, ge=1, le=1000)
    #: The widest and tallest rendition a request may ask for (8K); larger answer 422.
    max_profile_size_px: int = Field(default=7680, ge=128)
    #: The highest rendition bitrate a request may ask for (Livepeer's ceiling, 288 Mb/s).
    max_profile_bitrate_bps: int = Field(default=288_000_000, ge=400)
    #: The highest rendition frame rate (``fps / fpsDen``) a request may ask for.
    max_profile_fps: float = Field(default=240.0, ge=1)
    #: The longest keyframe interval (``gop``) a request may ask for.
    max_profile_gop_s: float = Field(default=60.0, ge=0)
    #: The longest source encoded; a longer one fails its task before encoding (12 hours).
    max_source_duration_s: float = Field(default=12 * 3600.0, gt=0)
    #: The fewest bits of file per second of video: a file of a few kilobytes whose timestamps
    #: claim hours is damaged or crafted, and fails its task before encoding.
    min_source_bitrate_bps: float = Field(default=1000.0, ge=0)
    #: The fewest bytes of file per frame that the ladder would encode; fewer fail the task
    #: before encoding.
    min_source_bytes_per_frame: float = Field(default=1.0, ge=0)
    #: The most segments per rendition; more fail the task before encoding (ask for longer
    #: ``targetSegmentSizeSecs``).
    max_segments: int = Field(default=10_000, ge=1)
    #: The most bytes a ladder may write, all renditions and MP4s: a ladder whose bitrates
    #: predict more fails before encoding, an encode that writes more is stopped.
    max_output_bytes: int = Field(default=64 * 1024**3, gt=0)

    #: An FFmpeg binary to use instead of the one in the ``imageio-ffmpeg`` wheel.
    ffmpeg_path: str = ""
    #: x264 preset for the ladder: a speed/size trade-off.
    x264_preset: str = "veryfast"
    #: Keyframe thumbnails (one per segment, in Livepeer's ``thumbnails/`` layout) and a
    #: storyboard (sprite sheets for scrubbing previews) for every uploaded asset and clip, taken
    #: from the ladder's own decode.
    thumbnails: bool = True
    #: Storyboard tiles fit in a square of this many pixels (160 makes 160x90 tiles of 16:9).
    storyboard_tile_px: int = Field(default=160, ge=16, le=1024)
    #: The most tiles in a storyboard: a longer video gets its tiles further apart.
    storyboard_max_tiles: int = Field(default=200, ge=1, le=10_000)
    #: The least time between two storyboard tiles.
    storyboard_interval_s: float = Field(default=1.0, gt=0, le=3600)

    #: Seconds one webhook delivery attempt may take.
    webhook_timeout_s: float = Field(default=30.0, gt=0)
    #: Attempts per webhook delivery before it is given up.
    webhook_max_attempts: int = Field(default=33, ge=1)
    #: Wait before the first webhook retry; it doubles each time, up to ``webhook_backoff_cap_s``.
    webhook_backoff_s: float = Field(default=5.0, ge=0)
    #: The longest wait between two webhook attempts.
    webhook_backoff_cap_s: float = Field(default=3600.0, ge=0)
    #: How often the webhook sender looks for new events and due retries.
    webhook_poll_interval_s: float = Field(default=0.5, gt=0)
    #: Progress webhooks (``task.updated``) of a running task: at most one per this many seconds,
    #: unless progress crosses a quarter (0.25, 0.5, 0.75).
    progress_event_interval_s: float = Field(default=10.0, ge=0)

    #: Seconds the webhook of an asset's ``webhook`` playback policy may take to answer; a
    #: webhook that does not answer in time refuses playback.
    playback_webhook_timeout_s: float = Field(default=10.0, gt=0)
    #: How long an access key that a playback webhook allowed is remembered when the policy has
    #: no ``refreshInterval`` of its own (Livepeer's default).
    playback_refresh_interval_s: float = Field(default=600.0, ge=0)

    #: ``development`` allows conveniences that production refuses.
    environment: str = "development"

    @field_validator("retry_backoff_s")
    @classmethod
    def _backoff_not_empty(cls, value: list[float]) -> list[float]:
        if not value or any(v < 0 for v in value):
            raise ValueError("retry_backoff_s needs at least one non-negative value")
        return value

    @model_validator(mode="after")
    def _refuse_insecure(self) -> Settings:
        if self.environment != "development" and self.allow_private_urls:
            raise errors.ConfigurationError(
                "allow_private_urls is only allowed when environment is 'development'"
            )
        if self.heartbeat_interval_s >= self.lease_s:
            raise errors.ConfigurationError("heartbeat_interval_s must be shorter than lease_s")
        return self

    @property
    def resolved_database_url(self) -> str:
        """The task store URL, defaulting to a SQLite file in ``data_dir``."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'mediatasks.db').resolve()}"

    @property
    def media_dir(self) -> Path:
        """Where the local blob store keeps published media."""
        return self.data_dir / "media"

    @property
    def work_dir(self) -> Path:
        """Where workers stage files of running tasks."""
        return self.data_dir / "work"

    def backoff_for(self, retries_done: int) -> float:
        """Seconds to wait before the retry that follows ``retries_done`` earlier retries."""
        index = min(retries_done, len(self.retry_backoff_s) - 1)
        return self.retry_backoff_s[index]

    #: Signs the links that work without an API key: upload URLs and the download links of Flat
    #: task results, and the dashboard's session cookies.  Empty means a random key generated
    #: once and kept in ``data_dir/secret-key``; the scaled shape (several API processes) must
    #: set the same ``MEDIATASKS_SECRET_KEY`` on every one of them.
    secret_key: str = Field(default="", repr=False)
    #: Failed dashboard sign-ins one client address may make within ``sign_in_window_s``; the
    #: next are refused (429, with ``Retry-After``) until the oldest of them is that old.
    #: Counted per API process, by the address uvicorn gives (behind a proxy it trusts, set by
    #: ``FORWARDED_ALLOW_IPS``, the client's).  0 turns the limit off.
    sign_in_max_failures: int = Field(default=10, ge=0)
    #: The moving window, in whole seconds, over which ``sign_in_max_failures`` counts.
    sign_in_window_s: int = Field(default=300, ge=1)

    #: IPFS exports go to this kubo RPC API (``http://127.0.0.1:5001``), as ``POST
    #: /api/v0/add?cid-version=1``.  With neither it nor ``pinata_jwt`` set, an export to IPFS is
    #: refused unless the request brings its own Pinata credentials: a CID that no node serves
    #: would be a false success.
    ipfs_api_url: str = ""
    #: Pinata's API: used with a request's own Pinata credentials, or with ``pinata_jwt``.
    pinata_api_url: str = "https://api.pinata.cloud"
    #: A Pinata JWT that pins the IPFS exports of every project when ``ipfs_api_url`` is not set.
    pinata_jwt: str = Field(default="", repr=False)
    #: The IPFS gateway: ``ipfs://<cid>`` imports are fetched from ``<it>/ipfs/<cid>``, and
    #: exports' ``videoFileGatewayUrl`` and ``storage.ipfs.gatewayUrl`` point there.
    ipfs_gateway_url: str = "https://ipfs.io"
    #: The Arweave gateway: ``ar://<id>`` imports are fetched from ``<it>/<id>``.
    arweave_gateway_url: str = "https://arweave.net"
    #: The player that a ``player`` NFT metadata template links to (``animation_url`` with
    #: ``?v=<playbackId>&loop=1``, ``external_url`` with ``?v=<playbackId>``).  Livepeer's own
    #: player by default; point it at a player that reaches this service.
    nft_player_url: str = "https://lvpr.tv/"
    #: Seconds an export target or an IPFS service may take to connect, or to take or send the
    #: next bytes.
    export_timeout_s: float = Field(default=60.0, gt=0)

    #: Where published media go: empty means the folder ``data_dir/media``.  ``s3://bucket/prefix``
    #: puts them in an S3-compatible bucket, reached with the ``s3_*`` settings below (the ``s3``
    #: extra installs boto3); ``/media`` then serves them through this service.
    blob_store_url: str = Field(default="", repr=False)
    #: The endpoint of an ``s3://`` blob store (``http://127.0.0.1:9000`` for MinIO); empty means
    #: AWS itself.
    s3_endpoint_url: str = ""
    #: The region that requests to the blob store's bucket are signed for.
    s3_region: str = "us-east-1"
    #: The blob store bucket's credentials; empty means boto3's own chain (``AWS_*`` variables,
    #: ``~/.aws``, an instance role).
    s3_access_key_id: str = Field(default="", repr=False)
    #: The secret that goes with ``s3_access_key_id``.
    s3_secret_access_key: str = Field(default="", repr=False)
    #: Create the blob store's bucket at start-up when it does not exist (``--create-bucket``);
    #: otherwise a missing bucket stops ``serve`` and ``worker`` at once.
    s3_create_bucket: bool = False

    #: ``text`` (one line per record) or ``json`` (one JSON object per line, for log shippers).
    log_format: Literal["text", "json"] = "text"
    #: The lowest level logged: ``debug``, ``info``, ``warning``, ``error``.
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    #: A worker's Prometheus metrics on ``http://<host>:<port>/metrics``; 0 serves none.  (An API
    #: process serves its metrics at ``/metrics`` on its own port.)
    metrics_port: int = Field(default=0, ge=0, le=65535)
    #: ``/readyz`` answers 503 when the task store or the media store takes longer than this:
    #: below the 1 s that health probes usually wait, so a probe gets the 503 that names the
    #: part rather than a time-out of its own.
    readiness_timeout_s: float = Field(default=0.8, gt=0)

    #: The General MIDI SoundFont (``.sf2``) that audio exports play with; empty means TimGM6mb,
    #: which the ``pretty-midi`` wheel ships.  A larger SoundFont sounds better (Debian's
    #: ``fluid-soundfont-gm``: ``/usr/share/sounds/sf2/FluidR3_GM.sf2``).
    soundfont_path: str = ""
