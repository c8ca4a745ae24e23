"""A merchant's own signature of its payout account, as registerMerchant requires it."""

from __future__ import annotations

from brownie import chain
from citypay.authorization import TokenDomain
from citypay.registry_authorization import sign_payout_account


def signed_application(registry, wallet, application: tuple, *, deadline: int | None = None):
    """registerMerchant's arguments: the wallet, its application, and the merchant's own signature
    of the application's payout account (nothing to sign with for a wallet without a key: the
    registry refuses it before it looks at the signature)."""
    deadline = chain.time() + 3600 if deadline is None else deadline
    key = getattr(wallet, "private_key", None)
    if key is None:
        return wallet, application, deadline, b""
    _, name, version, chain_id, contract, _, _ = registry.eip712Domain()
    signature = sign_payout_account(
        key,
        TokenDomain(name, version, chain_id, contract),
        payout_account_hash=application[1],
        nonce=registry.payoutAccountNonce(wallet),
        deadline=deadline,
    )
    return wallet, application, deadline, signature
