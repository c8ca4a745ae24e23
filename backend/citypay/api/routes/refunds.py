"""Refunds (환불): a merchant's signed RefundWithAuthorization in, relayed by the backend; its
status out. The merchant's phone or till sends no transaction of its own."""

from __future__ import annotations

from fastapi import APIRouter, Response
from pydantic import Field

from citypay.api.auth import PrincipalDep, allow
from citypay.api.deps import CityDep, PlatformDep
from citypay.api.openapi import errors
from citypay.api.relayed import RelayedPublic, SignatureIn
from citypay.auth.models import Role
from citypay.authorization import SignedRefund
from citypay.core.fields import Address, Amount, Hex32, RowId, UnixTime
from citypay.refund.models import Refund

router = APIRouter(tags=["refunds"])

# Who may post a merchant's refund besides the merchant's own signed-in wallet: its till.
_SENDERS = frozenset({Role.POS})
_READERS = frozenset({Role.OPERATOR, Role.AUDITOR, Role.POS})


class RefundIn(SignatureIn):
    """A RefundWithAuthorization as the merchant's wallet signed it (EIP-712, the token's domain
    from GET /v1/cities/{city}): v, r, s or a 65-byte signature."""

    merchant: Address
    payer: Address
    paymentId: Hex32 = Field(description="the payment's invoice id or nonce; zero: plain transfers")
    nonce: Hex32 = Field(description="random, one of the merchant's")
    value: Amount
    validAfter: UnixTime = Field(description="unix seconds; refused until after this")
    validBefore: UnixTime = Field(
        description="unix seconds; refused from this on, and refused (422) if less than "
        "RELAY_MIN_VALIDITY (30 s) or more than RELAY_MAX_VALIDITY (1 day) after the chain's time"
    )

    def signed(self) -> SignedRefund:
        v, r, s = self.vrs()
        return SignedRefund(
            merchant=self.merchant,
            payer=self.payer,
            payment_id=bytes.fromhex(self.paymentId[2:]),
            nonce=bytes.fromhex(self.nonce[2:]),
            value=self.value,
            valid_after=self.validAfter,
            valid_before=self.validBefore,
            v=v,
            r=r,
            s=s,
        )


class RefundPublic(RelayedPublic):
    id: int
    city: str
    merchant: str
    payer: str
    paymentId: str
    nonce: str
    value: int

    @classmethod
    def of(cls, refund: Refund, final_up_to: int) -> RefundPublic:
        return cls(
            id=refund.id,
            city=refund.city,
            merchant=refund.merchant,
            payer=refund.payer,
            paymentId=refund.payment_id,
            nonce=refund.nonce,
            value=refund.value,
            **cls.progress(refund, final_up_to),
        )


@router.post(
    "/v1/cities/{city}/refunds",
    status_code=202,
    response_model=RefundPublic,
    responses={200: {"model": RefundPublic, "description": "posted before: the same refund"}}
    | errors(409),
)
def relay_refund(
    city: CityDep,
    body: RefundIn,
    platform: PlatformDep,
    principal: PrincipalDep,
    response: Response,
):
    """For the merchant's signed-in wallet and the city's tills. Checked against the chain and
    accepted (202); the same refund posted again returns the same refund (200)."""
    allow(principal, city=city.code, roles=_SENDERS, wallets=(body.merchant,))
    refund, created = platform.refunds.request(city, body.signed())
    if not created:
        response.status_code = 200
    return RefundPublic.of(refund, platform.finality.final_up_to())


@router.get("/v1/cities/{city}/refunds/{refund_id}", response_model=RefundPublic)
def get_refund(city: CityDep, refund_id: RowId, platform: PlatformDep, principal: PrincipalDep):
    """For the merchant's and the payer's wallets and the city's operators, auditors and tills."""
    refund = platform.refunds.get(city.code, refund_id)
    allow(principal, city=city.code, roles=_READERS, wallets=(refund.merchant, refund.payer))
    return RefundPublic.of(refund, platform.finality.final_up_to())
