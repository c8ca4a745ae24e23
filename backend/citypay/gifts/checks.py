"""What a resident's signed gift must pass before it is recorded, so that a refusal costs nothing
and names the field, the value and what would be accepted: first what the message alone shows
(nonce, signature, window), then the gifts contract's own verdict (the nonce's state, giftRefusal:
two active residents, money bought with KRW, the monthly caps, the holding cap; then an eth_call
of giftWithAuthorization from the relayer: pause and the rest), then the giver's gifts still on
their way."""

from __future__ import annotations

from eth_account.signers.local import LocalAccount
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from citypay.authorization import (
    GIFT_AUTHORIZATION,
    SignedAuthorization,
    TokenDomain,
    recover_authorizer,
)
from citypay.chain.codec import Revert, decode_revert
from citypay.chain.deployment import City
from citypay.chain.enums import AuthorizationState
from citypay.chain.gateway import ChainRefused, PlatformContract
from citypay.chain.relayed import (
    IN_FLIGHT,
    hex32,
    require_same_terms,
    signer_refusal,
    zero_nonce_refusal,
)
from citypay.core.errors import ApiError, Conflict, NotFound, Unprocessable
from citypay.core.validity import Validity, span_refusal
from citypay.gifts.models import Gift

# CityGifts.MAX_GIFT_VALIDITY: the longest window (validBefore - validAfter) it accepts.
MAX_GIFT_VALIDITY = 86_400

# The refusals of a value over a limit: the error, the API's code, what is left under the limit
# (from the error's arguments) and what that limit is.
_OVER_A_LIMIT = {
    "CityGiftsNotCashFunded": (
        "not_cash_funded",
        lambda a: a["giftable"],
        "the giver's general money bought with KRW, within its monthly send cap",
    ),
    "CityGiftsSendCapExceeded": (
        "send_cap_exceeded",
        lambda a: a["cap"] - a["sentThisMonth"],
        "what is left of the giver's monthly send cap",
    ),
    "CityGiftsReceiveCapExceeded": (
        "receive_cap_exceeded",
        lambda a: a["cap"] - a["receivedThisMonth"],
        "what is left of the receiver's monthly receive cap",
    ),
    "CityGiftsHoldingCapExceeded": (
        "holding_cap_exceeded",
        lambda a: a["cap"] - a["balance"],
        "what the receiver may still hold under the city's holding cap",
    ),
}


def gifts_of(city: City) -> PlatformContract:
    """The city's gifts contract; 404 for a city deployed before gifts."""
    if city.chain.gifts is None:
        raise NotFound(
            "no_gifts",
            f"{city.name} has no gifts contract: its residents cannot give money",
            field="city",
            value=city.code,
            accepted="a city deployed with gifts (CityGifts)",
        )
    return city.chain.gifts


def gift_domain(city: City) -> TokenDomain:
    """The domain as the gifts contract itself reports it (ERC-5267), so the check is the
    contract's: "<token name> Gifts", version 1."""
    domain = gifts_of(city).call("eip712Domain")
    return TokenDomain(domain.name, domain.version, domain.chainId, domain.verifyingContract)


def gift_arguments(gift: SignedAuthorization) -> tuple:
    """The arguments of giftWithAuthorization, from `from` to the 65-byte signature."""
    return (
        gift.from_,
        gift.to,
        gift.value,
        gift.valid_after,
        gift.valid_before,
        gift.nonce,
        gift.signature,
    )


def message_refusal(
    domain: TokenDomain, gift: SignedAuthorization, *, now: int, validity: Validity
) -> ApiError | None:
    """What is wrong with the message itself, at the chain's time `now`."""
    return (
        zero_nonce_refusal(gift.nonce)
        or signer_refusal(
            recover_authorizer(domain, gift, GIFT_AUTHORIZATION),
            expected=gift.from_,
            role="giver",
            primary_type=GIFT_AUTHORIZATION,
            domain=domain,
            signature=gift.signature,
        )
        or validity.window_refusal(
            "gift", gift.valid_after, gift.valid_before, now=now, clock="the chain's time"
        )
        or span_refusal(
            "gift",
            gift.valid_after,
            gift.valid_before,
            most=MAX_GIFT_VALIDITY,
            contract="gifts contract",
        )
    )


