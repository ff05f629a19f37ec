"""Our CIDs against an independent implementation: the reference JavaScript UnixFS importer
(``ipfs-unixfs-importer``, the importer of js-ipfs and Helia), set up as
``ipfs add --cid-version=1`` is: 256 KiB chunks, raw leaves, balanced, 174 links per node."""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest

from mediatasks.ipfs import cid
from tests.ipfsref import reference_cids, require_reference

CHUNK = cid.CHUNK_SIZE
LINKS = cid.MAX_LINKS


def write(path: Path, size: int) -> Path:
    """``size`` pseudo-random bytes, written in pieces so that large files stay cheap."""
    rng = random.Random(size)
    with path.open("wb") as file:
        left = size
        while left:
            piece = min(left, 8 * 1024 * 1024)
            file.write(rng.randbytes(piece))
            left -= piece
    return path


def test_kubo_defaults_match_the_reference(tmp_path: Path) -> None:
    require_reference()
    sizes = {
        "empty": 0,
        "one byte": 1,
        "one chunk less a byte": CHUNK - 1,
        "exactly one chunk": CHUNK,
        "one chunk and a byte": CHUNK + 1,
        "a few MB": 3 * 1024 * 1024 + 17,
        "one full node": LINKS * CHUNK,
        "a second layer": LINKS * CHUNK + 1,
    }
    paths = [write(tmp_path / name.replace(" ", "-"), size) for name, size in sizes.items()]
    started = time.perf_counter()
    ours = [cid.file_cid(path) for path in paths]
    ours_s = time.perf_counter() - started
    started = time.perf_counter()
    theirs = reference_cids(paths)
    print(
        f"\n{sum(sizes.values()) / 1e6:.0f} MB: ours {ours_s:.2f} s, reference "
        f"{time.perf_counter() - started:.2f} s"
    )
    assert dict(zip(sizes, ours, strict=True)) == dict(zip(sizes, theirs, strict=True))
    assert ours[0] == "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"


@pytest.mark.parametrize(
    ("chunk_size", "max_links", "sizes"),
    [
        # Kubo's 174 links with 1,000-byte chunks (ipfs add --chunker=size-1000): three layers
        # of nodes, and a fourth by one byte, in 30 MB.
        (1000, LINKS, [LINKS * LINKS * 1000, LINKS * LINKS * 1000 + 1, 5_000_001]),
        # Three links per node and 16-byte chunks: eight layers in 100 kB.
        (16, 3, [0, 16, 17, 48, 49, 3**4 * 16 + 1, 100_000]),
        (1, 2, [1, 2, 3, 4, 5, 1023, 1025]),
    ],
)
def test_deep_trees_match_the_reference(
    tmp_path: Path, chunk_size: int, max_links: int, sizes: list[int]
) -> None:
    require_reference()
    paths = [write(tmp_path / f"f{size}", size) for size in sizes]
    ours = []
    for path in paths:
        hasher = cid.FileCid(chunk_size=chunk_size, max_links=max_links)
        hasher.update(path.read_bytes())
        ours.append(hasher.cid())
    assert ours == reference_cids(paths, chunk_size=chunk_size, max_links=max_links)
