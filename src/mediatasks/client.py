"""The command line's side of HTTP: where the server and key come from, calls, uploads, events.

The ``mediatasks`` commands that work on a running server (``task``, ``asset``, ``webhook``,
``score``) talk to it as any client would, over ``/api`` and ``/v2`` with an API key.  Which
server and which key, in this order: ``--server`` / ``--api-key``, the ``MEDIATASKS_SERVER_URL``
and ``MEDIATASKS_API_KEY`` variables, then the file that ``mediatasks login`` writes in the
user's configuration folder (``~/.config/mediatasks/config.json``, or under
``$XDG_CONFIG_HOME``): the same answer whatever the current folder.  A key kept for one server
is never sent to another.

Uploads go through tus (``tuspy``), in chunks, each retried from the offset the server confirms
when a connection drops; the upload's address is kept (``uploads.json`` next to the login file)
until it completes, so that the same command run again resumes a file instead of starting it
over.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Final

import httpx
import typer

from mediatasks import errors

__all__ = [
    "DEFAULT_SERVER",
    "Api",
    "CallFailed",
    "Login",
    "config_dir",
    "forget_upload",
    "load_login",
    "resolve",
    "save_login",
    "upload_file",
]

DEFAULT_SERVER: Final = "http://127.0.0.1:8000"
_LOGIN_FILE: Final = "config.json"
_UPLOADS_FILE: Final = "uploads.json"


class CallFailed(errors.MediaTasksError):
    """A call to the server did not succeed; the message is what to tell the user."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        #: The HTTP status, when the server answered.
        self.status = status


@dataclasses.dataclass(frozen=True, kw_only=True)
class Login:
    """A server and the key to use with it."""

    server: str
    api_key: str


def config_dir() -> Path:
    """The user's folder for the command line's files (``login`` and resumable uploads)."""
    return Path(typer.get_app_dir("mediatasks"))


