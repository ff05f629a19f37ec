"""Who is asking (``Authorization: Bearer <key>``), and what every ``/v2`` handler shares."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from mediatasks import taskstore
from mediatasks.api.flat import links
from mediatasks.api.runtime import Runtime

__all__ = ["FlatError", "Key", "RuntimeDep", "SignerDep", "runtime_of", "signer_of"]


class FlatError(Exception):
    """An error answered with ``status`` and a ``FlatErrorResponse``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def runtime_of(request: Request) -> Runtime:
    """The service's open stores, set on the application at creation."""
    runtime: Runtime = request.app.state.runtime
    return runtime


def signer_of(request: Request) -> links.Signer:
    """The signer of task result links, made once with the application."""
    signer: links.Signer = request.app.state.signer
    return signer


async def _key_of(
    request: Request, authorization: Annotated[str | None, Header()] = None
) -> taskstore.ApiKey:
    """The API key of the request (``Authorization: Bearer <key>``)."""
    if not authorization:
        raise FlatError(401, "UNAUTHORIZED", "an access token is required (Authorization: Bearer)")
    scheme, _, secret = authorization.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise FlatError(401, "UNAUTHORIZED", "use an access token: Authorization: Bearer <token>")
    key = await runtime_of(request).keys.authenticate(secret.strip())
    if key is None:
        raise FlatError(401, "UNAUTHORIZED", "the access token is not valid")
    return key


#: The caller's API key; a key never sees another project's scores or tasks.
Key = Annotated[taskstore.ApiKey, Depends(_key_of)]
RuntimeDep = Annotated[Runtime, Depends(runtime_of)]
SignerDep = Annotated[links.Signer, Depends(signer_of)]
