"""Who is asking: API keys (``Authorization: Bearer <key>``) and the project they belong to."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from mediatasks.api.runtime import Runtime

__all__ = ["ApiError", "Project", "project_of", "runtime_of"]


class ApiError(Exception):
    """An error answered with ``status`` and ``{"errors": [message]}``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def runtime_of(request: Request) -> Runtime:
    """The service's open stores, set on the application at creation."""
    runtime: Runtime = request.app.state.runtime
    return runtime


async def project_of(runtime: Runtime, authorization: str | None) -> str:
    """The project of the API key in an ``Authorization`` header's value; 401 otherwise."""
    if not authorization:
        raise ApiError(401, "request is not authenticated")
    scheme, _, secret = authorization.partition(" ")
    if scheme.lower() != "bearer":
        raise ApiError(401, f"unsupported authorization header scheme: {scheme}")
    key = await runtime.keys.authenticate(secret.strip())
    if key is None:
        raise ApiError(401, "no token found for the API key")
    return key.project_id


async def _project_of(
    request: Request, authorization: Annotated[str | None, Header()] = None
) -> str:
    """The project of the request's API key."""
    return await project_of(runtime_of(request), authorization)


#: The project of the caller; a key never sees another project's resources.
Project = Annotated[str, Depends(_project_of)]
