"""The city office's API (지자체 담당자): residents and merchants registered, their lifecycle,
freezes, two-step wallet recoveries and confiscations, each sent from the city's own duty account.

API keys are scoped per city and duty: a `registrar` key registers, updates, suspends,
reactivates, revokes and executes recoveries; a `compliance` key freezes, proposes and withdraws
recoveries and confiscates. Operators and auditors read. A merchant's payout account is set only
with the merchant's own EIP-712 PayoutAccount signature (registry domain: GET
/v1/cities/{city}/registry-domain), and a holder objects to the recovery of its wallet with its
own RecoveryObjection signature: no API key is needed for that.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field, StrictBool

from citypay.api.auth import PrincipalDep, allow
from citypay.api.deps import CityDep, PlatformDep
from citypay.api.openapi import API_KEY, errors, security
from citypay.auth.models import Role
from citypay.core.fields import (
    Address,
    Hex32,
    RequestModel,
    Signature65,
    UnixTime,
    UtcDateTime,
    count,
    whole_number,
)
from citypay.office.models import OfficeAction
from citypay.registry_authorization import registry_domain_for

router = APIRouter(tags=["city office"])

_REGISTRAR = frozenset({Role.REGISTRAR})
_COMPLIANCE = frozenset({Role.COMPLIANCE})
_READERS = frozenset({Role.OPERATOR, Role.AUDITOR, Role.REGISTRAR, Role.COMPLIANCE})
_REFUSED = errors(404, 409, 503)

Region = whole_number(0, 2**32 - 1, "0 to 4,294,967,295", "the city's region code")
Category = whole_number(0, 2**16 - 1, "0 to 65,535", "the business category code")
Revenue = whole_number(0, 2**64 - 1, "0 to 2**64 - 1 KRW", "annual revenue, KRW")
Listed = count(1, 500, "how many, oldest first")


class ResidentIn(RequestModel):
    wallet: Address
    identityHash: Hex32 = Field(description="a hash of the person's identity: no personal data")
    region: Region


class MerchantIn(RequestModel):
    """A merchant's application, with its own PayoutAccount(merchant, payoutAccountHash, nonce 0,
    deadline) signature in the registry's domain."""

    wallet: Address
    businessIdHash: Hex32
    payoutAccountHash: Hex32
    annualRevenue: Revenue
    category: Category
    region: Region
    deadline: UnixTime = Field(description="the signature's deadline, unix seconds")
    signature: Signature65


class MerchantProfileIn(RequestModel):
    """The merchant's yearly re-check."""

    category: Category
    region: Region
    annualRevenue: Revenue


class PayoutAccountIn(RequestModel):
    """The merchant's PayoutAccount(merchant, payoutAccountHash, nonce, deadline) signature at
    its registry nonce (GET .../accounts/{wallet} gives payoutAccountNonce)."""

    payoutAccountHash: Hex32
    deadline: UnixTime
    signature: Signature65


class RevokeIn(RequestModel):
    illegalExchange: StrictBool = Field(
        description="revoked for illegal exchange (상품권깡): a merchant's business is banned for "
        "the city's ban period, and the balance waits for compliance to confiscate it"
    )


class RecoveryIn(RequestModel):
    replacement: Address


class ObjectionIn(RequestModel):
    """The holder's RecoveryObjection(wallet, replacement, proposedAt) signature."""

    signature: Signature65


class ConfiscationIn(RequestModel):
    reason: Hex32 = Field(description="the case's reference, as bytes32")


class OfficeActionPublic(BaseModel):
    id: int
    city: str
    actor: str = Field(description="the API key that asked for it")
    action: str
    wallet: str
    arguments: list[Any]
    transactionHash: str
    blockNumber: int
    createdAt: UtcDateTime

    @classmethod
    def of(cls, action: OfficeAction) -> OfficeActionPublic:
        return cls(
            id=action.id,
            city=action.city,
            actor=action.actor,
            action=action.action,
            wallet=action.subject,
            arguments=action.arguments,
            transactionHash=action.tx_hash,
            blockNumber=action.block_number,
            createdAt=action.created_at,
        )


class OfficeResultPublic(BaseModel):
    action: OfficeActionPublic
    account: dict[str, Any] = Field(description="the wallet as the chain has it afterwards")


class RegistryDomainPublic(BaseModel):
    name: str
    version: str
    chainId: int
    verifyingContract: str


def _act(platform, city, principal, roles, action: str, wallet: str, *args) -> OfficeResultPublic:
    allow(principal, city=city.code, roles=roles)
    done = platform.office.act(city, action, wallet, *args, actor=principal.name)
    return OfficeResultPublic(
        action=OfficeActionPublic.of(done), account=platform.office.account(city, wallet)
    )


_AS_REGISTRAR = {"responses": _REFUSED, "openapi_extra": security([API_KEY])}
_AS_COMPLIANCE = _AS_REGISTRAR


