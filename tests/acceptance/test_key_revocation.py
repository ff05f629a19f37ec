"""A revoked API key is refused by every serving process within a second, though each process
remembers the keys it has checked (``mediatasks.api.keyring``)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

import httpx

from mediatasks import taskstore
from tests import processes

#: The promise: a revoke reaches every process within this time.
WITHIN_S = 1.0


async def _hammer(client: httpx.AsyncClient, url: str, secret: str, until: float) -> int:
    """GET ``url`` with ``secret`` back to back until the clock passes ``until``; the count."""
    count = 0
    while time.monotonic() < until:
        found = await client.get(url, headers={"Authorization": f"Bearer {secret}"})
        assert found.status_code == 200, found.text
        count += 1
    return count


async def _first_refusal(
    client: httpx.AsyncClient, url: str, secret: str, deadline: float
) -> tuple[float, dict[str, object]]:
    """The start time of the first request refused with 401, polling back to back, and its body."""
    while True:
        started = time.monotonic()
        found = await client.get(url, headers={"Authorization": f"Bearer {secret}"})
        if found.status_code == 401:
            return started, found.json()
        assert found.status_code == 200, found.text
        assert started < deadline, "the revoked key was still accepted"


async def _scenario(url: str, bases: list[str]) -> None:
    store = taskstore.open_task_store(url)
    try:
        project = (await store.list_projects())[0]
        doomed, doomed_secret = await store.create_api_key(project.id, "doomed")
        _, kept_secret = await store.create_api_key(project.id, "kept")
        async with httpx.AsyncClient(timeout=10) as client:
            lists = [f"{base}/api/task" for base in bases]
            # Both processes check the key and keep answering with it, up to the revoke.
            warm = time.monotonic() + 1.5
            counts = await asyncio.gather(*(_hammer(client, u, doomed_secret, warm) for u in lists))
            assert all(count >= 3 for count in counts), counts

            revoking = time.monotonic()
            await store.revoke_api_key(doomed.id)
            deadline = revoking + WITHIN_S
            refused = await asyncio.gather(
                *(_first_refusal(client, u, doomed_secret, deadline + 5) for u in lists)
            )
            for started, body in refused:
                assert started - revoking <= WITHIN_S, f"refused {started - revoking:.3f} s after"
                assert body == {"errors": ["no token found for the API key"]}
            # Refused from then on, while the project's other key still works in each process.
            doomed_auth = {"Authorization": f"Bearer {doomed_secret}"}
            for u in lists:
                for _ in range(3):
                    assert (await client.get(u, headers=doomed_auth)).status_code == 401
                kept = await client.get(u, headers={"Authorization": f"Bearer {kept_secret}"})
                assert kept.status_code == 200
            flat = await client.get(f"{bases[1]}/v2/tasks", headers=doomed_auth)
            assert flat.status_code == 401
    finally:
        await store.close()


def test_a_revoked_key_is_refused_by_every_process_within_a_second(
    store_url: str, tmp_path: Path
) -> None:
    shared = tmp_path / "data"
    with contextlib.ExitStack() as stack:
        bases = []
        for name in ("a", "b"):
            (tmp_path / name).mkdir()
            started = processes.serve(
                tmp_path / name, "--no-worker", data_dir=str(shared), database_url=store_url
            )
            bases.append(stack.enter_context(started).base_url)
        asyncio.run(_scenario(store_url, bases))
