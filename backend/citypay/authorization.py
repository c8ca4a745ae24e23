"""EIP-712 messages a wallet signs for a city token: EIP-3009 authorizations, EIP-2612 permits,
a merchant's refund authorization and a resident's gift.

The type strings and domain fields are USDC FiatTokenV2's, so a message built here is exactly what
a USDC-compatible wallet signs; the tests, the relay and the wallet client all sign through it.
RefundWithAuthorization is the token's own type (CityToken.refundWithAuthorization), in the same
domain and with EIP-3009's window and nonce.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, replace
from functools import cache

from coincurve import PublicKey
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import keccak

from citypay.core.fields import checked_address

TRANSFER_WITH_AUTHORIZATION = "TransferWithAuthorization"
RECEIVE_WITH_AUTHORIZATION = "ReceiveWithAuthorization"
REFUND_WITH_AUTHORIZATION = "RefundWithAuthorization"
# CityGifts' own type, in its domain ("<token name> Gifts"): EIP-3009's fields.
GIFT_AUTHORIZATION = "GiftAuthorization"

_AUTHORIZATION_FIELDS = [
    {"name": "from", "type": "address"},
    {"name": "to", "type": "address"},
    {"name": "value", "type": "uint256"},
    {"name": "validAfter", "type": "uint256"},
    {"name": "validBefore", "type": "uint256"},
    {"name": "nonce", "type": "bytes32"},
]
_REFUND_FIELDS = [
    {"name": "merchant", "type": "address"},
    {"name": "payer", "type": "address"},
    {"name": "paymentId", "type": "bytes32"},
    {"name": "nonce", "type": "bytes32"},
    {"name": "value", "type": "uint256"},
    {"name": "validAfter", "type": "uint256"},
    {"name": "validBefore", "type": "uint256"},
]
_DOMAIN_FIELDS = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
]
_CANCEL_FIELDS = [
    {"name": "authorizer", "type": "address"},
    {"name": "nonce", "type": "bytes32"},
]
_PERMIT_FIELDS = [
    {"name": "owner", "type": "address"},
    {"name": "spender", "type": "address"},
    {"name": "value", "type": "uint256"},
    {"name": "nonce", "type": "uint256"},
    {"name": "deadline", "type": "uint256"},
]


@dataclass(frozen=True)
class TokenDomain:
    """An EIP-712 domain: a city's token's, or its treasury's (cash-out authorizations)."""

    name: str
    version: str
    chain_id: int
    verifying_contract: str

    @classmethod
    def from_dict(cls, domain: dict) -> TokenDomain:
        """The domain from its EIP-712 JSON form (what the API publishes)."""
        return cls(
            domain["name"], domain["version"], domain["chainId"], domain["verifyingContract"]
        )

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "version": self.version,
            "chainId": self.chain_id,
            "verifyingContract": self.verifying_contract,
        }


class _Signed:
    """The (v, r, s) a signed message carries, and the forms the API takes it in."""

    v: int
    r: bytes
    s: bytes

    @property
    def signature(self) -> bytes:
        return self.r + self.s + bytes([self.v])

    def _with_signature(self, body: dict, joined: bool) -> dict:
        """`body` with the signature as v, r and s, or `joined` into one 65-byte hex string."""
        if joined:
            return body | {"signature": "0x" + self.signature.hex()}
        return body | {"v": self.v, "r": "0x" + self.r.hex(), "s": "0x" + self.s.hex()}


@dataclass(frozen=True)
class SignedAuthorization(_Signed):
    """A signed EIP-3009 authorization, in the order the token's functions take it."""

    from_: str
    to: str
    value: int
    valid_after: int
    valid_before: int
    nonce: bytes
    v: int
    r: bytes
    s: bytes

    def as_json(self, *, joined: bool = False) -> dict:
        """The body the relay takes (POST /v1/cities/{city}/payments)."""
        body = {
            "from": self.from_,
            "to": self.to,
            "value": self.value,
            "validAfter": self.valid_after,
            "validBefore": self.valid_before,
            "nonce": "0x" + self.nonce.hex(),
        }
        return self._with_signature(body, joined)

    def as_args(self) -> tuple:
        """The arguments of transferWithAuthorization, from `from` to `s`."""
        return (
            self.from_,
            self.to,
            self.value,
            self.valid_after,
            self.valid_before,
            self.nonce,
            self.v,
            self.r,
            self.s,
        )


