"""Tests of ``mediatasks.fetch``: URL checks, redaction, and downloads from a real HTTP server.

The server is ``http.server`` in a thread on 127.0.0.1 with an ephemeral port; nothing here sends
traffic anywhere else.  Public addresses such as 93.184.216.34 are only validated, never contacted.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import itertools
import random
import re
import socket
import threading
import time
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from mediatasks import errors, fetch

PAYLOAD = random.Random(1234).randbytes(300_000)
PAYLOAD_SHA256 = hashlib.sha256(PAYLOAD).hexdigest()
#: Several write batches' worth.
BIG_PAYLOAD = random.Random(99).randbytes(3_500_000)
MB = 1024 * 1024


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        #: Set at teardown to release handlers that are holding a connection open on purpose.
        self.stop = threading.Event()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Stay quiet: several tests hang up on the server in the middle of an answer."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet."""

    def do_GET(self) -> None:
        parts = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(parts.query))
        route = parts.path
        if route == "/file":
            self._send(200, PAYLOAD, content_type="video/mp4")
        elif route == "/big":
            self._send(200, BIG_PAYLOAD)
        elif route == "/empty":
            self._send(200, b"")
        elif route.startswith("/status/"):
            self._send(int(route.removeprefix("/status/")), b"no")
        elif route == "/chunked":
            size_bytes = int(query.get("size_bytes", len(PAYLOAD)))
            self._send_chunked(
                PAYLOAD[:size_bytes],
                pieces=int(query.get("pieces", 10)),
                pause_s=float(query.get("pause_s", 0)),
            )
        elif route == "/redirect":
            self._redirect(query["to"])
        elif route.startswith("/loop/"):
            self._redirect(f"/loop/{int(route.removeprefix('/loop/')) + 1}")
        elif route == "/truncated":
            self._start(200, content_length=len(PAYLOAD))
            self.wfile.write(PAYLOAD[:1000])
            self.close_connection = True
        elif route == "/stall":
            self._start(200, content_length=len(PAYLOAD))
            self.wfile.write(PAYLOAD[:1000])
            self.server.stop.wait(5)
            self.close_connection = True
        elif route == "/drip":
            self._start(200, chunked=True)
            deadline = time.monotonic() + 5
            while not self.server.stop.is_set() and time.monotonic() < deadline:
                self._write_chunk(b"x" * 100)
                time.sleep(0.05)
            self.close_connection = True
        elif route == "/host":
            self._send(200, (self.headers.get("Host") or "").encode())
        elif route == "/auth":
            expected = "Basic " + base64.b64encode(b"user:pa ss").decode()
            if self.headers.get("Authorization") == expected:
                self._send(200, b"secret")
            else:
                self._send(401, b"who are you")
        else:
            self._send(404, b"no such route")

    def _start(
        self,
        status: int,
        *,
        content_length: int | None = None,
        chunked: bool = False,
        content_type: str | None = None,
    ) -> None:
        self.send_response(status)
        if content_length is not None:
            self.send_header("Content-Length", str(content_length))
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        if content_type is not None:
            self.send_header("Content-Type", content_type)
        self.end_headers()

    def _send(self, status: int, body: bytes, *, content_type: str | None = None) -> None:
        self._start(status, content_length=len(body), content_type=content_type)
        self.wfile.write(body)

    def _send_chunked(self, body: bytes, *, pieces: int, pause_s: float) -> None:
        self._start(200, chunked=True)
        step = max(1, -(-len(body) // pieces))
        for start in range(0, len(body), step):
            self._write_chunk(body[start : start + step])
            time.sleep(pause_s)
        self.wfile.write(b"0\r\n\r\n")

    def _write_chunk(self, chunk: bytes) -> None:
        self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")

    def _redirect(self, location: str) -> None:
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    """Base URL of a small HTTP server on 127.0.0.1."""
    httpd = _Server()
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.stop.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join()


@pytest.fixture
def silent_url() -> Iterator[str]:
    """A URL whose server accepts connections (the kernel does) but never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/video.mp4"


@pytest.fixture
def refused_url() -> str:
    """A URL on a port where nothing listens."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/video.mp4"


async def _download(
    url: str,
    dest: Path,
    *,
    allow_private: bool = True,
    max_bytes: int = 10 * MB,
    timeout_s: float = 5.0,
    total_timeout_s: float = 20.0,
    on_progress: fetch.ProgressFunc | None = None,
) -> fetch.Download:
    return await fetch.download(
        url,
        dest,
        allow_private=allow_private,
        max_bytes=max_bytes,
        timeout_s=timeout_s,
        total_timeout_s=total_timeout_s,
        on_progress=on_progress,
    )


# -- check_url ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://example.com/video.mp4", "url must use http or https"),
        ("file:///etc/passwd", "url must use http or https"),
        ("gopher://example.com/", "url must use http or https"),
        ("example.com/video.mp4", "url must use http or https"),
        ("http:///video.mp4", "url must have a host"),
        ("http://example.com/a\nb", "url must not contain control characters"),
        ("http://exa mple.com/", "url has an invalid host"),
        ("http://example.com:70000/", "url has an invalid port"),
        ("http://127.0.0.1/", "url points to a loopback address, which is not allowed"),
        ("http://127.0.0.1:8080/video.mp4", "loopback"),
        ("http://127.1/", "loopback"),
        ("http://0x7f.0.0.1/", "loopback"),
        ("http://2130706433/", "loopback"),
        ("http://0177.1/", "loopback"),
        ("http://[2002:7f00:1::]/", "loopback"),
        ("http://[64:ff9b::a00:1]/", "private"),
        ("http://127.0.0.1./", "loopback"),
        ("http://[::1]/", "loopback"),
        ("http://[::1]:8000/video.mp4", "loopback"),
        ("http://[::ffff:127.0.0.1]/", "loopback"),
        ("http://localhost/", "loopback"),
        ("http://LOCALHOST:8000/", "loopback"),
        ("http://api.localhost/", "loopback"),
        ("http://10.0.0.7/", "url points to a private address, which is not allowed"),
        ("http://172.16.5.4/", "private"),
        ("http://192.168.1.10/video.mp4", "private"),
        ("http://[fd12:3456::1]/", "private"),
        ("http://[::ffff:10.0.0.1]/", "private"),
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://[fe80::1]/", "link-local"),
        ("http://100.64.0.1/", "shared"),
        ("http://224.0.0.251/", "multicast"),
        ("http://[ff02::1]/", "multicast"),
        ("http://0.0.0.0/", "unspecified"),
        ("http://[::]/", "unspecified"),
        ("http://240.0.0.1/", "reserved"),
    ],
)
def test_check_url_refuses(url: str, message: str) -> None:
    with pytest.raises(errors.UnsafeURL, match=message):
        fetch.check_url(url, allow_private=False)


