"""The merchant's signed cash-out request: EIP-712 CashOutAuthorization for the city treasury.

The treasury's domain is "<token name> Treasury", version "1" (CityTreasury's constructor); the
merchant signs it in its wallet, the backend's settler relays it with cashOutWithAuthorization.
The signature names the payout account the merchant is paid to (it must be the one the registry
holds), and a window of at most MAX_CASH_OUT_VALIDITY; CancelCashOutAuthorization withdraws one.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from eth_account import Account

from citypay.authorization import TokenDomain, typed_message

CASH_OUT_AUTHORIZATION = "CashOutAuthorization"
CANCEL_CASH_OUT_AUTHORIZATION = "CancelCashOutAuthorization"
DOMAIN_VERSION = "1"
# CityTreasury.MAX_CASH_OUT_VALIDITY: the longest window (validBefore - validAfter) it accepts.
MAX_CASH_OUT_VALIDITY = 86_400

_FIELDS = [
    {"name": "merchant", "type": "address"},
    {"name": "amount", "type": "uint256"},
    {"name": "payoutAccountHash", "type": "bytes32"},
    {"name": "validAfter", "type": "uint256"},
    {"name": "validBefore", "type": "uint256"},
    {"name": "nonce", "type": "bytes32"},
]
_CANCEL_FIELDS = [
    {"name": "merchant", "type": "address"},
    {"name": "nonce", "type": "bytes32"},
]


@dataclass(frozen=True)
class CashOutTerms:
    """What a merchant's CashOutAuthorization fixes, in the order the type lists it."""

    merchant: str
    amount: int
    payout_account_hash: bytes
    valid_after: int
    valid_before: int
    nonce: bytes

    def message(self) -> dict:
        return {
            "merchant": self.merchant,
            "amount": self.amount,
            "payoutAccountHash": self.payout_account_hash,
            "validAfter": self.valid_after,
            "validBefore": self.valid_before,
            "nonce": self.nonce,
        }

    def call_args(self, signature: bytes) -> tuple:
        """The arguments of cashOutWithAuthorization."""
        return (*asdict(self).values(), signature)


def treasury_domain_for(token_name: str, chain_id: int, treasury: str) -> TokenDomain:
    """The treasury's EIP-712 domain, as its constructor names it."""
    return TokenDomain(f"{token_name} Treasury", DOMAIN_VERSION, chain_id, treasury)


def sign_cash_out(
    private_key: str | bytes,
    domain: TokenDomain,
    *,
    amount: int,
    payout_account_hash: bytes,
    valid_before: int,
    nonce: bytes,
    valid_after: int | None = None,
    merchant: str | None = None,
) -> bytes:
    """The 65-byte signature (r, s, v) of a cash-out of `amount` to `payout_account_hash` by
    `merchant`, the key's own address unless given (a contract wallet's owner signs for it; a key
    signing for another merchant is what a forgery looks like). The window opens a minute before
    `valid_before` less the longest validity unless `valid_after` is given."""
    terms = CashOutTerms(
        merchant=merchant or Account.from_key(private_key).address,
        amount=amount,
        payout_account_hash=payout_account_hash,
        valid_after=(
            valid_before - MAX_CASH_OUT_VALIDITY + 60 if valid_after is None else valid_after
        ),
        valid_before=valid_before,
        nonce=nonce,
    )
    return sign_cash_out_terms(private_key, domain, terms)


def sign_cash_out_terms(
    private_key: str | bytes, domain: TokenDomain, terms: CashOutTerms
) -> bytes:
    message = typed_message(domain, CASH_OUT_AUTHORIZATION, _FIELDS, terms.message())
    return bytes(Account.sign_message(message, private_key).signature)


def cash_out_body(
    private_key: str | bytes,
    domain: TokenDomain,
    *,
    amount: int,
    payout_account_hash: bytes,
    valid_before: int,
    nonce: bytes,
    valid_after: int | None = None,
    merchant: str | None = None,
) -> dict:
    """The body of POST /v1/cities/{city}/merchants/{merchant}/cashouts: the terms signed with
    `private_key` (see sign_cash_out)."""
    valid_after = valid_before - MAX_CASH_OUT_VALIDITY + 60 if valid_after is None else valid_after
    signature = sign_cash_out(
        private_key,
        domain,
        amount=amount,
        payout_account_hash=payout_account_hash,
        valid_before=valid_before,
        nonce=nonce,
        valid_after=valid_after,
        merchant=merchant,
    )
    return {
        "amount": amount,
        "payoutAccountHash": "0x" + payout_account_hash.hex(),
        "validAfter": valid_after,
        "validBefore": valid_before,
        "nonce": "0x" + nonce.hex(),
        "signature": "0x" + signature.hex(),
    }


def sign_cash_out_cancellation(
    private_key: str | bytes, domain: TokenDomain, *, nonce: bytes, merchant: str | None = None
) -> bytes:
    """The merchant's CancelCashOutAuthorization(merchant, nonce): withdraws an unused cash-out."""
    merchant = merchant or Account.from_key(private_key).address
    message = typed_message(
        domain,
        CANCEL_CASH_OUT_AUTHORIZATION,
        _CANCEL_FIELDS,
        {"merchant": merchant, "nonce": nonce},
    )
    return bytes(Account.sign_message(message, private_key).signature)


def recover_cash_out_signer(
    domain: TokenDomain, terms: CashOutTerms, signature: bytes
) -> str | None:
    """The address that signed these terms, or None for a signature that recovers nothing (the
    contract refuses both the same way: the signer must be the merchant)."""
    try:
        message = typed_message(domain, CASH_OUT_AUTHORIZATION, _FIELDS, terms.message())
        return Account.recover_message(message, signature=signature)
    except Exception:  # malformed signatures raise several unrelated error types
        return None
