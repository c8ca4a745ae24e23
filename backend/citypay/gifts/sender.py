"""Sending recorded gifts from their city's relayer, one transaction each, through the outbox
(chain/relayed.py): the giver's nonce keeps each gift single on chain, and the Gifted event of
(giver, nonce) names the transaction that gave it."""

from __future__ import annotations

from eth_account.signers.local import LocalAccount

from citypay.chain.deployment import City, Deployment
from citypay.chain.enums import AuthorizationState
from citypay.chain.outbox import Outbox
from citypay.chain.relayed import RelayedKind, RelayedSender, Settled
from citypay.db.session import Database
from citypay.gifts.checks import chain_refusal, gift_arguments, gifts_of
from citypay.gifts.models import Gift

# A gift costs about 260,000 to 290,000 gas (make gas) and more when the receiver's lots that
# expire after the gift's are laid again: a resident holds at most one lot a week of validity
# (about 260 over 5 years, some 2 million gas at worst). Gas price is zero on the city's chain.
GIFT_GAS = 3_000_000


def _settled(city: City, gift: Gift) -> Settled | None:
    gifts = gifts_of(city)
    nonce = bytes.fromhex(gift.nonce[2:])
    state = gifts.call("authorizationState", gift.giver, nonce)
    if state is AuthorizationState.UNUSED:
        return None
    if state is AuthorizationState.CANCELED:
        return Settled.cancelled(f"the giver cancelled nonce {gift.nonce} on chain")
    given = gifts.logs("Gifted", gift.giver, None, nonce, from_block=city.deployed_at["gifts"])
    return Settled.by(given[0])


GIFT = RelayedKind(
    name="gift",
    row=Gift,
    gas=GIFT_GAS,
    contract=gifts_of,
    function="giftWithAuthorization",
    arguments=lambda gift: gift_arguments(gift.signed()),
    refusal=lambda city, account, gift: chain_refusal(city, account, gift.signed()),
    settled=_settled,
)


def gift_sender(
    db: Database, deployment: Deployment, outbox: Outbox, accounts: dict[str, LocalAccount]
) -> RelayedSender:
    """The sender of each city's gifts, from its relayer in `accounts` (by city code)."""
    return RelayedSender(GIFT, db, deployment, outbox, accounts)
