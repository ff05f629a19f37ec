"""The service's secret key, and signatures of links that work without an API key.

Upload URLs (``/api/asset/upload/...``) and the download links of Flat task results carry an
expiry and an HMAC-SHA256 signature under this key.  The key is ``settings.secret_key``; when it
is empty, a random key is made once and kept in ``data_dir/secret-key`` (mode 0600), so links
survive restarts of the embedded shape.  Several API processes (the scaled shape) must share one
``MEDIATASKS_SECRET_KEY`` instead.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
import time
from pathlib import Path
from typing import Final

from mediatasks import errors
from mediatasks import settings as settings_module

__all__ = ["KEY_FILE", "check", "load_secret_key", "sign"]

#: The file, in the data folder, that keeps the generated key.
KEY_FILE: Final = "secret-key"


def load_secret_key(settings: settings_module.Settings) -> bytes:
    """The configured secret key, or the one kept in the data folder (made on first use)."""
    if settings.secret_key:
        return settings.secret_key.encode()
    path = settings.data_dir / KEY_FILE
    if not path.exists():
        _create_key_file(path)
    kept = path.read_text().strip()
    if not kept:
        raise errors.ConfigurationError(f"the secret key file {path} is empty; delete it")
    return kept.encode()


def _create_key_file(path: Path) -> None:
    """Write a new key to ``path`` unless another process got there first (no torn reads)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    staged = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    descriptor = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w") as file:
            file.write(secrets.token_urlsafe(32) + "\n")
        with contextlib.suppress(FileExistsError):  # a concurrent start made one: keep theirs
            os.link(staged, path)
    finally:
        staged.unlink(missing_ok=True)


def sign(key: bytes, purpose: str, subject: str, expires: int) -> str:
    """The signature of a link for ``purpose`` (e.g. ``asset-upload``) to ``subject``."""
    message = f"{purpose}\n{subject}\n{expires}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def check(key: bytes, purpose: str, subject: str, expires: str, signature: str) -> bool:
    """Whether a link's ``expires`` (Unix seconds) and ``signature`` are genuine and not past."""
    if not (expires.isascii() and expires.isdigit()) or int(expires) < time.time():
        return False
    return hmac.compare_digest(sign(key, purpose, subject, int(expires)), signature)
