"""What a wallet needs to know about a city before it signs: chain, token, EIP-712 domain."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from citypay.api.deps import CityDep, PlatformDep

router = APIRouter(tags=["cities"])


class Eip712Domain(BaseModel):
    name: str
    version: str
    chainId: int
    verifyingContract: str


class CityPublic(BaseModel):
    code: str
    name: str
    symbol: str
    chainId: int
    token: str
    decimals: int
    domain: Eip712Domain


@router.get("/v1/cities/{city}", response_model=CityPublic)
def city_info(city: CityDep, platform: PlatformDep):
    """Public: a wallet checks a QR code's chain id and token against this before it signs."""
    domain = platform.payments.domain(city.code)
    return CityPublic(
        code=city.code,
        name=city.name,
        symbol=city.symbol,
        chainId=platform.deployment.chain_id,
        token=city.chain.token.address,
        decimals=0,  # 1 token = 1 KRW
        domain=Eip712Domain(**domain.as_dict()),
    )