@pytest.mark.parametrize(
    "url",
    [
        "http://93.184.216.34/video.mp4",
        "https://93.184.216.34:8443/video.mp4?x=1",
        "https://[2606:2800:220:1:248:1893:25c8:1946]/video.mp4",
        "https://example.com/video.mp4",
        "https://user:password@example.com/video.mp4",
        "https://bücher.example/video.mp4",
        # A name, not an address: download() resolves it and checks what it resolves to.
        "http://internal.example.com/",
    ],
)
def test_check_url_allows_public(url: str) -> None:
    fetch.check_url(url, allow_private=False)


def test_check_url_allow_private_skips_only_the_address_checks() -> None:
    fetch.check_url("http://127.0.0.1:8000/", allow_private=True)
    fetch.check_url("http://localhost/", allow_private=True)
    fetch.check_url("http://[::1]/", allow_private=True)
    with pytest.raises(errors.UnsafeURL, match="http or https"):
        fetch.check_url("file:///etc/passwd", allow_private=True)


def test_unsafe_url_is_invalid_input() -> None:
    with pytest.raises(errors.InvalidInput):
        fetch.check_url("ftp://example.com/", allow_private=False)


# -- redact_url -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://example.com/video.mp4", "https://example.com/video.mp4"),
        ("https://example.com/v.mp4?quality=hd&t=3", "https://example.com/v.mp4?quality=hd&t=3"),
        (
            "s3+https://AKIAEXAMPLE:wJalrXUtnFEMI@gateway.storjshare.io/bucket/in.mp4",
            "s3+https://***:***@gateway.storjshare.io/bucket/in.mp4",
        ),
        ("https://user:pw@example.com:8443/a", "https://***:***@example.com:8443/a"),
        ("https://tokenonly@example.com/a", "https://***:***@example.com/a"),
        (
            "https://b.s3.amazonaws.com/in.mp4?X-Amz-Algorithm=AWS4-HMAC-SHA256"
            "&X-Amz-Credential=AKIA%2F20240101&X-Amz-Signature=abc123&X-Amz-Expires=3600",
            "https://b.s3.amazonaws.com/in.mp4?X-Amz-Algorithm=AWS4-HMAC-SHA256"
            "&X-Amz-Credential=***&X-Amz-Signature=***&X-Amz-Expires=3600",
        ),
        (
            "https://x.example/v?token=abc&key=k1&secret=s&sig=z&api_key=q&id=7",
            "https://x.example/v?token=***&key=***&secret=***&sig=***&api_key=***&id=7",
        ),
        (
            "https://x.example/v?X-Amz-Security-Token=t&access_token=a",
            "https://x.example/v?X-Amz-Security-Token=***&access_token=***",
        ),
        ("https://x.example/v#access_token=abc&x=1", "https://x.example/v#access_token=***&x=1"),
        ("https://x.example/v?flag&token", "https://x.example/v?flag&token"),
    ],
)
def test_redact_url(url: str, expected: str) -> None:
    assert fetch.redact_url(url) == expected


