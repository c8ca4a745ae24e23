"""Sending recorded refunds from their city's relayer, one transaction each, through the outbox
(chain/relayed.py): the merchant's nonce keeps each refund single on chain, and the token's
AuthorizationUsed event of (merchant, nonce) names the transaction that refunded."""

from __future__ import annotations

from eth_account.signers.local import LocalAccount

from citypay.chain.deployment import City, Deployment
from citypay.chain.outbox import Outbox
from citypay.chain.relayed import RelayedKind, RelayedSender, Settled
from citypay.db.session import Database
from citypay.refund.checks import chain_refusal
from citypay.refund.models import Refund

# A refund uses about 84,000 gas (make gas); the limit leaves room for a contract wallet's
# ERC-1271 check. Gas price is zero on the city's chain.
REFUND_GAS = 300_000


def _settled(city: City, refund: Refund) -> Settled | None:
    token = city.chain.token
    nonce = bytes.fromhex(refund.nonce[2:])
    if not token.call("authorizationState", refund.merchant, nonce):
        return None
    used = token.logs(
        "AuthorizationUsed", refund.merchant, nonce, from_block=city.deployed_at["token"]
    )
    if used:
        return Settled.by(used[0])
    return Settled.cancelled(f"the merchant cancelled nonce {refund.nonce} on chain")


REFUND = RelayedKind(
    name="refund",
    row=Refund,
    gas=REFUND_GAS,
    contract=lambda city: city.chain.token,
    function="refundWithAuthorization",
    arguments=lambda refund: refund.signed().as_args(),
    refusal=lambda city, account, refund: chain_refusal(city, account, refund.signed()),
    settled=_settled,
)


def refund_sender(
    db: Database, deployment: Deployment, outbox: Outbox, accounts: dict[str, LocalAccount]
) -> RelayedSender:
    """The sender of each city's refunds, from its relayer in `accounts` (by city code)."""
    return RelayedSender(REFUND, db, deployment, outbox, accounts)
