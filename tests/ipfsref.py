"""The reference JavaScript UnixFS importer of ``tests/ipfs`` (``npm ci`` there installs it), an
implementation independent of ``mediatasks.ipfs`` that the tests compare our CIDs with.

Without Node.js or the installed packages the tests that need it are skipped, except in CI
(``CI=true``), where that is an error: ``scripts/test`` installs them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest

__all__ = ["IPFS_DIR", "reference_cids", "require_reference"]

IPFS_DIR = Path(__file__).parent / "ipfs"
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def _missing() -> str | None:
    if shutil.which("node") is None:
        return "Node.js is not installed"
    if not (IPFS_DIR / "node_modules" / "ipfs-unixfs-importer").is_dir():
        return "the reference importer is not installed (npm ci --prefix tests/ipfs)"
    return None


def require_reference() -> None:
    """Skip the calling test when the reference cannot run (fail instead in CI)."""
    reason = _missing()
    if reason is None:
        return
    if IN_CI:
        pytest.fail(f"the IPFS reference implementation is required in CI: {reason}")
    pytest.skip(reason)


def reference_cids(
    paths: Sequence[Path], *, chunk_size: int | None = None, max_links: int | None = None
) -> list[str]:
    """The CIDs that the reference importer gives ``paths``, in order."""
    args = ["node", str(IPFS_DIR / "cid.mjs")]
    if chunk_size is not None:
        args.append(f"--chunk-size={chunk_size}")
    if max_links is not None:
        args.append(f"--max-links={max_links}")
    done = subprocess.run(
        [*args, *map(str, paths)], capture_output=True, text=True, timeout=300, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"the reference importer failed: {done.stderr.strip()}")
    found = done.stdout.split()
    assert len(found) == len(paths), done.stdout
    return found
