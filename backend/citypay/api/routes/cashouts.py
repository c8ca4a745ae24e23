"""Cash-out (환전): a signed-in merchant asks for part of its balance to be paid to its bank
account; the merchant, and the city's operators and auditors, follow it to settlement."""

from __future__ import annotations

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from citypay.api.auth import PrincipalDep, allow
from citypay.api.deps import CityDep, PlatformDep
from citypay.api.openapi import SESSION, errors, security
from citypay.auth.models import Role
from citypay.cashout.authorization import MAX_CASH_OUT_VALIDITY, CashOutTerms
from citypay.cashout.checks import CashOutRequest, treasury_domain
from citypay.cashout.models import CashOut, CashOutStatus
from citypay.chain.enums import Status
from citypay.core.errors import NotFound
from citypay.core.fields import (
    Address,
    Amount,
    Hex32,
    RequestModel,
    RowId,
    Signature65,
    UnixTime,
    UtcDateTime,
    count,
)

router = APIRouter(tags=["cash-outs"])

_READERS = frozenset({Role.OPERATOR, Role.AUDITOR})


CashOutLimit = count(1, 500, "how many, newest first")


class CashOutIn(RequestModel):
    """The merchant's EIP-712 CashOutAuthorization(merchant, amount, payoutAccountHash,
    validAfter, validBefore, nonce) for the domain of GET /v1/cities/{city}/cashout-domain, naming
    the payout account of GET .../merchants/{merchant}/payout-account."""

    amount: Amount
    payoutAccountHash: Hex32 = Field(
        description="bytes32: the payout account the registry holds for the merchant"
    )
    validAfter: UnixTime = Field(description="unix seconds; refused (422) until after this")
    validBefore: UnixTime = Field(
        description="unix seconds; refused (422) if less than RELAY_MIN_VALIDITY (30 s) or more "
        f"than RELAY_MAX_VALIDITY (1 day) after the chain's time, or more than "
        f"{MAX_CASH_OUT_VALIDITY} s after validAfter"
    )
    nonce: Hex32 = Field(description="random bytes32")
    signature: Signature65


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
    final: bool = Field(
        description="refused, held for an operator, or settled or returned in a block at or "
        "below the chain's head less CHAIN_CONFIRMATIONS: the status will not change by itself"
    )
    createdAt: UtcDateTime
    updatedAt: UtcDateTime

    @classmethod
    def of(cls, c: CashOut, final_up_to: int) -> CashOutPublic:
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
            final=c.status in (CashOutStatus.REFUSED, CashOutStatus.HELD)
            or (c.closed_block is not None and c.closed_block <= final_up_to),
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


class PayoutAccountPublic(BaseModel):
    merchant: str
    payoutAccountHash: str = Field(description="bytes32, as the registry holds it")


@router.get(
    "/v1/cities/{city}/merchants/{merchant}/payout-account",
    response_model=PayoutAccountPublic,
    responses=errors(404),
)
def payout_account(city: CityDep, merchant: Address):
    """Public (a hash, on chain already): the payout account a merchant's cash-out names."""
    record = city.chain.registry.call("merchantOf", merchant)
    if record.status is Status.NONE:
        raise NotFound(
            "unknown_merchant",
            f"{merchant} is not a merchant of {city.code}",
            field="merchant",
            value=merchant,
            accepted=f"the wallet of a merchant registered in {city.code}",
        )
    return PayoutAccountPublic(
        merchant=merchant, payoutAccountHash="0x" + record.payoutAccountHash.hex()
    )


@router.post(
    "/v1/cities/{city}/merchants/{merchant}/cashouts",
    status_code=202,
    response_model=CashOutPublic,
    responses={200: {"model": CashOutPublic, "description": "posted before: the same cash-out"}}
    | errors(409),
    openapi_extra=security([SESSION]),
)
def request_cash_out(
    city: CityDep,
    merchant: Address,
    body: CashOutIn,
    platform: PlatformDep,
    principal: PrincipalDep,
    response: Response,
):
    """For the merchant's own signed-in wallet. Accepted (202) once checked; the same request
    posted again returns the same cash-out (200)."""
    allow(principal, city=city.code, wallets=(merchant,))
    terms = CashOutTerms(
        merchant=merchant,
        amount=body.amount,
        payout_account_hash=bytes.fromhex(body.payoutAccountHash[2:]),
        valid_after=body.validAfter,
        valid_before=body.validBefore,
        nonce=bytes.fromhex(body.nonce[2:]),
    )
    request = CashOutRequest(terms=terms, signature=bytes.fromhex(body.signature[2:]))
    cash_out, created = platform.cashouts.request(city, request)
    if not created:
        response.status_code = 200
    return CashOutPublic.of(cash_out, platform.finality.final_up_to())


@router.get(
    "/v1/cities/{city}/merchants/{merchant}/cashouts/{cash_out_id}", response_model=CashOutPublic
)
def get_cash_out(
    city: CityDep,
    merchant: Address,
    cash_out_id: RowId,
    platform: PlatformDep,
    principal: PrincipalDep,
):
    """For the merchant's wallet and the city's operators and auditors."""
    allow(principal, city=city.code, roles=_READERS, wallets=(merchant,))
    return CashOutPublic.of(
        platform.cashouts.get(city.code, merchant, cash_out_id), platform.finality.final_up_to()
    )


@router.get("/v1/cities/{city}/merchants/{merchant}/cashouts", response_model=list[CashOutPublic])
def list_cash_outs(
    city: CityDep,
    merchant: Address,
    platform: PlatformDep,
    principal: PrincipalDep,
    limit: CashOutLimit = 100,
):
    """Newest first. For the merchant's wallet and the city's operators and auditors."""
    allow(principal, city=city.code, roles=_READERS, wallets=(merchant,))
    final_up_to = platform.finality.final_up_to()
    return [
        CashOutPublic.of(c, final_up_to) for c in platform.cashouts.list(city.code, merchant, limit)
    ]
