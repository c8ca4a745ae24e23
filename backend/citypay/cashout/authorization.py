"""The merchant's signed cash-out request: EIP-712 CashOutAuthorization for the city treasury.

The treasury's domain is "<token name> Treasury", version "1" (CityTreasury's constructor); the
merchant signs it in its wallet, the backend's settler relays it with cashOutWithAuthorization.
"""

from __future__ import annotations

from eth_account import Account

from citypay.authorization import TokenDomain, typed_message

CASH_OUT_AUTHORIZATION = "CashOutAuthorization"
DOMAIN_VERSION = "1"

_FIELDS = [
    {"name": "merchant", "type": "address"},
    {"name": "amount", "type": "uint256"},
    {"name": "validBefore", "type": "uint256"},
    {"name": "nonce", "type": "bytes32"},
]


def treasury_domain_for(token_name: str, chain_id: int, treasury: str) -> TokenDomain:
    """The treasury's EIP-712 domain, as its constructor names it."""
    return TokenDomain(f"{token_name} Treasury", DOMAIN_VERSION, chain_id, treasury)


def _typed(domain: TokenDomain, merchant: str, amount: int, valid_before: int, nonce: bytes):
    message = {"merchant": merchant, "amount": amount, "validBefore": valid_before, "nonce": nonce}
    return typed_message(domain, CASH_OUT_AUTHORIZATION, _FIELDS, message)


def sign_cash_out(
    private_key: str | bytes,
    domain: TokenDomain,
    *,
    amount: int,
    valid_before: int,
    nonce: bytes,
    merchant: str | None = None,
) -> bytes:
    """The 65-byte signature (r, s, v) of a cash-out of `amount` by `merchant`, the key's own
    address unless given (a key signing for another merchant is what a forgery looks like)."""
    merchant = merchant or Account.from_key(private_key).address
    signed = Account.sign_message(
        _typed(domain, merchant, amount, valid_before, nonce), private_key
    )
    return bytes(signed.signature)


def recover_cash_out_signer(
    domain: TokenDomain,
    *,
    merchant: str,
    amount: int,
    valid_before: int,
    nonce: bytes,
    signature: bytes,
) -> str | None:
    """The address that signed these fields, or None for a signature that recovers nothing (the
    contract refuses both the same way: the signer must be the merchant)."""
    try:
        return Account.recover_message(
            _typed(domain, merchant, amount, valid_before, nonce), signature=signature
        )
    except Exception:  # malformed signatures raise several unrelated error types
        return None
