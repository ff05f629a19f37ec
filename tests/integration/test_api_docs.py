"""``/openapi.json`` describes every operation of both dialects in one valid document, and the
documentation pages load their scripts from the service itself."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest

from mediatasks import app, settings
from mediatasks.api import docs

METHODS = docs.HTTP_METHODS


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    application = app.create_app(settings.Settings(data_dir=tmp_path / "data"), with_worker=False)
    transport = httpx.ASGITransport(app=application)
    async with (
        application.router.lifespan_context(application),
        httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client,
    ):
        yield client


async def _document(client: httpx.AsyncClient, url: str) -> dict[str, Any]:
    answer = await client.get(url)
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


def _operations(document: dict[str, Any], prefix: str = "") -> dict[tuple[str, str], Any]:
    return {
        (method, prefix + path): operation
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    }


async def test_the_root_document_has_every_operation_of_both_dialects(
    client: httpx.AsyncClient,
) -> None:
    combined = await _document(client, "/openapi.json")
    livepeer = await _document(client, "/api/openapi.json")
    flat = await _document(client, "/v2/openapi.json")
    every = _operations(combined)
    for prefix, own, tag in (
        (("/api", livepeer, "Livepeer Studio (/api)")),
        ("/v2", flat, "Flat (/v2)"),
    ):
        mine = _operations(own, prefix)
        assert mine, prefix
        assert mine.keys() <= every.keys()
        for key in mine:
            assert every[key]["tags"] == [tag], key
    assert ("post", "/api/asset/request-upload") in every
    assert ("post", "/v2/scores/{score_id}/revisions/{revision_id}/{file_format}/task") in every
    ids = [operation["operationId"] for operation in every.values()]
    assert len(ids) == len(set(ids))
    assert [tag["name"] for tag in combined["tags"]][:2] == ["Livepeer Studio (/api)", "Flat (/v2)"]


async def test_every_schema_reference_resolves(client: httpx.AsyncClient) -> None:
    combined = await _document(client, "/openapi.json")
    text = json.dumps(combined)
    referenced = set(re.findall(r'"#/components/schemas/([^"]+)"', text))
    assert referenced
    assert referenced <= combined["components"]["schemas"].keys()
    # Both dialects' schemas of the same name are kept apart.
    assert {"LivepeerHTTPValidationError", "FlatHTTPValidationError"} <= referenced | set(
        combined["components"]["schemas"]
    )
    # A request body schema checks a body as the dialect's own schema does.
    upload = combined["paths"]["/api/asset/upload/url"]["post"]
    ref = upload["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    schema = {**combined["components"]["schemas"][ref.rsplit("/", 1)[1]]}
    resolver_doc = {"components": combined["components"], **schema}
    jsonschema.validate({"name": "a", "url": "http://127.0.0.1/a.mp4"}, resolver_doc)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"name": "a"}, resolver_doc)


@pytest.mark.parametrize("page", ["/docs", "/api/docs", "/v2/docs"])
async def test_the_pages_load_swagger_ui_from_the_service(
    client: httpx.AsyncClient, page: str
) -> None:
    answer = await client.get(page)
    assert answer.status_code == 200
    assert "http://" not in answer.text and "https://" not in answer.text
    prefix = page.removesuffix("/docs")
    assert f"url: '{prefix}/openapi.json'" in answer.text
    for asset in re.findall(r'(?:src|href)="([^"]+)"', answer.text):
        assert asset.startswith(f"{prefix}/docs/assets/"), asset
        loaded = await client.get(asset)
        assert loaded.status_code == 200 and loaded.content, asset
    assert '"validatorUrl": null' in answer.text


async def test_the_root_no_longer_serves_fastapis_cdn_pages(client: httpx.AsyncClient) -> None:
    assert (await client.get("/redoc")).status_code == 404
    assert (await client.get("/api/redoc")).status_code == 404
