"""A real webhook receiver on loopback: it checks every signature and remembers what came."""

from __future__ import annotations

import hashlib
import hmac
import http.server
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["Receiver", "receiving"]


class Receiver:
    """What a webhook endpoint saw; ``status`` is what it answers (503 while "down")."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.status = 200
        self.url = ""
        self.lock = threading.Lock()
        #: Every request, in order: the parsed body and whether its signature was right.
        self.requests: list[tuple[dict[str, Any], bool]] = []
        #: Ids of the events answered with a 2xx.
        self.accepted: set[str] = set()

    def record(self, raw: bytes, signature: str) -> int:
        fields = dict(part.split("=", 1) for part in signature.split(",") if "=" in part)
        expected = hmac.new(self.secret.encode(), raw, hashlib.sha256).hexdigest()
        body = json.loads(raw)
        valid = hmac.compare_digest(fields.get("v1", ""), expected) and fields.get("t") == str(
            body["timestamp"]
        )
        with self.lock:
            self.requests.append((body, valid))
            if self.status < 300:
                self.accepted.add(body["id"])
            return self.status

    @property
    def unique(self) -> dict[str, dict[str, Any]]:
        """Accepted events by id: what a receiver that de-duplicates keeps."""
        with self.lock:
            kept: dict[str, dict[str, Any]] = {}
            for body, _ in self.requests:
                kept.setdefault(body["id"], body)
            return kept

    def names(self, subject_id: str) -> list[str]:
        """Event names about one task or asset, in the order of their events' creation."""
        found = [
            body
            for body in self.unique.values()
            if subject_id
            in (
                body["payload"].get("task", {}).get("id"),
                body["payload"].get("asset", {}).get("id"),
            )
        ]
        return [body["event"] for body in sorted(found, key=lambda b: b["createdAt"])]


@contextmanager
def receiving(secret: str, port: int = 0) -> Iterator[Receiver]:
    """Run a receiver on 127.0.0.1 (on ``port`` when given) until the block ends."""
    receiver = Receiver(secret)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("content-length", 0)))
            status = receiver.record(raw, self.headers.get("Livepeer-Signature", ""))
            self.send_response(status)
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