@router.get("/v1/cities/{city}/registry-domain", response_model=RegistryDomainPublic)
def registry_domain(city: CityDep, platform: PlatformDep):
    """Public: the EIP-712 domain a merchant signs its payout account in, and a holder its
    objection to a recovery."""
    name = city.chain.token.call("name")
    return RegistryDomainPublic(
        **registry_domain_for(
            name, platform.deployment.chain_id, city.chain.registry.address
        ).as_dict()
    )


@router.post(
    "/v1/cities/{city}/residents",
    status_code=201,
    response_model=OfficeResultPublic,
    **_AS_REGISTRAR,
)
def register_resident(
    body: ResidentIn, city: CityDep, platform: PlatformDep, principal: PrincipalDep
):
    """A registrar key: registers a resident's wallet (one wallet per identity)."""
    identity = bytes.fromhex(body.identityHash[2:])
    return _act(
        platform, city, principal, _REGISTRAR, "register_resident", body.wallet,
        body.wallet, identity, body.region,
    )  # fmt: skip


@router.post(
    "/v1/cities/{city}/merchants",
    status_code=201,
    response_model=OfficeResultPublic,
    **_AS_REGISTRAR,
)
def register_merchant(
    body: MerchantIn, city: CityDep, platform: PlatformDep, principal: PrincipalDep
):
    """A registrar key: registers an eligible merchant, with its own signature of its payout
    account."""
    application = (
        bytes.fromhex(body.businessIdHash[2:]),
        bytes.fromhex(body.payoutAccountHash[2:]),
        body.annualRevenue,
        body.category,
        body.region,
    )
    signature = bytes.fromhex(body.signature[2:])
    return _act(
        platform, city, principal, _REGISTRAR, "register_merchant", body.wallet,
        body.wallet, application, body.deadline, signature,
    )  # fmt: skip


@router.post(
    "/v1/cities/{city}/merchants/{merchant}/profile",
    response_model=OfficeResultPublic,
    **_AS_REGISTRAR,
)
def update_merchant(
    merchant: Address,
    body: MerchantProfileIn,
    city: CityDep,
    platform: PlatformDep,
    principal: PrincipalDep,
):
    """A registrar key: the merchant's yearly re-check (category, region, revenue)."""
    return _act(
        platform, city, principal, _REGISTRAR, "update_merchant", merchant,
        merchant, body.category, body.region, body.annualRevenue,
    )  # fmt: skip


@router.post(
    "/v1/cities/{city}/merchants/{merchant}/payout-account",
    response_model=OfficeResultPublic,
    **_AS_REGISTRAR,
)
def change_payout_account(
    merchant: Address,
    body: PayoutAccountIn,
    city: CityDep,
    platform: PlatformDep,
    principal: PrincipalDep,
):
    """A registrar key relays the merchant's signed change of its payout account (the office
    checks the bank account is the business's; the merchant's signature decides it)."""
    return _act(
        platform, city, principal, _REGISTRAR, "change_payout_account", merchant,
        merchant, bytes.fromhex(body.payoutAccountHash[2:]), body.deadline,
        bytes.fromhex(body.signature[2:]),
    )  # fmt: skip


@router.post(
    "/v1/cities/{city}/accounts/{wallet}/suspend",
    response_model=OfficeResultPublic,
    **_AS_REGISTRAR,
)
def suspend(wallet: Address, city: CityDep, platform: PlatformDep, principal: PrincipalDep):
    """A registrar key: an active wallet may no longer pay or be paid until reactivated."""
    return _act(platform, city, principal, _REGISTRAR, "suspend", wallet, wallet)


@router.post(
    "/v1/cities/{city}/accounts/{wallet}/activate",
    response_model=OfficeResultPublic,
    **_AS_REGISTRAR,
)
def activate(wallet: Address, city: CityDep, platform: PlatformDep, principal: PrincipalDep):
    """A registrar key: a suspended wallet is active again."""
    return _act(platform, city, principal, _REGISTRAR, "activate", wallet, wallet)


@router.post(
    "/v1/cities/{city}/accounts/{wallet}/revoke",
    response_model=OfficeResultPublic,
    **_AS_REGISTRAR,
)
def revoke(
    wallet: Address, body: RevokeIn, city: CityDep, platform: PlatformDep, principal: PrincipalDep
):
    """A registrar key: ends a registration for good. The balance stays for the wallet's closing
    cash-out or refund, or, after illegal exchange, for confiscation."""
    return _act(
        platform, city, principal, _REGISTRAR, "revoke", wallet, wallet, body.illegalExchange
    )


@router.post(
    "/v1/cities/{city}/accounts/{wallet}/freeze",
    response_model=OfficeResultPublic,
    **_AS_COMPLIANCE,
)
def freeze(wallet: Address, city: CityDep, platform: PlatformDep, principal: PrincipalDep):
    """A compliance key: no money moves in or out of the wallet until it is unfrozen."""
    return _act(platform, city, principal, _COMPLIANCE, "freeze", wallet, wallet)


@router.post(
    "/v1/cities/{city}/accounts/{wallet}/unfreeze",
    response_model=OfficeResultPublic,
    **_AS_COMPLIANCE,
)
def unfreeze(wallet: Address, city: CityDep, platform: PlatformDep, principal: PrincipalDep):
    """A compliance key: lifts a freeze."""
    return _act(platform, city, principal, _COMPLIANCE, "unfreeze", wallet, wallet)


