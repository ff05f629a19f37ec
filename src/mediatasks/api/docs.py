"""The API's documentation, readable without Internet access.

``/openapi.json`` is one OpenAPI document with every operation of the service: those of both
dialects (their paths with the mount prefix, ``/api/...`` and ``/v2/...``, each tagged with its
dialect) and any the root application documents itself.  ``/docs`` shows it in
Swagger UI; ``/api/docs`` and ``/v2/docs`` show one dialect's own document
(``/api/openapi.json``, ``/v2/openapi.json``).

The pages load Swagger UI from the service itself: its files come from the ``fastapi-offline``
wheel and are served under ``<app>/docs/assets/``.  Nothing is fetched from a CDN and Swagger
UI's online validator is switched off, so the pages work on a machine that reaches no other
host.  There is no ReDoc page: ReDoc always loads its logo from its makers' CDN.

The pages have a Content-Security-Policy of their own, a little looser than the dashboard's:
the one inline script (FastAPI's, which starts Swagger UI) is allowed by its hash, and Swagger
UI's stylesheet draws icons from ``data:`` images.
"""

from __future__ import annotations

import base64
import copy
import dataclasses
import hashlib
import importlib.resources
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

__all__ = ["ASSETS_DIR", "HTTP_METHODS", "Dialect", "add_pages", "combined_openapi", "install"]

#: Swagger UI's files, as the ``fastapi-offline`` wheel ships them.
ASSETS_DIR: Final = Path(str(importlib.resources.files("fastapi_offline") / "static"))
#: The keys of an OpenAPI path item that are operations.
HTTP_METHODS: Final = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_ASSETS_PATH: Final = "/docs/assets"
_SCHEMA_REF: Final = "#/components/schemas/"
_SWAGGER_PARAMETERS: Final = {
    # Swagger UI would otherwise ask validator.swagger.io to check the document.
    "validatorUrl": None,
    "docExpansion": "list",
    "defaultModelsExpandDepth": 0,
    "deepLinking": True,
}
_INLINE_SCRIPT: Final = re.compile(rb"<script>(.*?)</script>", re.DOTALL)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Dialect:
    """One mounted API and how the combined document names it."""

    #: Where it is mounted: ``/api`` or ``/v2``.
    prefix: str
    app: FastAPI
    #: The tag of its operations, and the prefix of its schemas' and operations' names.
    tag: str
    #: A short name without spaces, for schema names and operation ids (``Livepeer``).
    slug: str


def _rename_refs(node: Any, renamed: Mapping[str, str]) -> Any:
    """A copy of ``node`` whose schema references point at the renamed schemas: ``$ref``
    values and the values of a discriminator's ``mapping`` alike."""
    if isinstance(node, dict):
        return {key: _rename_refs(value, renamed) for key, value in node.items()}
    if isinstance(node, list):
        return [_rename_refs(item, renamed) for item in node]
    if isinstance(node, str) and node.startswith(_SCHEMA_REF):
        name = node.removeprefix(_SCHEMA_REF)
        return _SCHEMA_REF + renamed.get(name, name)
    return node


