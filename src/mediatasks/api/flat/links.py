"""Signed download links: ``result.url`` of a Flat task works without a token, for a while.

A link carries ``expires`` (Unix seconds) and ``signature``, the HMAC-SHA256 of the task id and
``expires`` under the service's secret key (``mediatasks.signing``).  Changing either, or waiting
past ``expires``, makes the link fail.  The expiry is rounded up to the next hour, so every poll
within an hour hands out the same link, valid for 24 to 25 hours: longer than any polling client
waits.
"""

from __future__ import annotations

import dataclasses
import hmac
import logging
import math
from datetime import datetime
from typing import Final

from mediatasks import settings as settings_module
from mediatasks import signing

__all__ = ["PURPOSE", "URL_LIFETIME_S", "Signer", "secret_key"]

log = logging.getLogger(__name__)

#: What the signatures of these links are for (other links of the service cannot stand in).
PURPOSE: Final = "flat-task-result"
#: How long a link lasts at least.
URL_LIFETIME_S: Final = 24 * 3600
_ROUND_S: Final = 3600


def secret_key(settings: settings_module.Settings) -> bytes:
    """The service's secret key; a warning when several API processes would not share it."""
    postgres = settings.resolved_database_url.startswith(("postgresql:", "postgres:"))
    if postgres and not settings.secret_key:
        log.warning(
            "MEDIATASKS_SECRET_KEY is not set: download links are signed with a key kept in %s, "
            "which other API processes do not share; set the same MEDIATASKS_SECRET_KEY on all",
            settings.data_dir / signing.KEY_FILE,
        )
    return signing.load_secret_key(settings)


@dataclasses.dataclass(frozen=True)
class Signer:
    """Signs and checks the expiring links of task results."""

    key: bytes = dataclasses.field(repr=False)

    def expires(self, now: datetime, lifetime_s: int = URL_LIFETIME_S) -> int:
        """The ``expires`` of a link made at ``now``: at least ``lifetime_s`` later."""
        return math.ceil((now.timestamp() + lifetime_s) / _ROUND_S) * _ROUND_S

    def signature(self, task_id: str, expires: int) -> str:
        """The signature of a link to ``task_id``'s result that expires at ``expires``."""
        return signing.sign(self.key, PURPOSE, task_id, expires)

    def check(self, task_id: str, expires: str, signature: str, *, now: datetime) -> bool:
        """Whether a link's ``expires`` and ``signature`` are genuine and not past at ``now``."""
        if not (expires.isascii() and expires.isdigit()) or int(expires) < now.timestamp():
            return False
        return hmac.compare_digest(self.signature(task_id, int(expires)), signature)