@router.post(
    "/v1/cities/{city}/accounts/{wallet}/confiscate",
    response_model=OfficeResultPublic,
    **_AS_COMPLIANCE,
)
def confiscate(
    wallet: Address,
    body: ConfiscationIn,
    city: CityDep,
    platform: PlatformDep,
    principal: PrincipalDep,
):
    """A compliance key: burns the balance of a wallet revoked for illegal exchange."""
    reason = bytes.fromhex(body.reason[2:])
    return _act(platform, city, principal, _COMPLIANCE, "confiscate", wallet, wallet, reason)


@router.post(
    "/v1/cities/{city}/accounts/{wallet}/recovery",
    status_code=201,
    response_model=OfficeResultPublic,
    **_AS_COMPLIANCE,
)
def propose_recovery(
    wallet: Address,
    body: RecoveryIn,
    city: CityDep,
    platform: PlatformDep,
    principal: PrincipalDep,
):
    """A compliance key, step one of recovering a lost wallet: names the replacement and holds
    the wallet until the city's recovery delay has passed."""
    return _act(
        platform, city, principal, _COMPLIANCE, "propose_recovery", wallet, wallet,
        body.replacement,
    )  # fmt: skip


@router.post(
    "/v1/cities/{city}/accounts/{wallet}/recovery/execute",
    response_model=OfficeResultPublic,
    **_AS_REGISTRAR,
)
def execute_recovery(
    wallet: Address, city: CityDep, platform: PlatformDep, principal: PrincipalDep
):
    """A registrar key, step two, once due: the wallet's registration, balance and history move to
    the replacement, and the lost wallet is retired."""
    return _act(platform, city, principal, _REGISTRAR, "execute_recovery", wallet, wallet)


@router.delete(
    "/v1/cities/{city}/accounts/{wallet}/recovery",
    response_model=OfficeResultPublic,
    **_AS_COMPLIANCE,
)
def cancel_recovery(wallet: Address, city: CityDep, platform: PlatformDep, principal: PrincipalDep):
    """A compliance key: withdraws a pending recovery; the wallet is released."""
    return _act(platform, city, principal, _COMPLIANCE, "cancel_recovery", wallet, wallet)


@router.post(
    "/v1/cities/{city}/accounts/{wallet}/recovery/objection",
    response_model=OfficeResultPublic,
    responses=_REFUSED,
)
def object_to_recovery(wallet: Address, body: ObjectionIn, city: CityDep, platform: PlatformDep):
    """Public: the holder of the wallet, which still has its key, refuses the pending recovery
    with its RecoveryObjection signature; the backend relays it."""
    done = platform.office.act(
        city,
        "object_to_recovery",
        wallet,
        wallet,
        bytes.fromhex(body.signature[2:]),
        actor=f"the holder of {wallet}",
    )
    return OfficeResultPublic(
        action=OfficeActionPublic.of(done), account=platform.office.account(city, wallet)
    )


@router.get(
    "/v1/cities/{city}/accounts/{wallet}",
    response_model=dict[str, Any],
    responses=errors(404),
    openapi_extra=security([API_KEY]),
)
def account(wallet: Address, city: CityDep, platform: PlatformDep, principal: PrincipalDep):
    """The wallet as the registry and the token have it now. For the city's office keys and
    auditors."""
    allow(principal, city=city.code, roles=_READERS)
    view = platform.office.account(city, wallet)
    view["payoutAccountNonce"] = city.chain.registry.call("payoutAccountNonce", wallet)
    return view


@router.get(
    "/v1/cities/{city}/residents",
    response_model=list[dict[str, Any]],
    openapi_extra=security([API_KEY]),
)
def residents(city: CityDep, platform: PlatformDep, principal: PrincipalDep, limit: Listed = 100):
    """The city's residents as the registry registered them (its events), each as the chain has
    it now. For the city's office keys and auditors."""
    allow(principal, city=city.code, roles=_READERS)
    return platform.office.listed(city, "resident", limit=limit)


@router.get(
    "/v1/cities/{city}/merchants",
    response_model=list[dict[str, Any]],
    openapi_extra=security([API_KEY]),
)
def merchants(city: CityDep, platform: PlatformDep, principal: PrincipalDep, limit: Listed = 100):
    """The city's merchants, as `residents` lists residents."""
    allow(principal, city=city.code, roles=_READERS)
    return platform.office.listed(city, "merchant", limit=limit)


@router.get(
    "/v1/cities/{city}/office-actions",
    response_model=list[OfficeActionPublic],
    openapi_extra=security([API_KEY]),
)
def office_actions(
    city: CityDep,
    platform: PlatformDep,
    principal: PrincipalDep,
    wallet: Address | None = None,
    limit: Listed = 100,
):
    """What the office asked the chain for, newest first (of one wallet, when given)."""
    allow(principal, city=city.code, roles=_READERS)
    return [
        OfficeActionPublic.of(a)
        for a in platform.office.actions(city.code, subject=wallet, limit=limit)
    ]
