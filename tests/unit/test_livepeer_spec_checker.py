"""The spec checker of ``tests/livepeerspec.py`` catches what it must: a write-only field, an
internal field, an undocumented extra, a missing required field; documented extras pass."""

from __future__ import annotations

from typing import Any

import pytest

from tests import livepeerspec
from tests.conftest import IN_CI


@pytest.fixture(scope="module")
def spec() -> livepeerspec.Spec:
    if livepeerspec.spec_path() is None:
        if IN_CI:
            raise RuntimeError("Livepeer's OpenAPI document (shared/reference/specs) is missing")
        pytest.skip("no shared/reference/specs/livepeer-api-schema.yaml beside the repository")
    return livepeerspec.load()


def task(**changes: Any) -> dict[str, Any]:
    found: dict[str, Any] = {
        "id": "t",
        "type": "upload",
        "createdAt": 1,
        "params": {"upload": {"url": "https://example.com/v.mp4"}},
        "status": {"phase": "waiting", "updatedAt": 2, "retries": 0, "queuePosition": 1},
    }
    found.update(changes)
    return found


def check(spec: livepeerspec.Spec, path: str, body: Any, method: str = "GET") -> list[str]:
    return spec.mismatches(livepeerspec.Answer(method, path, 200, body))


def test_documented_extras_pass(spec: livepeerspec.Spec) -> None:
    assert "status.queuePosition" in spec.extras
    assert check(spec, "/task/{taskId}", task()) == []
    assert check(spec, "/task", [task(), task(id="u")]) == []


def test_internal_and_unknown_fields_are_mismatches(spec: livepeerspec.Spec) -> None:
    internal = task(params={"upload": {"url": "u", "uploadedObjectKey": "asset/x/video"}})
    assert any("uploadedObjectKey" in m for m in check(spec, "/task/{taskId}", internal))
    assert check(spec, "/task/{taskId}", task(color="red"))
    assert check(spec, "/task/{taskId}", task(status={"phase": "waiting"}))  # no updatedAt
    assert check(spec, "/task/{taskId}", task(type="audio-export"))


def test_write_only_fields_are_mismatches(spec: livepeerspec.Spec) -> None:
    hook = {"id": "w", "name": "h", "url": "https://h.example/", "events": []}
    assert check(spec, "/webhook/{id}", hook) == []
    secret = check(spec, "/webhook/{id}", {**hook, "sharedSecret": "s"})
    assert any("write-only" in m for m in secret)
    asset = {"id": "a", "name": "n", "source": {"type": "directUpload"}}
    assert check(spec, "/asset/{assetId}", asset) == []
    assert any(
        "write-only" in m for m in check(spec, "/asset/{assetId}", {**asset, "staticMp4": True})
    )
    pinata = task(type="export", params={"export": {"ipfs": {"pinata": {"jwt": "***"}}}})
    assert check(spec, "/task/{taskId}", pinata)


def test_the_quirks_are_read_as_meant(spec: livepeerspec.Spec) -> None:
    # properties: {$ref: ...}: an IPFS export's spec fields and an asset's CID are allowed.
    ipfs = task(type="export", params={"export": {"ipfs": {"nftMetadataTemplate": "file"}}})
    assert check(spec, "/task/{taskId}", ipfs) == []
    stored = {
        "id": "a",
        "name": "n",
        "source": {"type": "directUpload"},
        "storage": {"ipfs": {"spec": {}, "cid": "bafy", "url": "ipfs://bafy"}},
    }
    assert check(spec, "/asset/{assetId}", stored) == []