def load_login() -> Login | None:
    """What ``mediatasks login`` kept, if anything."""
    path = config_dir() / _LOGIN_FILE
    try:
        data = json.loads(path.read_text())
        return Login(server=str(data["server"]), api_key=str(data["apiKey"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def save_login(login: Login) -> Path:
    """Keep ``login`` for later commands, readable by this user only; the file's path."""
    folder = config_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / _LOGIN_FILE
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_text(json.dumps({"server": login.server, "apiKey": login.api_key}, indent=2))
    return path


def _same_server(a: str, b: str) -> bool:
    return a.rstrip("/") == b.rstrip("/")


def resolve(server: str | None, api_key: str | None) -> Login:
    """The server and key to use, from the options (or their variables), else the login file.

    Raises ``CallFailed`` when there is no key for the chosen server.
    """
    kept = load_login()
    chosen = (server or (kept.server if kept else "") or DEFAULT_SERVER).rstrip("/")
    key = api_key or (kept.api_key if kept and _same_server(kept.server, chosen) else "")
    if not key:
        raise CallFailed(
            f"no API key for {chosen}: run `mediatasks login --server {chosen}`, "
            "or set MEDIATASKS_API_KEY"
        )
    return Login(server=chosen, api_key=key)


def _message(response: httpx.Response) -> str:
    """The dialect's error body as one line: ``{"errors": [...]}`` or ``{"code", "message"}``."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip() or response.reason_phrase
    if isinstance(body, dict) and isinstance(body.get("errors"), list):
        return "; ".join(map(str, body["errors"]))
    if isinstance(body, dict) and "message" in body:
        return str(body["message"])
    return response.text.strip()


class Api:
    """An HTTP client of one server, with its key."""

    def __init__(self, login: Login, *, timeout_s: float = 30.0) -> None:
        self.login = login
        self.http = httpx.Client(
            base_url=login.server,
            headers={"Authorization": f"Bearer {login.api_key}"},
            timeout=timeout_s,
        )

    def __enter__(self) -> Api:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.http.close()

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """The JSON answer of a call; ``CallFailed`` for an error answer or no answer."""
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise CallFailed(f"cannot reach the server at {self.login.server}: {exc}") from exc
        if response.status_code >= 400:
            raise CallFailed(
                f"{response.status_code}: {_message(response)}", status=response.status_code
            )
        return response.json() if response.content else None

    def download(self, url: str, dest: Path) -> int:
        """Save ``url`` (a signed link: no key is sent) to ``dest``; the bytes written."""
        written = 0
        try:
            with httpx.stream("GET", url, timeout=60, follow_redirects=True) as response:
                if response.status_code >= 400:
                    response.read()
                    raise CallFailed(f"{response.status_code}: {_message(response)}")
                with dest.open("wb") as out:
                    for chunk in response.iter_bytes():
                        out.write(chunk)
                        written += len(chunk)
        except httpx.HTTPError as exc:
            raise CallFailed(f"the download failed: {exc}") from exc
        return written

    def events(self, path: str, last_id: str = "") -> Iterator[tuple[str, Any]]:
        """``(id, data)`` of each Server-Sent Event at ``path``, resuming after ``last_id``."""
        headers = {"Accept": "text/event-stream"}
        if last_id:
            headers["Last-Event-ID"] = last_id
        with self.http.stream("GET", path, headers=headers, timeout=None) as response:
            if response.status_code >= 400:
                response.read()
                raise CallFailed(
                    f"{response.status_code}: {_message(response)}", status=response.status_code
                )
            event_id, data = "", ""
            for line in response.iter_lines():
                if line.startswith("id:"):
                    event_id = line[3:].strip()
                elif line.startswith("data:"):
                    data += line[5:].strip()
                elif not line and data:
                    yield event_id, json.loads(data)
                    data = ""


# -- uploads -----------------------------------------------------------------------------------
def _fingerprint(server: str, path: Path) -> str:
    stat = path.stat()
    return hashlib.sha256(
        f"{server}\n{path.resolve()}\n{stat.st_size}\n{stat.st_mtime_ns}".encode()
    ).hexdigest()


def _book() -> dict[str, Any]:
    try:
        found = json.loads((config_dir() / _UPLOADS_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def _save_book(book: Mapping[str, Any]) -> None:
    folder = config_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / _UPLOADS_FILE
    path.touch(mode=0o600)
    partial = path.with_name(path.name + ".part")
    partial.write_text(json.dumps(book, indent=2))
    os.replace(partial, path)


def forget_upload(server: str, path: Path) -> None:
    """Forget a kept upload of ``path`` to ``server``."""
    book = _book()
    if book.pop(_fingerprint(server, path), None) is not None:
        _save_book(book)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Upload:
    """An upload started on the server: its asset, its task and its tus endpoint."""

    asset_id: str
    task_id: str
    tus_endpoint: str
    resumed: bool = False


def upload_file(
    api: Api,
    path: Path,
    *,
    name: str,
    chunk_size: int,
    retries: int = 10,
    retry_delay_s: float = 1.0,
    on_progress: Callable[[int, int], None] | None = None,
    on_retry: Callable[[int, str], None] | None = None,
) -> Upload:
    """Upload ``path`` as a new asset (or go on with a kept upload of it) through tus.

    ``on_progress(sent, total)`` follows the offsets the server confirmed.  A dropped
    connection is retried up to ``retries`` times in a row, each after ``retry_delay_s``, from
    the offset the server confirms (``on_retry(offset, why)`` says so); a run that stops for
    good leaves the upload kept for the next one.
    """
    server = api.login.server
    key = _fingerprint(server, path)
    kept = _book().get(key)
    upload: Upload | None = None
    if isinstance(kept, dict):
        with contextlib.suppress(CallFailed):
            api.call("GET", f"/api/asset/{kept['assetId']}")  # still there, still ours
            upload = Upload(
                asset_id=kept["assetId"],
                task_id=kept["taskId"],
                tus_endpoint=kept["tusEndpoint"],
                resumed=True,
            )
    if upload is None:
        created = api.call("POST", "/api/asset/request-upload", json={"name": name})
        upload = Upload(
            asset_id=created["asset"]["id"],
            task_id=created["task"]["id"],
            tus_endpoint=created["tusEndpoint"],
        )
        book = _book()
        book[key] = {
            "assetId": upload.asset_id,
            "taskId": upload.task_id,
            "tusEndpoint": upload.tus_endpoint,
            "file": str(path.resolve()),
        }
        _save_book(book)
    # tus-py-client brings aiohttp: imported here, not by every command that talks to a server.
    from tusclient import client as tus_client
    from tusclient import exceptions as tus_exceptions

    total = path.stat().st_size
    failures = 0
    uploader: Any = None
    while True:
        try:
            if uploader is None:
                uploader = tus_client.TusClient(upload.tus_endpoint).uploader(
                    file_path=str(path), chunk_size=chunk_size, metadata={"filename": path.name}
                )
                # Creation answers the asset's one upload URL however often it is asked: a kept
                # upload goes on from the offset the server has.
                uploader.set_url(uploader.create_url())
            uploader.offset = uploader.get_offset()
            if on_progress is not None:
                on_progress(uploader.offset, total)
            while uploader.offset < total:
                uploader.upload_chunk()
                failures = 0
                if on_progress is not None:
                    on_progress(uploader.offset, total)
            break
        except (tus_exceptions.TusCommunicationError, tus_exceptions.TusUploadFailed) as exc:
            status = getattr(exc, "status_code", None)
            why = f"{status or 'no answer'}: {getattr(exc, 'response_content', None) or exc}"
            failures += 1
            if failures > retries or (status is not None and 400 <= status < 500 and status != 409):
                raise CallFailed(
                    f"the upload stopped ({why}); run the same command again to resume it"
                ) from exc
            if on_retry is not None:
                on_retry(uploader.offset if uploader is not None else 0, why)
            time.sleep(retry_delay_s)
    forget_upload(server, path)
    return upload
