"""Running the real ``mediatasks`` command as separate processes, and serving files on loopback."""

from __future__ import annotations

import contextlib
import dataclasses
import http.server
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import httpx

__all__ = ["Proc", "Server", "file_server", "free_port", "serve", "start", "wait_http"]


#: The ports ``free_port`` handed out: the kernel may give a port it just let go of again, and
#: two servers of one test (an API and a worker's metrics) would then be given the same.
_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now, and not handed out before."""
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


class Proc:
    """One ``mediatasks`` process, its output kept in a log file."""

    def __init__(self, args: list[str], env: Mapping[str, str], log_path: Path) -> None:
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "mediatasks", *args],
            env={**os.environ, **env},
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL: the process gets no chance to clean up."""
        self.popen.send_signal(signal.SIGKILL)
        self.popen.wait(10)

    def stop(self, timeout_s: float = 30) -> int:
        """SIGTERM, then wait; SIGKILL if it does not exit in time."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(10)
        self._log.close()
        return self.popen.returncode


def start(args: list[str], env: Mapping[str, str], log_path: Path) -> Proc:
    """Start ``python -m mediatasks <args>``."""
    return Proc(args, env, log_path)


def wait_http(url: str, proc: Proc, timeout_s: float = 30) -> None:
    """Wait until ``url`` answers, failing early (with the log) if the process died."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.popen.poll() is not None:
            raise RuntimeError(f"process exited with {proc.popen.returncode}:\n{proc.log()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1).status_code < 500:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout_s}s:\n{proc.log()}")


@dataclasses.dataclass(frozen=True)
class Server:
    """A running ``mediatasks serve``."""

    base_url: str
    env: dict[str, str]
    proc: Proc
    data_dir: Path

    @property
    def key(self) -> str:
        """The bootstrap API key it printed (and kept in its data folder, in the file of its
        task store)."""
        from mediatasks import service, settings

        config = settings.Settings(
            data_dir=self.data_dir, database_url=self.env.get("MEDIATASKS_DATABASE_URL", "")
        )
        return service.bootstrap_key_path(config).read_text().strip()


@contextlib.contextmanager
def serve(tmp_path: Path, *args: str, port: int | None = None, **settings: str) -> Iterator[Server]:
    """``mediatasks serve`` on ``port`` (default: a free one) with its data in ``tmp_path``;
    extra settings are keyword arguments without the ``MEDIATASKS_`` prefix."""
    port = port or free_port()
    env = {
        "MEDIATASKS_DATA_DIR": str(tmp_path / "data"),
        "MEDIATASKS_PORT": str(port),
        "MEDIATASKS_ALLOW_PRIVATE_URLS": "true",
        "MEDIATASKS_HEARTBEAT_INTERVAL_S": "0.5",
        **{f"MEDIATASKS_{name.upper()}": value for name, value in settings.items()},
    }
    proc = start(["serve", *args], env, tmp_path / "serve.log")
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{base}/healthz", proc)
        yield Server(base_url=base, env=env, proc=proc, data_dir=tmp_path / "data")
    finally:
        proc.stop()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def trickle_server(
    data: bytes, *, chunk_bytes: int, pause_s: float, stop_at: int | None = None
) -> Iterator[str]:
    """Serve ``data`` at ``/video.mp4`` slowly: ``chunk_bytes`` at a time, ``pause_s`` apart.

    The full length is announced; with ``stop_at`` the connection is closed after that many
    bytes, as a server that dies in the middle of a download does.
    """

    class Trickle(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "video/mp4")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            end = len(data) if stop_at is None else stop_at
            for start in range(0, end, chunk_bytes):
                try:
                    self.wfile.write(data[start : min(start + chunk_bytes, end)])
                    self.wfile.flush()
                except OSError:
                    return
                time.sleep(pause_s)
            self.close_connection = True

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Trickle)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/video.mp4"
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def file_server(root: Path) -> Iterator[str]:
    """Serve ``root`` over HTTP on 127.0.0.1; yields the base URL."""

    def handler(*args: object, **kwargs: object) -> _QuietHandler:
        return _QuietHandler(*args, directory=str(root), **kwargs)  # type: ignore[arg-type]

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