def chain_refusal(city: City, relayer: LocalAccount, gift: SignedAuthorization) -> ApiError | None:
    """The gifts contract's verdict on sending this gift now: None if it would go through."""
    gifts = gifts_of(city)
    state, refused = gifts.gateway.read_many(
        [
            (gifts, "authorizationState", (gift.from_, gift.nonce)),
            (gifts, "giftRefusal", (gift.from_, gift.to, gift.value)),
        ]
    )
    if state is not AuthorizationState.UNUSED:
        error = "Used" if state is AuthorizationState.USED else "Canceled"
        return _refusal(city, gift, Revert(f"CityGiftsAuthorization{error}"))
    if refused:
        return _refusal(city, gift, decode_revert(refused))
    try:
        gifts.simulate(relayer.address, "giftWithAuthorization", *gift_arguments(gift))
    except ChainRefused as chain_refused:
        return _refusal(city, gift, chain_refused.revert)
    return None


def _refusal(city: City, gift: SignedAuthorization, refusal: Revert) -> ApiError:
    """The contract's error as the API's: its name and arguments in the message, the field it is
    about, its value, what would do."""
    name, args = refusal.name, refusal.args
    refused = f"{city.name}'s gifts refuse it: {refusal}"
    if name in _OVER_A_LIMIT:
        code, left_of, limit = _OVER_A_LIMIT[name]
        left = max(left_of(args), 0)
        return Unprocessable(
            code,
            refused,
            field="value",
            value=gift.value,
            accepted=f"at most {left} ({limit})" if left else f"nothing now: {limit} is 0",
        )
    match name:
        case "EnforcedPause":
            return Conflict(
                "city_paused",
                f"{city.name} is paused: no gift is accepted",
                field="city",
                value=city.code,
                accepted="a city that is not paused",
            )
        case "CityGiftsAuthorizationUsed" | "CityGiftsAuthorizationCanceled":
            became = "used" if name == "CityGiftsAuthorizationUsed" else "cancelled"
            return Conflict(
                "nonce_used",
                f"nonce {hex32(gift.nonce)} of {gift.from_} was {became} on chain",
                field="nonce",
                value=gift.nonce,
                accepted="a fresh random 32-byte nonce",
            )
        case "CityGiftsNotActiveResident":
            field = "from" if args["account"] == gift.from_ else "to"
            return Unprocessable(
                "not_active_resident",
                refused,
                field=field,
                value=args["account"],
                accepted=f"an active, unfrozen resident of {city.name}",
            )
        case "CityGiftsToSelf":
            return Unprocessable(
                "gift_to_self",
                refused,
                field="to",
                value=gift.to,
                accepted=f"another resident's wallet than the giver's {gift.from_}",
            )
        case "CityGiftsZeroValue":
            return Unprocessable(
                "zero_value", refused, field="value", value=gift.value, accepted="1 KRW or more"
            )
    return Unprocessable(
        "chain_refused", refused, accepted="a gift the city's gifts contract accepts"
    )


def in_flight_refusal(
    session: Session, city: City, gift: SignedAuthorization, giftable: int
) -> ApiError | None:
    """The giver's gifts recorded but not yet included draw on what it may give too."""
    in_flight = session.scalar(
        select(func.coalesce(func.sum(Gift.value), 0)).where(
            Gift.city == city.code, Gift.giver == gift.from_, Gift.status.in_(IN_FLIGHT)
        )
    )
    left = max(giftable - in_flight, 0)
    if gift.value <= left:
        return None
    return Unprocessable(
        "not_cash_funded",
        f"{gift.value:,} KRW is more than {gift.from_} may give now: {giftable:,} KRW "
        f"(giftableOf), {in_flight:,} KRW of it in gifts not yet included",
        field="value",
        value=gift.value,
        accepted=f"at most {left}" if left else "nothing until its gifts on their way are included",
    )


def the_same(existing: Gift, gift: SignedAuthorization) -> Gift:
    """The giver's nonce is taken: by this very gift (returned), or by one with other terms
    (refused)."""
    require_same_terms(
        f"gift {existing.id} of {existing.giver}",
        [
            ("to", existing.receiver, gift.to),
            ("value", existing.value, gift.value),
            ("validAfter", existing.valid_after, gift.valid_after),
            ("validBefore", existing.valid_before, gift.valid_before),
            ("signature", existing.signature, hex32(gift.signature)),
        ],
    )
    return existing