def test_redact_url_never_raises() -> None:
    assert fetch.redact_url("http://u:p@[::1/x") == "http://***:***@[::1/x"
    assert fetch.redact_url("not a url") == "not a url"


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/video-1.mp4",
        "https://media.test/a/b/c.mp4",
        "s3+https://gateway.test/bucket/in.mp4",
        "ipfs://bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi",
        "https://media.test",
        "https://media.test/p@q/r",
        # Not plain: split and joined again, as before.
        "HTTPS://media.test/a",
        "https://media.test/a?",
        "https://media.test/a#",
        "https://media.test/a b",
        "https://[::1]:8000/a",
        "https:/media.test/a",
        "https://media.test/é.mp4",
    ],
)
def test_redact_url_gives_back_what_splitting_and_joining_gives(url: str) -> None:
    """A plain URL is given back without being split: the answer must not change for it."""
    joined = urllib.parse.urlunsplit(urllib.parse.urlsplit(url))
    assert fetch.redact_url(url) == joined


# -- resolving and redirect checks ----------------------------------------------------------------


async def test_resolve_url_returns_public_literal_without_lookup() -> None:
    addresses = await fetch.resolve_url(
        "http://93.184.216.34/video.mp4", allow_private=False, timeout_s=5
    )
    assert addresses == [ipaddress.ip_address("93.184.216.34")]


