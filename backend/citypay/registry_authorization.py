"""EIP-712 messages a wallet signs for its city's registry: a merchant's payout account, and a
holder's objection to the recovery of its wallet.

The registry's domain is "<token name> Registry", version "1" (CityRegistry's constructor). A
merchant's payout account is set only with its own PayoutAccount signature (at registration and on
every change), so the registrar alone cannot redirect a merchant's cash-outs; a holder that still
has its key refuses a recovery proposed for its wallet with RecoveryObjection.
"""

from __future__ import annotations

from eth_account import Account

from citypay.authorization import TokenDomain, typed_message

PAYOUT_ACCOUNT = "PayoutAccount"
RECOVERY_OBJECTION = "RecoveryObjection"
DOMAIN_VERSION = "1"

_PAYOUT_ACCOUNT_FIELDS = [
    {"name": "merchant", "type": "address"},
    {"name": "payoutAccountHash", "type": "bytes32"},
    {"name": "nonce", "type": "uint256"},
    {"name": "deadline", "type": "uint256"},
]
_RECOVERY_OBJECTION_FIELDS = [
    {"name": "wallet", "type": "address"},
    {"name": "replacement", "type": "address"},
    {"name": "proposedAt", "type": "uint256"},
]


def registry_domain_for(token_name: str, chain_id: int, registry: str) -> TokenDomain:
    """The registry's EIP-712 domain, as its constructor names it."""
    return TokenDomain(f"{token_name} Registry", DOMAIN_VERSION, chain_id, registry)


def payout_account_message(
    domain: TokenDomain, *, merchant: str, payout_account_hash: bytes, nonce: int, deadline: int
):
    message = {
        "merchant": merchant,
        "payoutAccountHash": payout_account_hash,
        "nonce": nonce,
        "deadline": deadline,
    }
    return typed_message(domain, PAYOUT_ACCOUNT, _PAYOUT_ACCOUNT_FIELDS, message)


def sign_payout_account(
    private_key: str | bytes,
    domain: TokenDomain,
    *,
    payout_account_hash: bytes,
    deadline: int,
    nonce: int = 0,
    merchant: str | None = None,
) -> bytes:
    """The 65-byte signature (r, s, v) naming `payout_account_hash` as where `merchant` (the key's
    own address unless given: a contract wallet's owner signs for it) is paid. `nonce` is the
    registry's payoutAccountNonce(merchant): 0 at registration."""
    merchant = merchant or Account.from_key(private_key).address
    message = payout_account_message(
        domain,
        merchant=merchant,
        payout_account_hash=payout_account_hash,
        nonce=nonce,
        deadline=deadline,
    )
    return bytes(Account.sign_message(message, private_key).signature)


def sign_recovery_objection(
    private_key: str | bytes,
    domain: TokenDomain,
    *,
    replacement: str,
    proposed_at: int,
    wallet: str | None = None,
) -> bytes:
    """The 65-byte signature by which the holder of `wallet` refuses its recovery to `replacement`
    proposed at `proposed_at` (the registry's pendingRecovery(wallet).proposedAt)."""
    wallet = wallet or Account.from_key(private_key).address
    message = typed_message(
        domain,
        RECOVERY_OBJECTION,
        _RECOVERY_OBJECTION_FIELDS,
        {"wallet": wallet, "replacement": replacement, "proposedAt": proposed_at},
    )
    return bytes(Account.sign_message(message, private_key).signature)


def merchant_registration(
    private_key: str | bytes, domain: TokenDomain, application: tuple, *, deadline: int
) -> tuple:
    """registerMerchant's arguments for the key's own wallet: (wallet, application, deadline,
    signature). The application is ICityRegistry.MerchantApplication (businessIdHash,
    payoutAccountHash, annualRevenue, category, region); the merchant signs its payout account."""
    wallet = Account.from_key(private_key).address
    signature = sign_payout_account(
        private_key, domain, payout_account_hash=application[1], deadline=deadline
    )
    return wallet, application, deadline, signature
