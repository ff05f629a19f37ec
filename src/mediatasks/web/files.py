"""The dashboard's static files: its own CSS and JS, and the browser libraries from npm.

``/static/<file>`` serves ``web/static/`` (committed).  ``/static/vendor/<package>/<file>``
serves ``<file>`` from the ``dist/`` folder of an npm package named in ``web/package.json``,
installed (from ``package-lock.json``) into ``web/node_modules/`` by ``./scripts/setup``; none of
their code is committed.  Without them the service still runs, and every page says in one
sentence what is missing (:func:`missing_message`).
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Final

from fastapi import APIRouter
from fastapi.responses import FileResponse, PlainTextResponse, Response

from mediatasks.api.runtime import Runtime

__all__ = [
    "NODE_MODULES",
    "create_router",
    "missing_message",
    "static_url",
    "vendor_packages",
    "vendor_url",
]

_HERE: Final = Path(__file__).parent
_OWN: Final = _HERE / "static"
#: Where ``npm ci --prefix src/mediatasks/web`` installs the browser libraries.
NODE_MODULES: Final = _HERE / "node_modules"
#: The sentence every page shows when the browser libraries are not installed.
MISSING: Final = "Missing browser libraries: run ./scripts/setup (needs Node.js)."
_CACHE_OWN: Final = "no-cache"
_CACHE_VENDOR: Final = "public, max-age=86400"


@functools.cache
def vendor_packages() -> dict[str, str]:
    """The browser libraries (npm name -> pinned version) named in ``web/package.json``."""
    manifest = json.loads((_HERE / "package.json").read_text())
    return {str(name): str(version) for name, version in manifest["dependencies"].items()}


def _installed_version(package: str) -> str | None:
    manifest = NODE_MODULES / package / "package.json"
    try:
        version = json.loads(manifest.read_text()).get("version")
    except (OSError, ValueError):
        return None
    return str(version) if version else None


def missing_message() -> str:
    """:data:`MISSING` when a browser library is absent or not the pinned version, else ``""``."""
    for package, version in vendor_packages().items():
        if _installed_version(package) != version:
            return MISSING
    return ""


def vendor_url(package: str, file: str) -> str:
    """The URL of ``file`` of ``package``'s ``dist/`` folder (with its version, for caches)."""
    if package not in vendor_packages():
        raise KeyError(f"{package} is not in web/package.json")
    return f"/static/vendor/{package}/{file}?v={vendor_packages()[package]}"


def static_url(file: str) -> str:
    """The URL of one of the dashboard's own files (with its modification time, for caches)."""
    try:
        stamp = int((_OWN / file).stat().st_mtime)
    except OSError:
        stamp = 0
    return f"/static/{file}?v={stamp}"


def _inside(root: Path, relative: str) -> Path | None:
    """``root/relative`` if it is a file inside ``root`` (no ``..``, no link out of it)."""
    if not relative or "\\" in relative or "\x00" in relative:
        return None
    base = root.resolve()
    path = (base / relative).resolve()
    if not path.is_relative_to(base) or not path.is_file():
        return None
    return path


def _not_found() -> Response:
    return PlainTextResponse("not found", status_code=404)


def create_router(runtime: Runtime) -> APIRouter:
    """``/static/...`` and ``/static/vendor/...``."""
    del runtime  # static files need no store
    router = APIRouter()

    @router.get("/static/vendor/{package}/{file:path}")
    async def vendor_file(package: str, file: str) -> Response:
        if package not in vendor_packages():
            return _not_found()
        path = _inside(NODE_MODULES / package / "dist", file)
        if path is None:
            return _not_found()
        return FileResponse(path, headers={"Cache-Control": _CACHE_VENDOR})

    @router.get("/static/{file:path}")
    async def own_file(file: str) -> Response:
        path = _inside(_OWN, file)
        if path is None:
            return _not_found()
        return FileResponse(path, headers={"Cache-Control": _CACHE_OWN})

    return router
