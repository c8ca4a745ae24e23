"""What a merchant's signed refund must pass before it is recorded, so that a refusal costs nothing
and names the field, the value and what would be accepted: first what the message alone shows
(nonce, signature, window), then the token's own verdict (an eth_call of refundWithAuthorization
from the relayer: nonce unused, the payment and what is left of it, pause, both accounts), then the
refunds of that payment still on their way."""

from __future__ import annotations

from eth_account.signers.local import LocalAccount
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from citypay.authorization import (
    REFUND_WITH_AUTHORIZATION,
    SignedRefund,
    TokenDomain,
    recover_refund_signer,
)
from citypay.chain.codec import Revert
from citypay.chain.deployment import City
from citypay.chain.gateway import ChainRefused
from citypay.chain.relayed import (
    IN_FLIGHT,
    ZERO,
    require_same_terms,
    signer_refusal,
    zero_nonce_refusal,
)
from citypay.chain.relayed import hex32 as _hex
from citypay.core.errors import ApiError, Conflict, Unprocessable
from citypay.core.validity import Validity
from citypay.refund.models import Refund

PLAIN_PAYMENTS = "0x" + ZERO.hex()


def message_refusal(
    domain: TokenDomain, refund: SignedRefund, *, now: int, validity: Validity
) -> ApiError | None:
    """What is wrong with the message itself, at the chain's time `now`."""
    refusal = zero_nonce_refusal(refund.nonce) or signer_refusal(
        recover_refund_signer(domain, refund),
        expected=refund.merchant,
        role="merchant",
        primary_type=REFUND_WITH_AUTHORIZATION,
        domain=domain,
        signature=refund.signature,
    )
    if refusal is not None:
        return refusal
    return validity.window_refusal(
        "refund", refund.valid_after, refund.valid_before, now=now, clock="the chain's time"
    )


def chain_refusal(city: City, relayer: LocalAccount, refund: SignedRefund) -> ApiError | None:
    """The token's verdict on sending this refund now: None if it would go through."""
    try:
        city.chain.token.simulate(relayer.address, "refundWithAuthorization", *refund.as_args())
    except ChainRefused as refused:
        return _refusal(city, refund, refused.revert)
    return None


def _refusal(city: City, refund: SignedRefund, refusal: Revert) -> ApiError:
    """The token's custom error as the API's: the field it is about, its value, what would do."""
    name, args = refusal.name, refusal.args
    match name:
        case "EnforcedPause":
            return Conflict(
                "city_paused",
                f"{city.name} is paused: no refund is accepted",
                field="city",
                value=city.code,
                accepted="a city that is not paused",
            )
        case "EIP3009AuthorizationUsed" | "EIP3009AuthorizationCanceled":
            became = "used" if name == "EIP3009AuthorizationUsed" else "cancelled"
            return Conflict(
                "nonce_used",
                f"nonce {_hex(refund.nonce)} of {refund.merchant} was {became} on chain",
                field="nonce",
                value=refund.nonce,
                accepted="a fresh random 32-byte nonce",
            )
        case "CityTokenZeroValue":
            return Unprocessable(
                "zero_value",
                "a refund moves a value above zero",
                field="value",
                value=refund.value,
                accepted="1 KRW or more",
            )
        case "CityTokenPaymentNotFound":
            return Unprocessable(
                "unknown_payment",
                f"{refund.payer} made no payment {_hex(refund.payment_id)} to {refund.merchant} "
                f"in {city.name}",
                field="paymentId",
                value=refund.payment_id,
                accepted=f"the invoice id or authorization nonce of a payment {refund.payer} made "
                f"to {refund.merchant}, or {PLAIN_PAYMENTS} for its plain transfers",
            )
        case "CityTokenRefundExceedsPayment":
            return _over_refundable(refund, args["refundable"], 0)
        case "ERC20InsufficientBalance":
            return Unprocessable(
                "insufficient_balance",
                f"{refund.merchant} holds {args['balance']:,} KRW, less than the refund",
                field="value",
                value=refund.value,
                accepted=f"at most {args['balance']} (the merchant's balance)",
            )
        case (
            "CityTokenAccountFrozen"
            | "CityTokenAccountInRecovery"
            | "CityTokenAccountRetired"
            | "CityTokenNotRegistered"
            | "CityTokenMerchantNotActive"
            | "CityTokenResidentNotActive"
        ):
            (account,) = args.values()
            field, role = (
                ("merchant", "merchant") if account == refund.merchant else ("payer", "resident")
            )
            return Unprocessable(
                "account_not_allowed",
                f"{account} may not take part in a refund: {refusal}",
                field=field,
                value=account,
                accepted=f"an active, unfrozen {role} of {city.name}",
            )
    return Unprocessable(
        "chain_refused",
        f"the token refuses this refund: {refusal}",
        accepted="a refund the token accepts",
    )


def in_flight_refusal(
    session: Session, city: City, refund: SignedRefund, refundable: int
) -> ApiError | None:
    """Refunds of the same payment recorded but not yet included draw on it too."""
    in_flight = session.scalar(
        select(func.coalesce(func.sum(Refund.value), 0)).where(
            Refund.city == city.code,
            Refund.merchant == refund.merchant,
            Refund.payer == refund.payer,
            Refund.payment_id == _hex(refund.payment_id),
            Refund.status.in_(IN_FLIGHT),
        )
    )
    if refund.value > refundable - in_flight:
        return _over_refundable(refund, refundable, in_flight)
    return None


def _over_refundable(refund: SignedRefund, refundable: int, in_flight: int) -> ApiError:
    left = max(refundable - in_flight, 0)
    waiting = f", {in_flight:,} KRW of it in refunds not yet included" if in_flight else ""
    return Unprocessable(
        "refund_exceeds_payment",
        f"{refund.value:,} KRW is more than is left to refund of payment "
        f"{_hex(refund.payment_id)}: {refundable:,} KRW{waiting}",
        field="value",
        value=refund.value,
        accepted=f"1 to {left}" if left else "nothing: this payment is refunded in full",
    )


def the_same(existing: Refund, refund: SignedRefund) -> Refund:
    """The merchant's nonce is taken: by this very refund (returned), or by one with other terms
    (refused)."""
    require_same_terms(
        f"refund {existing.id} of {existing.merchant}",
        [
            ("payer", existing.payer, refund.payer),
            ("paymentId", existing.payment_id, _hex(refund.payment_id)),
            ("value", existing.value, refund.value),
            ("validAfter", existing.valid_after, refund.valid_after),
            ("validBefore", existing.valid_before, refund.valid_before),
            ("signature", existing.signature, _hex(refund.signature)),
        ],
    )
    return existing
