"""The CID of ``ipfs add --cid-version=1``, computed without a node: known values and invariants.

The comparison with an independent implementation is in tests/integration/test_ipfs_reference.py.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from mediatasks import errors
from mediatasks.ipfs import cid

#: ``ipfs add --cid-version=1`` of an empty file, and of ``echo hello``: well-known values.
EMPTY = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
HELLO = "bafkreicysg23kiwv34eg2d7qweipxwosdo2py4ldv42nbauguluen5v6am"


def data(size: int, seed: int = 1) -> bytes:
    return random.Random(seed).randbytes(size)


def test_known_values() -> None:
    assert cid.bytes_cid(b"") == EMPTY
    assert cid.bytes_cid(b"hello\n") == HELLO


def test_one_chunk_is_a_raw_leaf_and_more_is_a_dag_pb_node() -> None:
    assert cid.bytes_cid(data(cid.CHUNK_SIZE)).startswith("bafkrei")  # CIDv1, raw, sha2-256
    assert cid.bytes_cid(data(cid.CHUNK_SIZE + 1)).startswith("bafybei")  # CIDv1, dag-pb


@pytest.mark.parametrize("piece", [1, 1000, cid.CHUNK_SIZE - 1, cid.CHUNK_SIZE, 3 * 10**6])
def test_pieces_of_any_size_give_the_same_cid(piece: int) -> None:
    whole = data(3 * cid.CHUNK_SIZE + 12345) if piece > 1 else data(2 * cid.CHUNK_SIZE + 3)
    hasher = cid.FileCid()
    for start in range(0, len(whole), piece):
        hasher.update(whole[start : start + piece])
    assert hasher.size_bytes == len(whole)
    assert hasher.cid() == cid.bytes_cid(whole)


def test_a_file_and_its_bytes_give_the_same_cid(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(data(5 * cid.CHUNK_SIZE + 1))
    assert cid.file_cid(path) == cid.bytes_cid(path.read_bytes())


def test_every_byte_counts() -> None:
    first = data(2 * cid.CHUNK_SIZE + 10)
    second = bytearray(first)
    second[-1] ^= 1
    assert cid.bytes_cid(first) != cid.bytes_cid(bytes(second))
    assert cid.bytes_cid(first) != cid.bytes_cid(first + b"\0")


def test_cid_is_final() -> None:
    hasher = cid.FileCid()
    hasher.update(b"abc")
    assert hasher.cid() == hasher.cid()
    with pytest.raises(errors.InvalidInput):
        hasher.update(b"d")


def test_tree_shape_with_small_chunks() -> None:
    # Two links per node, one byte per leaf: 4 bytes are one full node of two full nodes, and a
    # fifth byte adds a level; the last byte of 5 sits under nodes of one link each.
    def tree(size: int) -> str:
        hasher = cid.FileCid(chunk_size=1, max_links=2)
        hasher.update(bytes(range(size)))
        return hasher.cid()

    assert tree(1) == cid.bytes_cid(b"\x00")
    assert len({tree(n) for n in range(1, 9)}) == 8
    with pytest.raises(errors.InvalidInput):
        cid.FileCid(max_links=1)


def test_base32_multibase() -> None:
    assert cid.cid_string(b"\x01\x55") == "bafkq"
    assert cid.cid_string(b"") == "b"
