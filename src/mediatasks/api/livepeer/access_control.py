"""``/access-control/signing-key``: a project's signing keys, as Livepeer's access control has
them.

Creating a key makes an ES256 key pair and answers the private half (``privateKey``, Base64 of a
PKCS #8 PEM) that once; only the public half (``publicKey``, Base64 of the SPKI PEM) is kept and
shown afterwards.  Create answers 200 (Studio answers 201, which the official SDK does not take),
update and delete 204.  A project has at most 10 keys (409 past that).  Tokens signed with a
project's enabled keys play its ``jwt`` assets (``mediatasks.access``).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Response
from pydantic import Field

from mediatasks import access, taskstore
from mediatasks.api.livepeer import schemas, wire
from mediatasks.api.livepeer.auth import ApiError, Project, runtime_of
from mediatasks.api.runtime import Runtime

__all__ = ["NewSigningKey", "SigningKeyPatch", "router", "signing_key_json"]

router = APIRouter(prefix="/access-control")
RuntimeDep = Annotated[Runtime, Depends(runtime_of)]


class NewSigningKey(schemas.Body):
    """Livepeer's ``new-signing-key-payload``; the SDK sends no body at all."""

    name: str | None = Field(default=None, min_length=1, max_length=500)
    project_id: str | None = None


class SigningKeyPatch(schemas.Body):
    """``PATCH /access-control/signing-key/{keyId}``."""

    name: str | None = Field(default=None, min_length=1, max_length=500)
    disabled: bool | None = None


def signing_key_json(key: taskstore.SigningKey) -> dict[str, Any]:
    """A signing key as Livepeer's ``signing-key`` schema has it (never its private half)."""
    body: dict[str, Any] = {
        "id": key.id,
        "name": key.name,
        "projectId": key.project_id,
        "createdAt": wire.ms(key.created_at),
        "publicKey": key.public_key,
        "disabled": key.disabled,
    }
    if key.last_seen_at is not None:
        body["lastSeen"] = wire.ms(key.last_seen_at)
    return body


@router.post("/signing-key")
async def create_signing_key(
    project: Project,
    runtime: RuntimeDep,
    body: Annotated[NewSigningKey | None, Body()] = None,
) -> dict[str, Any]:
    wanted = body or NewSigningKey()
    if wanted.project_id is not None and wanted.project_id != project:
        raise ApiError(422, "projectId: must be the project of the API key")
    public_key, private_key = access.new_key_pair()
    key = await runtime.store.create_signing_key(project, name=wanted.name, public_key=public_key)
    return {**signing_key_json(key), "privateKey": private_key}


@router.get("/signing-key")
async def list_signing_keys(project: Project, runtime: RuntimeDep) -> list[dict[str, Any]]:
    return [signing_key_json(key) for key in await runtime.store.list_signing_keys(project)]


@router.get("/signing-key/{key_id}")
async def get_signing_key(key_id: str, project: Project, runtime: RuntimeDep) -> dict[str, Any]:
    return signing_key_json(await runtime.store.get_signing_key(key_id, project))


@router.patch("/signing-key/{key_id}", status_code=204)
async def update_signing_key(
    key_id: str, body: SigningKeyPatch, project: Project, runtime: RuntimeDep
) -> Response:
    await runtime.store.update_signing_key(key_id, project, name=body.name, disabled=body.disabled)
    return Response(status_code=204)


@router.delete("/signing-key/{key_id}", status_code=204)
async def delete_signing_key(key_id: str, project: Project, runtime: RuntimeDep) -> Response:
    await runtime.store.delete_signing_key(key_id, project)
    return Response(status_code=204)
