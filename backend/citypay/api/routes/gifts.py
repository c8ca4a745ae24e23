"""Gifts (선물하기): a resident's signed GiftAuthorization in, relayed by the backend; its status
out; and what a wallet needs before its resident signs: the domain, and what it may give."""

from __future__ import annotations

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field

from citypay.api.auth import PrincipalDep, allow
from citypay.api.deps import CityDep, PlatformDep
from citypay.api.openapi import errors
from citypay.api.relayed import RelayedPublic, SignatureIn
from citypay.auth.models import Role
from citypay.authorization import SignedAuthorization
from citypay.core.fields import Address, Amount, Hex32, RowId, UnixTime
from citypay.gifts.checks import MAX_GIFT_VALIDITY
from citypay.gifts.models import Gift

router = APIRouter(tags=["gifts"])

_READERS = frozenset({Role.OPERATOR, Role.AUDITOR})


class GiftIn(SignatureIn):
    """A GiftAuthorization(from, to, value, validAfter, validBefore, nonce) as the giver's wallet
    signed it (EIP-712, the domain of GET /v1/cities/{city}/gift-domain): v, r, s or a 65-byte
    signature."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    from_: Address = Field(alias="from", description="the giver: an active resident")
    to: Address = Field(description="the receiver: another active resident of the city")
    value: Amount = Field(description="KRW of general money the giver bought with KRW")
    validAfter: UnixTime = Field(description="unix seconds; refused (422) until after this")
    validBefore: UnixTime = Field(
        description="unix seconds; refused (422) if less than RELAY_MIN_VALIDITY (30 s) or more "
        f"than RELAY_MAX_VALIDITY (1 day) after the chain's time, or more than "
        f"{MAX_GIFT_VALIDITY} s after validAfter"
    )
    nonce: Hex32 = Field(description="random, one of the giver's; not zero")

    def signed(self) -> SignedAuthorization:
        v, r, s = self.vrs()
        return SignedAuthorization(
            from_=self.from_,
            to=self.to,
            value=self.value,
            valid_after=self.validAfter,
            valid_before=self.validBefore,
            nonce=bytes.fromhex(self.nonce[2:]),
            v=v,
            r=r,
            s=s,
        )


class GiftPublic(RelayedPublic):
    id: int
    city: str
    from_: str = Field(alias="from")
    to: str
    value: int
    nonce: str

    model_config = ConfigDict(populate_by_name=True)

    @classmethod
    def of(cls, gift: Gift, final_up_to: int) -> GiftPublic:
        return cls(
            id=gift.id,
            city=gift.city,
            from_=gift.giver,
            to=gift.receiver,
            value=gift.value,
            nonce=gift.nonce,
            **cls.progress(gift, final_up_to),
        )


class GiftDomainPublic(BaseModel):
    name: str = Field(description="the token's name and ' Gifts'")
    version: str
    chainId: int
    verifyingContract: str = Field(description="the city's gifts contract (CityGifts)")


class GiftablePublic(BaseModel):
    city: str
    account: str
    block: int = Field(description="the block these figures are read at")
    giftable: int = Field(
        description="the most the account may give now: its general money bought with KRW, "
        "within what is left of its monthly send cap (the receiver's caps aside)"
    )
    sentThisMonth: int = Field(description="KRW given this month (KST)")
    receivedThisMonth: int = Field(description="KRW received in gifts this month (KST)")
    monthlySendCap: int
    monthlyReceiveCap: int


@router.get("/v1/cities/{city}/gift-domain", response_model=GiftDomainPublic)
def gift_domain(city: CityDep, platform: PlatformDep):
    """Public: the EIP-712 domain a resident signs its GiftAuthorization for."""
    return GiftDomainPublic(**platform.gifts.domain(city.code).as_dict())


@router.get("/v1/cities/{city}/accounts/{account}/giftable", response_model=GiftablePublic)
def giftable(city: CityDep, account: Address, platform: PlatformDep):
    """Public, as the chain is: what the account may give now, this month's tally and the
    city's caps."""
    figures = platform.gifts.giftable(city, account)
    return GiftablePublic(
        city=city.code,
        account=account,
        block=figures.block,
        giftable=figures.giftable,
        sentThisMonth=figures.sent,
        receivedThisMonth=figures.received,
        monthlySendCap=figures.send_cap,
        monthlyReceiveCap=figures.receive_cap,
    )


@router.post(
    "/v1/cities/{city}/gifts",
    status_code=202,
    response_model=GiftPublic,
    responses={200: {"model": GiftPublic, "description": "posted before: the same gift"}}
    | errors(409),
)
def relay_gift(city: CityDep, body: GiftIn, platform: PlatformDep, response: Response):
    """Public, as a payment is: the giver's signature is its consent. Checked against the chain
    (the gifts contract's giftRefusal: money bought with KRW, the monthly caps, the holding cap,
    two active residents; then the relayed call itself) and accepted (202); the same gift posted
    again returns the same gift (200). A refusal names the contract's error and its arguments."""
    gift, created = platform.gifts.request(city, body.signed())
    if not created:
        response.status_code = 200
    return GiftPublic.of(gift, platform.finality.final_up_to())


@router.get("/v1/cities/{city}/gifts/{gift_id}", response_model=GiftPublic)
def get_gift(city: CityDep, gift_id: RowId, platform: PlatformDep, principal: PrincipalDep):
    """For the giver's and the receiver's wallets and the city's operators and auditors."""
    gift = platform.gifts.get(city.code, gift_id)
    allow(principal, city=city.code, roles=_READERS, wallets=(gift.giver, gift.receiver))
    return GiftPublic.of(gift, platform.finality.final_up_to())
