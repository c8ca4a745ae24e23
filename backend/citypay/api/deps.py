"""Dependencies of the routes, as Annotated aliases."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Annotated

from eth_utils import is_checksum_address, to_checksum_address
from fastapi import Depends, Request

from citypay.api.state import Platform
from citypay.chain.deployment import City
from citypay.core.errors import Unprocessable


# The two are async, though they do not wait on anything: FastAPI runs a plain `def` dependency in
# its thread pool, two thread hops for every request.
async def get_platform(request: Request) -> Platform:
    return request.app.state.platform


PlatformDep = Annotated[Platform, Depends(get_platform)]


async def get_city(city: str, platform: PlatformDep) -> City:
    return platform.deployment.city(city)


CityDep = Annotated[City, Depends(get_city)]


@lru_cache(maxsize=65_536)  # the same payers and merchants come back; each check is 2 keccaks
def checked_address(value: str) -> str:
    """A 0x address, all lower or upper case or with a valid EIP-55 checksum, checksummed."""
    if not re.fullmatch(r"0x[0-9a-fA-F]{40}", value):
        raise ValueError("expected a 0x-prefixed 20-byte hex address")
    digits = value[2:]
    if digits not in (digits.lower(), digits.upper()) and not is_checksum_address(value):
        raise ValueError("mixed-case address with a wrong EIP-55 checksum")
    return to_checksum_address(value)


def path_address(value: str, field: str) -> str:
    """checked_address for an address in a URL path: a 422 naming the path segment."""
    try:
        return checked_address(value)
    except ValueError as wrong:
        raise Unprocessable(
            "invalid_address",
            str(wrong),
            field=field,
            value=value,
            accepted="a 0x-prefixed 20-byte hex address (EIP-55 checksum if mixed case)",
        ) from None
