"""The merchant's signed cash-out request: EIP-712 CashOutAuthorization for the city treasury.

The treasury's domain is "<token name> Treasury", version "1" (CityTreasury's constructor); the
merchant signs it in its wallet, the backend's settler relays it with cashOutWithAuthorization.
"""

from __future__ import annotations

from dataclasses import dataclass

from eth_account import Account
from eth_account.messages import encode_typed_data

CASH_OUT_AUTHORIZATION = "CashOutAuthorization"
DOMAIN_VERSION = "1"

_FIELDS = [
    {"name": "merchant", "type": "address"},
    {"name": "amount", "type": "uint256"},
    {"name": "validBefore", "type": "uint256"},
    {"name": "nonce", "type": "bytes32"},
]
_DOMAIN_FIELDS = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
]


@dataclass(frozen=True)
class TreasuryDomain:
    """The EIP-712 domain of one city's treasury."""

    name: str
    chain_id: int
    verifying_contract: str
    version: str = DOMAIN_VERSION

    @classmethod
    def for_token_name(cls, token_name: str, chain_id: int, treasury: str) -> TreasuryDomain:
        return cls(f"{token_name} Treasury", chain_id, treasury)

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "version": self.version,
            "chainId": self.chain_id,
            "verifyingContract": self.verifying_contract,
        }


def _typed(domain: TreasuryDomain, merchant: str, amount: int, valid_before: int, nonce: bytes):
    return encode_typed_data(
        full_message={
            "types": {"EIP712Domain": _DOMAIN_FIELDS, CASH_OUT_AUTHORIZATION: _FIELDS},
            "primaryType": CASH_OUT_AUTHORIZATION,
            "domain": domain.as_dict(),
            "message": {
                "merchant": merchant,
                "amount": amount,
                "validBefore": valid_before,
                "nonce": nonce,
            },
        }
    )


def sign_cash_out(
    private_key: str | bytes,
    domain: TreasuryDomain,
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
    domain: TreasuryDomain,
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
