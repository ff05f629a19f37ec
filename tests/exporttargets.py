"""Real HTTP servers on loopback that exports are sent to: a custom export target that records what
it receives, and a stand-in for a kubo node's RPC API and Pinata's pinning API that answers the
CID the reference JavaScript importer computes for the file it received."""

from __future__ import annotations

import dataclasses
import http.server
import json
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.ipfsref import reference_cids

__all__ = ["Added", "IpfsNode", "Received", "Target", "export_target", "ipfs_node"]


@dataclasses.dataclass(frozen=True)
class Received:
    method: str
    path: str
    #: Header names in lower case.
    headers: dict[str, str]
    body: bytes


class Target:
    """What an export target saw; ``status`` is what it answers."""

    def __init__(self) -> None:
        self.status = 200
        #: Seconds to wait after reading each 64 KiB of a body: a slow receiver.
        self.read_delay_s = 0.0
        self.url = ""
        self.lock = threading.Lock()
        self.requests: list[Received] = []


def _read_body(handler: http.server.BaseHTTPRequestHandler, delay_s: float) -> bytes:
    remaining = int(handler.headers.get("content-length", 0))
    parts = []
    while remaining > 0:
        part = handler.rfile.read(min(remaining, 65536))
        if not part:
            break
        parts.append(part)
        remaining -= len(part)
        if delay_s:
            time.sleep(delay_s)
    return b"".join(parts)


@contextmanager
def _serving(handler_class: type[http.server.BaseHTTPRequestHandler]) -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler_class)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def export_target() -> Iterator[Target]:
    """A custom export target on 127.0.0.1 until the block ends; its URL is ``<url>/upload``."""
    target = Target()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _receive(self) -> None:
            body = _read_body(self, target.read_delay_s)
            headers = {name.lower(): value for name, value in self.headers.items()}
            with target.lock:
                target.requests.append(Received(self.command, self.path, headers, body))
                status = target.status
            answer = b'{"ok": true}' if status < 300 else b'{"error": "refused"}'
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        do_PUT = _receive
        do_POST = _receive

        def log_message(self, format: str, *args: object) -> None:
            pass

    with _serving(Handler) as base:
        target.url = f"{base}/upload"
        yield target


@dataclasses.dataclass(frozen=True)
class Added:
    #: ``kubo`` or ``pinata``.
    service: str
    query: dict[str, str]
    headers: dict[str, str]
    fields: dict[str, str]
    filename: str
    data: bytes
    #: What the reference importer gives ``data``.
    cid: str


def _multipart(body: bytes, content_type: str) -> tuple[dict[str, str], str, bytes]:
    """Text fields, and the file's name and bytes, of a ``multipart/form-data`` body."""
    boundary = content_type.split("boundary=", 1)[1].strip().strip('"').encode()
    fields: dict[str, str] = {}
    filename, data = "", b""
    for piece in (b"\r\n" + body).split(b"\r\n--" + boundary)[1:]:
        if piece.startswith(b"--"):
            break
        head, _, content = piece.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        disposition = next(
            line.decode()
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-disposition")
        )
        params = dict(
            part.strip().split("=", 1) for part in disposition.split(";")[1:] if "=" in part
        )
        name = params["name"].strip('"')
        if "filename" in params:
            filename, data = params["filename"].strip('"'), content
        else:
            fields[name] = content.decode()
    return fields, filename, data


class IpfsNode:
    """A kubo RPC API (``/api/v0/add``) and Pinata (``/pinning/pinFileToIPFS``) in one server.

    It answers the reference importer's CID of what it received, or ``wrong_cid`` when set, or
    ``status`` when it is not 200.
    """

    def __init__(self) -> None:
        self.status = 200
        self.wrong_cid: str | None = None
        self.url = ""
        self.lock = threading.Lock()
        self.adds: list[Added] = []


@contextmanager
def ipfs_node() -> Iterator[IpfsNode]:
    """Run the stand-in on 127.0.0.1 until the block ends."""
    node = IpfsNode()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            parsed = urllib.parse.urlsplit(self.path)
            service = {"/api/v0/add": "kubo", "/pinning/pinFileToIPFS": "pinata"}.get(parsed.path)
            body = _read_body(self, 0)
            if service is None:
                self._answer(404, {"Message": "not found"})
                return
            fields, filename, data = _multipart(body, self.headers["content-type"])
            with tempfile.TemporaryDirectory() as folder:
                path = Path(folder) / "added"
                path.write_bytes(data)
                [cid] = reference_cids([path])
            headers = {name.lower(): value for name, value in self.headers.items()}
            query = dict(urllib.parse.parse_qsl(parsed.query))
            with node.lock:
                node.adds.append(Added(service, query, headers, fields, filename, data, cid))
                status, answered = node.status, node.wrong_cid or cid
            if status != 200:
                self._answer(status, {"Message": "the node refused", "Code": 0, "Type": "error"})
            elif service == "kubo":
                self._answer(200, {"Name": filename, "Hash": answered, "Size": str(len(data))})
            else:
                self._answer(200, {"IpfsHash": answered, "PinSize": len(data), "Timestamp": "x"})

        def _answer(self, status: int, body: dict[str, object]) -> None:
            raw = json.dumps(body).encode() + b"\n"
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, format: str, *args: object) -> None:
            pass

    with _serving(Handler) as base:
        node.url = base
        yield node