@dataclass(frozen=True)
class SignedRefund(_Signed):
    """A merchant's signed RefundWithAuthorization, in the order refundWithAuthorization takes it:
    `merchant` refunds `value` of `payer`'s payment `payment_id` (zero: its plain transfers)."""

    merchant: str
    payer: str
    payment_id: bytes
    nonce: bytes
    value: int
    valid_after: int
    valid_before: int
    v: int
    r: bytes
    s: bytes

    def message(self) -> dict:
        """The EIP-712 message, as typed_message() takes it."""
        return {
            "merchant": self.merchant,
            "payer": self.payer,
            "paymentId": self.payment_id,
            "nonce": self.nonce,
            "value": self.value,
            "validAfter": self.valid_after,
            "validBefore": self.valid_before,
        }

    def as_json(self, *, joined: bool = False) -> dict:
        """The body the refund route takes (POST /v1/cities/{city}/refunds)."""
        body = self.message() | {
            "paymentId": "0x" + self.payment_id.hex(),
            "nonce": "0x" + self.nonce.hex(),
        }
        return self._with_signature(body, joined)

    def as_args(self) -> tuple:
        """The arguments of refundWithAuthorization, from `merchant` to `s`."""
        return (*self.message().values(), self.v, self.r, self.s)


def random_nonce() -> bytes:
    """A fresh 32-byte nonce, as EIP-3009 asks (unordered, never reused)."""
    return os.urandom(32)


def typed_message(domain: TokenDomain, primary_type: str, fields: list, message: dict):
    return encode_typed_data(
        full_message={
            "types": {"EIP712Domain": _DOMAIN_FIELDS, primary_type: fields},
            "primaryType": primary_type,
            "domain": domain.as_dict(),
            "message": message,
        }
    )


def _sign(
    private_key: str | bytes, domain: TokenDomain, primary_type: str, fields: list, message: dict
):
    return Account.sign_message(typed_message(domain, primary_type, fields, message), private_key)


def _type_hash(primary_type: str, fields: list) -> bytes:
    return keccak(text=f"{primary_type}({','.join(f['type'] + ' ' + f['name'] for f in fields)})")


@cache
def _authorization_type_hash(primary_type: str) -> bytes:
    return _type_hash(primary_type, _AUTHORIZATION_FIELDS)


@cache
def domain_separator(domain: TokenDomain) -> bytes:
    return keccak(
        _type_hash("EIP712Domain", _DOMAIN_FIELDS)
        + keccak(text=domain.name)
        + keccak(text=domain.version)
        + domain.chain_id.to_bytes(32, "big")
        + _address_word(domain.verifying_contract)
    )


def _address_word(address: str) -> bytes:
    return bytes(12) + bytes.fromhex(address[2:])


def authorization_digest(
    domain: TokenDomain,
    authorization: SignedAuthorization,
    primary_type: str = TRANSFER_WITH_AUTHORIZATION,
) -> bytes:
    """The EIP-712 digest of an authorization, the one typed_message() gives a wallet to sign.
    Worked out directly because every field is one 32-byte word: eth_account's typed-data
    encoder parses the types again on every call (about 250 us), and the relay recovers one
    signature a payment."""
    words = (
        _authorization_type_hash(primary_type)
        + _address_word(authorization.from_)
        + _address_word(authorization.to)
        + authorization.value.to_bytes(32, "big")
        + authorization.valid_after.to_bytes(32, "big")
        + authorization.valid_before.to_bytes(32, "big")
        + authorization.nonce
    )
    return keccak(b"\x19\x01" + domain_separator(domain) + keccak(words))


def recover_authorizer(
    domain: TokenDomain,
    authorization: SignedAuthorization,
    primary_type: str = TRANSFER_WITH_AUTHORIZATION,
) -> str | None:
    """The address that signed the authorization for this domain (another domain, chain id or
    field value recovers another address); None for a signature that recovers no key."""
    return _recover(authorization_digest(domain, authorization, primary_type), authorization)


def recover_refund_signer(domain: TokenDomain, refund: SignedRefund) -> str | None:
    """The address that signed the refund authorization for this domain, as recover_authorizer.
    Refunds are few: the digest comes from the typed-data encoder itself."""
    signable = typed_message(domain, REFUND_WITH_AUTHORIZATION, _REFUND_FIELDS, refund.message())
    digest = keccak(b"\x19" + signable.version + signable.header + signable.body)
    return _recover(digest, refund)


