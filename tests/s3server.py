"""moto's standalone S3 server on loopback, for the blob store contract and a caller's bucket."""

from __future__ import annotations

import contextlib
import dataclasses
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from tests import processes

__all__ = ["ACCESS_KEY", "SECRET_KEY", "MotoServer", "moto_server"]

#: moto accepts any credentials; these are recognisable if one ever leaks into a response.
ACCESS_KEY = "AKIDMEDIATASKSTEST"
SECRET_KEY = "s3cr3t/Key+WithOddChars"


@dataclasses.dataclass(frozen=True)
class MotoServer:
    """A running ``python -m moto.server``."""

    endpoint_url: str
    popen: subprocess.Popen[bytes]

    def client(self) -> Any:
        """A boto3 S3 client for checking what the code under test wrote."""
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name="us-east-1",
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        )

    def new_bucket(self) -> str:
        """Create a bucket that no other test uses; its name."""
        name = f"t-{uuid.uuid4().hex[:20]}"
        client = self.client()
        client.create_bucket(Bucket=name)
        client.close()
        return name

    def keys(self, bucket: str) -> list[str]:
        """Every object name in ``bucket``, sorted."""
        client = self.client()
        try:
            pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
            return sorted(item["Key"] for page in pages for item in page.get("Contents", ()))
        finally:
            client.close()

    def read(self, bucket: str, key: str) -> bytes:
        client = self.client()
        try:
            body: bytes = client.get_object(Bucket=bucket, Key=key)["Body"].read()
            return body
        finally:
            client.close()

    def write(self, bucket: str, key: str, data: bytes) -> None:
        client = self.client()
        try:
            client.put_object(Bucket=bucket, Key=key, Body=data)
        finally:
            client.close()


@contextlib.contextmanager
def moto_server(log_path: Path, timeout_s: float = 30) -> Iterator[MotoServer]:
    """Start moto's S3 server on 127.0.0.1 and a free port; stop it afterwards."""
    port = processes.free_port()
    endpoint = f"http://127.0.0.1:{port}"
    with log_path.open("wb") as log:
        popen = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + timeout_s
            while True:
                if popen.poll() is not None:
                    raise RuntimeError(f"moto exited with {popen.returncode}: see {log_path}")
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"{endpoint}/", timeout=1).status_code < 500:
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"moto did not answer within {timeout_s} s")
                time.sleep(0.05)
            yield MotoServer(endpoint_url=endpoint, popen=popen)
        finally:
            popen.terminate()
            try:
                popen.wait(10)
            except subprocess.TimeoutExpired:
                popen.kill()
                popen.wait(10)
