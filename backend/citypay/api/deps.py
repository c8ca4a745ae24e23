"""Dependencies of the routes, as Annotated aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from citypay.api.state import Platform
from citypay.chain.deployment import City
from citypay.core.errors import Unprocessable
from citypay.core.fields import ADDRESS_ACCEPTED, checked_address


# The two are async, though they do not wait on anything: FastAPI runs a plain `def` dependency in
# its thread pool, two thread hops for every request.
async def get_platform(request: Request) -> Platform:
    return request.app.state.platform


PlatformDep = Annotated[Platform, Depends(get_platform)]


async def get_city(city: str, platform: PlatformDep) -> City:
    return platform.deployment.city(city)


CityDep = Annotated[City, Depends(get_city)]


def path_address(value: str, field: str) -> str:
    """checked_address for an address in a URL path: a 422 naming the path segment (the
    auditor's API; the backend's routes take the Address type)."""
    try:
        return checked_address(value)
    except ValueError as wrong:
        raise Unprocessable(
            "invalid_address",
            str(wrong),
            field=field,
            value=value,
            accepted=ADDRESS_ACCEPTED,
        ) from None
