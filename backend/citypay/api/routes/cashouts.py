"""Cash-out (환전): a signed-in merchant asks for part of its balance to be paid to its bank
account; the merchant, and the city's operators and auditors, follow it to settlement."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from citypay.api.auth import PrincipalDep, allow
from citypay.api.deps import CityDep, PlatformDep, path_address
from citypay.auth.models import Role
from citypay.cashout.checks import CashOutRequest, treasury_domain
from citypay.cashout.models import CashOut

router = APIRouter(tags=["cash-outs"])

_READERS = frozenset({Role.OPERATOR, Role.AUDITOR})


class CashOutIn(BaseModel):
    """The merchant's EIP-712 CashOutAuthorization (GET /v1/cities/{city}/cashout-domain)."""

    model_config = ConfigDict(extra="forbid")

    amount: int = Field(gt=0, description="KRW (whole tokens)")
    validBefore: int = Field(gt=0, description="unix seconds; refused after this")
    nonce: str = Field(pattern=r"^0x[0-9a-fA-F]{64}$", description="random bytes32")
    signature: str = Field(pattern=r"^0x[0-9a-fA-F]{130}$", description="65 bytes: r, s, v")


class CashOutPublic(BaseModel):
    id: int
    city: str
    merchant: str
    amount: int
    nonce: str
    status: str
    redemptionId: int | None
    redemptionTx: str | None
    orderId: str | None
    bankReference: str | None
    failureReason: str | None
    closingTx: str | None
    createdAt: datetime
    updatedAt: datetime

    @classmethod
    def of(cls, c: CashOut) -> CashOutPublic:
        return cls(
            id=c.id,
            city=c.city,
            merchant=c.merchant,
            amount=c.amount,
            nonce=c.nonce,
            status=c.status.value,
            redemptionId=c.redemption_id,
            redemptionTx=c.redemption_tx,
            orderId=c.order_id,
            bankReference=c.bank_reference,
            failureReason=c.failure_reason,
            closingTx=c.closing_tx,
            createdAt=c.created_at,
            updatedAt=c.updated_at,
        )


class TreasuryDomainPublic(BaseModel):
    name: str
    version: str
    chainId: int
    verifyingContract: str


@router.get("/v1/cities/{city}/cashout-domain", response_model=TreasuryDomainPublic)
def cash_out_domain(city: CityDep):
    """Public: the EIP-712 domain a merchant signs its CashOutAuthorization for."""
    return TreasuryDomainPublic(**treasury_domain(city).as_dict())


@router.post(
    "/v1/cities/{city}/merchants/{merchant}/cashouts",
    status_code=202,
    response_model=CashOutPublic,
)
def request_cash_out(
    city: CityDep,
    merchant: str,
    body: CashOutIn,
    platform: PlatformDep,
    principal: PrincipalDep,
    response: Response,
):
    """For the merchant's own signed-in wallet. Accepted (202) once checked; the same request
    posted again returns the same cash-out (200)."""
    merchant = path_address(merchant, "merchant")
    allow(principal, city=city.code, wallets=(merchant,))
    request = CashOutRequest(
        merchant=merchant,
        amount=body.amount,
        valid_before=body.validBefore,
        nonce=bytes.fromhex(body.nonce[2:]),
        signature=bytes.fromhex(body.signature[2:]),
    )
    cash_out, created = platform.cashouts.request(city, request)
    if not created:
        response.status_code = 200
    return CashOutPublic.of(cash_out)


@router.get(
    "/v1/cities/{city}/merchants/{merchant}/cashouts/{cash_out_id}", response_model=CashOutPublic
)
def get_cash_out(
    city: CityDep, merchant: str, cash_out_id: int, platform: PlatformDep, principal: PrincipalDep
):
    """For the merchant's wallet and the city's operators and auditors."""
    merchant = path_address(merchant, "merchant")
    allow(principal, city=city.code, roles=_READERS, wallets=(merchant,))
    return CashOutPublic.of(platform.cashouts.get(city.code, merchant, cash_out_id))


@router.get("/v1/cities/{city}/merchants/{merchant}/cashouts", response_model=list[CashOutPublic])
def list_cash_outs(
    city: CityDep,
    merchant: str,
    platform: PlatformDep,
    principal: PrincipalDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
):
    """Newest first. For the merchant's wallet and the city's operators and auditors."""
    merchant = path_address(merchant, "merchant")
    allow(principal, city=city.code, roles=_READERS, wallets=(merchant,))
    return [CashOutPublic.of(c) for c in platform.cashouts.list(city.code, merchant, limit)]