async def test_resolve_url_allows_loopback_only_when_asked() -> None:
    addresses = await fetch.resolve_url("http://localhost:8000/", allow_private=True, timeout_s=5)
    loopback = {ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")}
    assert loopback & set(addresses)
    with pytest.raises(errors.UnsafeURL, match="loopback"):
        await fetch.resolve_url("http://localhost:8000/", allow_private=False, timeout_s=5)


async def test_names_are_refused_by_what_they_resolve_to() -> None:
    # check_url already refuses "localhost" by name; go straight to the resolver's own check.
    with pytest.raises(errors.UnsafeURL, match="url host localhost resolves to a loopback"):
        await fetch._resolve(httpx.URL("http://localhost/"), False, 5.0)


@pytest.mark.parametrize(
    ("location", "message"),
    [
        ("http://127.0.0.1/admin", "loopback"),
        ("http://[::1]:6379/", "loopback"),
        ("http://localhost/", "loopback"),
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://10.1.2.3/", "private"),
        ("file:///etc/passwd", "http or https"),
        ("ftp://93.184.216.34/x", "http or https"),
    ],
)
def test_redirects_are_checked_like_the_first_url(location: str, message: str) -> None:
    start = httpx.URL("http://93.184.216.34/start")
    with pytest.raises(errors.UnsafeURL, match=message):
        fetch._redirect_target(start, location, allow_private=False)


def test_relative_redirects_resolve_against_the_current_url() -> None:
    start = httpx.URL("https://user:pw@93.184.216.34/a/b?x=1")
    target = fetch._redirect_target(start, "../c#frag", allow_private=False)
    assert str(target) == "https://user:pw@93.184.216.34/c"


# -- download -------------------------------------------------------------------------------------


async def test_download_saves_the_file_with_its_hash(server: str, tmp_path: Path) -> None:
    dest = tmp_path / "source.mp4"
    result = await _download(f"{server}/file", dest)
    assert result == fetch.Download(
        size_bytes=len(PAYLOAD),
        sha256=PAYLOAD_SHA256,
        content_type="video/mp4",
        final_url=f"{server}/file",
    )
    assert dest.read_bytes() == PAYLOAD


async def test_download_of_a_file_larger_than_one_write(server: str, tmp_path: Path) -> None:
    dest = tmp_path / "source.mp4"
    result = await _download(f"{server}/big", dest)
    assert result.size_bytes == len(BIG_PAYLOAD)
    assert result.sha256 == hashlib.sha256(BIG_PAYLOAD).hexdigest()
    assert dest.read_bytes() == BIG_PAYLOAD


async def test_download_without_content_length(server: str, tmp_path: Path) -> None:
    dest = tmp_path / "source.mp4"
    result = await _download(f"{server}/chunked", dest)
    assert (result.size_bytes, result.sha256, result.content_type) == (
        len(PAYLOAD),
        PAYLOAD_SHA256,
        None,
    )
    assert dest.read_bytes() == PAYLOAD


async def test_download_follows_redirects(server: str, tmp_path: Path) -> None:
    dest = tmp_path / "source.mp4"
    result = await _download(f"{server}/redirect?to=/redirect%3Fto%3D/file", dest)
    assert result.final_url == f"{server}/file"
    assert result.sha256 == PAYLOAD_SHA256


async def test_download_gives_up_after_five_redirects(server: str, tmp_path: Path) -> None:
    dest = tmp_path / "source.mp4"
    with pytest.raises(errors.Unretriable, match="redirected more than 5 times"):
        await _download(f"{server}/loop/0", dest)
    assert not dest.exists()


async def test_download_refuses_a_redirect_to_another_scheme(server: str, tmp_path: Path) -> None:
    dest = tmp_path / "source.mp4"
    with pytest.raises(errors.Unretriable, match="url must use http or https") as caught:
        await _download(f"{server}/redirect?to=file:///etc/passwd", dest)
    assert isinstance(caught.value.__cause__, errors.UnsafeURL)
    assert not dest.exists()


async def test_download_refuses_loopback_unless_private_is_allowed(
    server: str, tmp_path: Path
) -> None:
    dest = tmp_path / "source.mp4"
    for url in (f"{server}/file", f"{server.replace('127.0.0.1', 'localhost')}/file"):
        with pytest.raises(errors.Unretriable, match="loopback address, which is not allowed"):
            await _download(url, dest, allow_private=False)
        assert not dest.exists()
    result = await _download(f"{server}/file", dest, allow_private=True)
    assert result.sha256 == PAYLOAD_SHA256


async def test_download_connects_to_the_checked_address_with_the_original_host(
    server: str, tmp_path: Path
) -> None:
    # The request goes to the resolved address; the server must still see the name it was given.
    url = server.replace("127.0.0.1", "localhost")
    dest = tmp_path / "host.txt"
    await _download(f"{url}/host", dest)
    assert dest.read_text() == url.removeprefix("http://")


async def test_download_sends_credentials_from_the_url(server: str, tmp_path: Path) -> None:
    dest = tmp_path / "secret.bin"
    url = server.replace("http://", "http://user:pa%20ss@")
    await _download(f"{url}/auth", dest)
    assert dest.read_bytes() == b"secret"


@pytest.mark.parametrize(
    ("status", "failure", "message"),
    [
        (
            404,
            errors.Unretriable,
            "file could not be imported from URL: the server answered 404 Not Found",
        ),
        (403, errors.Unretriable, "the server answered 403 Forbidden"),
        (410, errors.Unretriable, "the server answered 410 Gone"),
        (300, errors.Unretriable, "the server answered 300 Multiple Choices"),
        (500, errors.SourceUnavailable, "the server answered 500 Internal Server Error"),
        (503, errors.SourceUnavailable, "the server answered 503 Service Unavailable"),
        (429, errors.SourceUnavailable, "the server answered 429 Too Many Requests"),
    ],
)
async def test_download_maps_http_errors(
    server: str, tmp_path: Path, status: int, failure: type[errors.TaskFailure], message: str
) -> None:
    dest = tmp_path / "source.mp4"
    with pytest.raises(failure) as caught:
        await _download(f"{server}/status/{status}", dest)
    assert type(caught.value) is failure
    assert caught.value.message.endswith(message)
    assert caught.value.detail is not None and str(status) in caught.value.detail
    assert not dest.exists()


async def test_redirect_without_location_is_unretriable(server: str, tmp_path: Path) -> None:
    dest = tmp_path / "source.mp4"
    with pytest.raises(errors.Unretriable, match="answered 302 Found without a Location"):
        await _download(f"{server}/status/302", dest)
    assert not dest.exists()


async def test_download_times_out_on_a_silent_server(silent_url: str, tmp_path: Path) -> None:
    dest = tmp_path / "source.mp4"
    started_s = time.monotonic()
    with pytest.raises(
        errors.SourceUnavailable, match=re.escape("the server did not answer within 0.5 s")
    ):
        await _download(silent_url, dest, timeout_s=0.5)
    assert time.monotonic() - started_s < 3
    assert not dest.exists()


async def test_download_times_out_when_the_body_stalls(server: str, tmp_path: Path) -> None:
    dest = tmp_path / "source.mp4"
    with pytest.raises(errors.SourceUnavailable, match=re.escape("did not answer within 0.5 s")):
        await _download(f"{server}/stall", dest, timeout_s=0.5)
    assert not dest.exists()


async def test_total_timeout_bounds_the_whole_download(server: str, tmp_path: Path) -> None:
    # The server sends a little every 50 ms, so no single wait ever reaches timeout_s.
    dest = tmp_path / "source.mp4"
    started_s = time.monotonic()
    with pytest.raises(
        errors.SourceUnavailable, match=re.escape("the download did not finish within 0.5 s")
    ):
        await _download(f"{server}/drip", dest, timeout_s=2, total_timeout_s=0.5)
    assert time.monotonic() - started_s < 2
    assert not dest.exists()


async def test_connection_refused_is_source_unavailable(refused_url: str, tmp_path: Path) -> None:
    dest = tmp_path / "source.mp4"
    with pytest.raises(errors.SourceUnavailable, match="could not connect to the server"):
        await _download(refused_url, dest)
    assert not dest.exists()


async def test_truncated_body_removes_the_partial_file(server: str, tmp_path: Path) -> None:
    dest = tmp_path / "source.mp4"
    with pytest.raises(errors.SourceUnavailable, match="closed the connection"):
        await _download(f"{server}/truncated", dest)
    assert not dest.exists()


async def test_size_limit_by_content_length(server: str, tmp_path: Path) -> None:
    dest = tmp_path / "source.mp4"
    with pytest.raises(
        errors.Unretriable, match=r"^the source file is larger than the limit of 1000 bytes$"
    ):
        await _download(f"{server}/file", dest, max_bytes=1000)
    assert not dest.exists()


async def test_size_limit_by_streamed_bytes(server: str, tmp_path: Path) -> None:
    dest = tmp_path / "source.mp4"
    with pytest.raises(errors.Unretriable, match="larger than the limit of 100000 bytes"):
        await _download(f"{server}/chunked", dest, max_bytes=100_000)
    assert not dest.exists()


async def test_size_limit_is_inclusive(server: str, tmp_path: Path) -> None:
    dest = tmp_path / "source.mp4"
    result = await _download(f"{server}/chunked", dest, max_bytes=len(PAYLOAD))
    assert result.size_bytes == len(PAYLOAD)


async def test_empty_file_is_unretriable(server: str, tmp_path: Path) -> None:
    dest = tmp_path / "source.mp4"
    with pytest.raises(errors.Unretriable, match=r"^the source file is empty$"):
        await _download(f"{server}/empty", dest)
    assert not dest.exists()


async def test_progress_is_throttled_and_reported_at_the_end(server: str, tmp_path: Path) -> None:
    reports: list[tuple[float, int, int | None]] = []

    async def on_progress(received_bytes: int, total_bytes: int | None) -> None:
        reports.append((time.monotonic(), received_bytes, total_bytes))

    dest = tmp_path / "source.mp4"
    # 20 pieces 50 ms apart: about a second of transfer.
    await _download(f"{server}/chunked?pieces=20&pause_s=0.05", dest, on_progress=on_progress)
    assert reports[-1][1:] == (len(PAYLOAD), None)
    assert 2 <= len(reports) <= 1 / fetch.PROGRESS_INTERVAL_S + 3
    received = [report[1] for report in reports]
    assert received == sorted(received)
    interim_times_s = [report[0] for report in reports[:-1]]
    gaps_s = [b - a for a, b in itertools.pairwise(interim_times_s)]
    assert all(gap_s >= fetch.PROGRESS_INTERVAL_S * 0.9 for gap_s in gaps_s)


async def test_progress_failure_removes_the_file(server: str, tmp_path: Path) -> None:
    async def on_progress(received_bytes: int, total_bytes: int | None) -> None:
        raise RuntimeError("reporting failed")

    dest = tmp_path / "source.mp4"
    with pytest.raises(RuntimeError, match="reporting failed"):
        await _download(f"{server}/file", dest, on_progress=on_progress)
    assert not dest.exists()


def test_a_refused_private_address_names_the_setting_that_allows_it() -> None:
    for url in ("http://127.0.0.1:8001/sample.mp4", "http://10.0.0.7/", "http://localhost/"):
        with pytest.raises(errors.UnsafeURL, match="MEDIATASKS_ALLOW_PRIVATE_URLS=true allows it"):
            fetch.check_url(url, allow_private=False)