def combined_openapi(
    root: FastAPI, dialects: Sequence[Dialect], *, description: str
) -> dict[str, Any]:
    """One document with the root application's operations and every dialect's.

    A dialect's paths get its prefix, its operations its tag (and an ``operationId`` prefixed
    with its slug), and its schemas its slug in front of their names (both dialects have an
    ``HTTPValidationError``, for example), with every reference following.
    """
    document = copy.deepcopy(root.openapi())
    document["info"]["description"] = description
    paths: dict[str, Any] = document.setdefault("paths", {})
    schemas: dict[str, Any] = document.setdefault("components", {}).setdefault("schemas", {})
    tags: list[dict[str, Any]] = []
    for dialect in dialects:
        own = dialect.app.openapi()
        own_schemas = own.get("components", {}).get("schemas", {})
        renamed = {name: f"{dialect.slug}{name}" for name in own_schemas}
        for name, schema in own_schemas.items():
            schemas[renamed[name]] = _rename_refs(schema, renamed)
        for path, item in own.get("paths", {}).items():
            moved = _rename_refs(item, renamed)
            for method in HTTP_METHODS:
                operation = moved.get(method)
                if operation is None:
                    continue
                operation["tags"] = [dialect.tag]
                if "operationId" in operation:
                    operation["operationId"] = f"{dialect.slug}_{operation['operationId']}"
            paths[dialect.prefix + path] = moved
        info = own.get("info", {})
        tags.append(
            {
                "name": dialect.tag,
                "description": f"{info.get('description', '')}  Its own document: "
                f"[{dialect.prefix}/openapi.json]({dialect.prefix}/openapi.json), shown at "
                f"[{dialect.prefix}/docs]({dialect.prefix}/docs).",
            }
        )
    untagged = [
        item[method]
        for item in paths.values()
        for method in HTTP_METHODS
        if method in item and not item[method].get("tags")
    ]
    for operation in untagged:  # the service's own operations
        operation["tags"] = ["Service"]
    if untagged:
        tags.append({"name": "Service", "description": "The service's own endpoints."})
    document["tags"] = tags
    if not schemas:
        del document["components"]["schemas"]
    return document


def add_pages(app: FastAPI, *, title: str, openapi_url: str) -> None:
    """Serve Swagger UI at ``/docs`` of ``app`` (created with ``docs_url=None,
    redoc_url=None``), showing the document at ``openapi_url`` of ``app``, with its files under
    ``/docs/assets``."""
    app.mount(_ASSETS_PATH, StaticFiles(directory=ASSETS_DIR), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = str(request.scope.get("root_path", "")).rstrip("/")
        page = get_swagger_ui_html(
            openapi_url=root + openapi_url,
            title=f"{title}: API documentation",
            swagger_js_url=f"{root}{_ASSETS_PATH}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{_ASSETS_PATH}/swagger-ui.css",
            swagger_favicon_url=f"{root}{_ASSETS_PATH}/favicon.png",
            swagger_ui_parameters=_SWAGGER_PARAMETERS,
        )
        page.headers["Content-Security-Policy"] = _content_security_policy(bytes(page.body))
        page.headers["X-Content-Type-Options"] = "nosniff"
        page.headers["Referrer-Policy"] = "same-origin"
        return page


def _content_security_policy(page: bytes) -> str:
    """The Content-Security-Policy of a Swagger UI ``page``: its inline scripts by their hash."""
    hashes = [
        "'sha256-" + base64.b64encode(hashlib.sha256(script).digest()).decode() + "'"
        for script in _INLINE_SCRIPT.findall(page)
    ]
    return "; ".join(
        (
            "default-src 'self'",
            " ".join(("script-src 'self'", *hashes)),
            "style-src 'self'",
            "img-src 'self' data:",
            "connect-src 'self'",
            "object-src 'none'",
            "base-uri 'self'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        )
    )


def install(root: FastAPI, dialects: Sequence[Dialect]) -> None:
    """``/openapi.json`` (every operation) and ``/docs`` on the root application,
    which must be created with ``openapi_url=None, docs_url=None, redoc_url=None``."""
    description = (
        "Both dialects of this service in one document: Livepeer Studio's API under `/api` "
        "and Flat's under `/v2`.  "
        "Each dialect also has its own document: "
        + ", ".join(f"[{d.prefix}/openapi.json]({d.prefix}/openapi.json)" for d in dialects)
        + "."
    )
    cached: list[dict[str, Any]] = []

    @root.get("/openapi.json", include_in_schema=False)
    async def openapi() -> JSONResponse:
        if not cached:
            cached.append(combined_openapi(root, dialects, description=description))
        return JSONResponse(cached[0])

    add_pages(root, title=root.title, openapi_url="/openapi.json")
