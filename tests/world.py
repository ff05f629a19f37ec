"""A real ``mediatasks serve`` with every loopback service the Livepeer flows reach: a file server
with generated sources (also the IPFS gateway), the IPFS stand-in, an export target, a webhook
receiver and an S3 bucket (moto).  Shared by the official-SDK and the spec tests."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from pathlib import Path

from tests import exporttargets, mediagen, processes, s3server
from tests.ipfsref import reference_cids, require_reference
from tests.receiver import Receiver, receiving

__all__ = ["WEBHOOK_SECRET", "World", "world"]

WEBHOOK_SECRET = "world-webhook-secret"


@dataclasses.dataclass(frozen=True)
class World:
    server: processes.Server
    files: str
    #: A 4 s 1280x720 video over HTTP, and the same bytes as ``ipfs://<cid>``.
    source: str
    ipfs_source: str
    missing_source: str
    node: exporttargets.IpfsNode
    target: exporttargets.Target
    receiver: Receiver
    moto: s3server.MotoServer
    bucket: str

    @property
    def api(self) -> str:
        return f"{self.server.base_url}/api"


@contextlib.contextmanager
def world(tmp_path: Path, **settings: str) -> Iterator[World]:
    """Everything above, on loopback only, until the block ends."""
    require_reference()
    sources = tmp_path / "sources"
    sources.mkdir()
    video = mediagen.make_video(sources / "clip.mp4", seconds=4, width=1280, height=720)
    [cid] = reference_cids([video])
    (sources / "ipfs").mkdir()
    (sources / "ipfs" / cid).write_bytes(video.read_bytes())
    with (
        processes.file_server(sources) as files,
        exporttargets.ipfs_node() as node,
        exporttargets.export_target() as target,
        receiving(WEBHOOK_SECRET) as receiver,
        s3server.moto_server(tmp_path / "moto.log") as moto,
        processes.serve(
            tmp_path,
            ipfs_api_url=node.url,
            pinata_api_url=node.url,  # a request's own Pinata credentials reach the stand-in
            ipfs_gateway_url=files,
            retry_backoff_s="[0.2]",
            **settings,
        ) as server,
    ):
        yield World(
            server=server,
            files=files,
            source=f"{files}/clip.mp4",
            ipfs_source=f"ipfs://{cid}",
            missing_source=f"{files}/missing.mp4",
            node=node,
            target=target,
            receiver=receiver,
            moto=moto,
            bucket=moto.new_bucket(),
        )
