"""A page on another site uploads a video to the service from the browser, as a web app built on
the Livepeer API does: its back end asks for the upload URLs with its API key, and the page sends
the file with tus-js-client straight to the service's signed tus URL (another origin: CORS)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests import mediagen, processes

pytestmark = pytest.mark.slow

TUS = Path(__file__).resolve().parents[2] / "src/mediatasks/web/node_modules/tus-js-client/dist"

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>An app on another site</title>
<script src="tus.min.js"></script></head>
<body><p id="state">idle</p>
<script>
window.sendVideo = async (endpoint) => {
  const file = await (await fetch("clip.mp4")).blob();
  return await new Promise((resolve) => {
    const upload = new tus.Upload(file, {
      endpoint,
      chunkSize: 64 * 1024,
      metadata: {filename: "clip.mp4", filetype: "video/mp4"},
      retryDelays: [],
      onProgress: (sent, total) => {
        document.getElementById("state").textContent = `${sent}/${total}`;
      },
      onError: (error) => resolve("error: " + error),
      onSuccess: () => resolve("done " + upload.url),
    });
    upload.start();
  });
};
</script></body></html>
"""


@contextlib.contextmanager
def other_site(folder: Path) -> Iterator[str]:
    """A static site on its own loopback port (an origin of its own): the page, tus-js-client,
    and the video the page sends."""
    (folder / "index.html").write_text(PAGE)
    (folder / "tus.min.js").write_bytes((TUS / "tus.min.js").read_bytes())
    with processes.file_server(folder) as site:
        yield site


def test_a_page_of_another_origin_uploads_with_tus(
    browser: Any, server: processes.Server, tmp_path: Path
) -> None:
    mediagen.make_video(tmp_path / "clip.mp4", seconds=1)
    headers = {"Authorization": f"Bearer {server.key}"}
    api = f"{server.base_url}/api"
    made = httpx.post(f"{api}/asset/request-upload", json={"name": "from a page"}, headers=headers)
    assert made.status_code == 200, made.text
    endpoint, asset_id = made.json()["tusEndpoint"], made.json()["asset"]["id"]
    with other_site(tmp_path) as site:
        assert site != server.base_url.rstrip("/")  # another origin: another port
        context = browser.new_context()
        try:
            page = context.new_page()
            page.goto(f"{site}/index.html")
            outcome = page.evaluate("endpoint => window.sendVideo(endpoint)", endpoint)
            state = page.locator("#state").text_content()
        finally:
            context.close()
    assert outcome.startswith("done "), outcome
    assert f"/api/asset/upload/tus/{asset_id}?token=" in outcome  # Location was readable
    size = (tmp_path / "clip.mp4").stat().st_size
    assert state == f"{size}/{size}"
    deadline = time.monotonic() + 60
    while (asset := httpx.get(f"{api}/asset/{asset_id}", headers=headers).json())["status"][
        "phase"
    ] not in ("ready", "failed") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert asset["status"]["phase"] == "ready", asset
    assert asset["size"] == size