def _recover(digest: bytes, signed: _Signed) -> str | None:
    # coincurve (libsecp256k1) directly, with the address checksummed from a cache: 50 us a
    # payment where eth_keys' Signature took 65 and its checksum 14 more (the relay recovers one
    # signature a payment). eth_keys takes v 27 or 28 only, and so does this.
    if signed.v not in (27, 28):
        return None
    try:
        key = PublicKey.from_signature_and_message(
            signed.r + signed.s + bytes([signed.v - 27]), digest, hasher=None
        )
    except ValueError:  # r or s out of range, or no point recovers
        return None
    return checked_address("0x" + keccak(key.format(compressed=False)[1:])[-20:].hex())


def sign_authorization(
    private_key: str | bytes,
    domain: TokenDomain,
    *,
    to: str,
    value: int,
    valid_after: int = 0,
    valid_before: int | None = None,
    nonce: bytes | None = None,
    primary_type: str = TRANSFER_WITH_AUTHORIZATION,
) -> SignedAuthorization:
    """Signs a transfer (or receive) authorization from the key's address to `to`."""
    payer = Account.from_key(private_key).address
    valid_before = int(time.time()) + 3600 if valid_before is None else valid_before
    nonce = random_nonce() if nonce is None else nonce
    signed = _sign(
        private_key,
        domain,
        primary_type,
        _AUTHORIZATION_FIELDS,
        {
            "from": payer,
            "to": to,
            "value": value,
            "validAfter": valid_after,
            "validBefore": valid_before,
            "nonce": nonce,
        },
    )
    return SignedAuthorization(
        from_=payer,
        to=to,
        value=value,
        valid_after=valid_after,
        valid_before=valid_before,
        nonce=nonce,
        v=signed.v,
        r=signed.r.to_bytes(32, "big"),
        s=signed.s.to_bytes(32, "big"),
    )


def sign_refund(
    private_key: str | bytes,
    domain: TokenDomain,
    *,
    payer: str,
    payment_id: bytes,
    value: int,
    valid_after: int = 0,
    valid_before: int | None = None,
    nonce: bytes | None = None,
    merchant: str | None = None,
) -> SignedRefund:
    """Signs a refund of `value` of `payer`'s payment `payment_id` by `merchant`, the key's own
    address unless given (a key signing for another merchant is what a forgery looks like)."""
    unsigned = SignedRefund(
        merchant=merchant or Account.from_key(private_key).address,
        payer=payer,
        payment_id=payment_id,
        nonce=random_nonce() if nonce is None else nonce,
        value=value,
        valid_after=valid_after,
        valid_before=int(time.time()) + 3600 if valid_before is None else valid_before,
        v=0,
        r=b"",
        s=b"",
    )
    signed = _sign(
        private_key, domain, REFUND_WITH_AUTHORIZATION, _REFUND_FIELDS, unsigned.message()
    )
    return replace(
        unsigned, v=signed.v, r=signed.r.to_bytes(32, "big"), s=signed.s.to_bytes(32, "big")
    )


def sign_cancellation(private_key: str | bytes, domain: TokenDomain, nonce: bytes) -> bytes:
    """Signs CancelAuthorization(authorizer, nonce); returns the 65-byte signature (r, s, v)."""
    authorizer = Account.from_key(private_key).address
    signed = _sign(
        private_key,
        domain,
        "CancelAuthorization",
        _CANCEL_FIELDS,
        {"authorizer": authorizer, "nonce": nonce},
    )
    return bytes(signed.signature)


def sign_gift_cancellation(private_key: str | bytes, domain: TokenDomain, nonce: bytes) -> bytes:
    """Signs CancelGiftAuthorization(from, nonce) in a city's gifts domain; returns the 65-byte
    signature (r, s, v)."""
    giver = Account.from_key(private_key).address
    signed = _sign(
        private_key,
        domain,
        "CancelGiftAuthorization",
        [{"name": "from", "type": "address"}, {"name": "nonce", "type": "bytes32"}],
        {"from": giver, "nonce": nonce},
    )
    return bytes(signed.signature)


def sign_permit(
    private_key: str | bytes,
    domain: TokenDomain,
    *,
    spender: str,
    value: int,
    nonce: int,
    deadline: int,
) -> tuple[int, bytes, bytes]:
    """Signs an EIP-2612 permit; returns (v, r, s)."""
    owner = Account.from_key(private_key).address
    signed = _sign(
        private_key,
        domain,
        "Permit",
        _PERMIT_FIELDS,
        {"owner": owner, "spender": spender, "value": value, "nonce": nonce, "deadline": deadline},
    )
    return signed.v, signed.r.to_bytes(32, "big"), signed.s.to_bytes(32, "big")
