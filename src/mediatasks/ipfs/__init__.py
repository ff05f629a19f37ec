"""IPFS: the CIDs that kubo computes, pinning services, and an asset's IPFS storage document.

``cid`` computes the CID of a file exactly as ``ipfs add --cid-version=1`` does, with no node;
``pinning`` sends a file to a kubo RPC API or to Pinata and checks the CID it answers;
``asset_storage`` is Livepeer's ``asset.storage`` object and how export tasks move it.
"""

from __future__ import annotations

from mediatasks.ipfs.cid import FileCid, bytes_cid, file_cid

__all__ = ["FileCid", "bytes_cid", "file_cid"]
