"""Failed dashboard sign-ins are limited per client address, over real HTTP to ``mediatasks
serve``: past the limit the sign-in page answers 429 with ``Retry-After`` whatever the key,
another address is not affected, and the right key works again once the window has passed.

The addresses are told by ``X-Forwarded-For``, which uvicorn believes from loopback (its
``FORWARDED_ALLOW_IPS`` default), as it would from a reverse proxy on the same machine.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx
import pytest

from tests import processes

pytestmark = pytest.mark.slow


def _sign_in(client: httpx.Client, secret: str) -> httpx.Response:
    form = client.get("/sign-in")
    assert form.status_code == 200
    token = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert token, form.text
    return client.post("/sign-in", data={"csrf": token[1], "api_key": secret, "next": "/"})


def test_failed_sign_ins_from_one_address_are_limited(tmp_path: Path) -> None:
    with processes.serve(tmp_path, sign_in_max_failures="3", sign_in_window_s="3") as server:

        def client(address: str) -> httpx.Client:
            return httpx.Client(base_url=server.base_url, headers={"X-Forwarded-For": address})

        with client("203.0.113.7") as guesser, client("203.0.113.8") as other:
            started = time.monotonic()
            for _ in range(3):
                assert _sign_in(guesser, "not-a-key").status_code == 401
            refused = _sign_in(guesser, "not-a-key")
            assert refused.status_code == 429
            retry_after = int(refused.headers["retry-after"])
            assert 1 <= retry_after <= 3
            assert "Too many failed sign-ins" in refused.text
            assert refused.headers["content-security-policy"]
            # While refused, not even the right key is checked: a guess cannot be confirmed.
            assert _sign_in(guesser, server.key).status_code == 429

            signed = _sign_in(other, server.key)
            assert signed.status_code == 303 and signed.headers["location"] == "/"

            time.sleep(max(0.0, started + 3 - time.monotonic()) + 0.2)
            again = _sign_in(guesser, server.key)
            assert again.status_code == 303, again.text
    assert "3 failures from 203.0.113.7" in server.proc.log()
