"""EIP-712 messages a wallet signs for a city token: EIP-3009 authorizations and EIP-2612 permits.

The type strings and domain fields are USDC FiatTokenV2's, so a message built here is exactly what
a USDC-compatible wallet signs; the tests, the relay and the wallet client all sign through it.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from functools import cache

from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_keys import keys
from eth_keys.exceptions import BadSignature, ValidationError
from eth_utils import keccak

TRANSFER_WITH_AUTHORIZATION = "TransferWithAuthorization"
RECEIVE_WITH_AUTHORIZATION = "ReceiveWithAuthorization"

_AUTHORIZATION_FIELDS = [
    {"name": "from", "type": "address"},
    {"name": "to", "type": "address"},
    {"name": "value", "type": "uint256"},
    {"name": "validAfter", "type": "uint256"},
    {"name": "validBefore", "type": "uint256"},
    {"name": "nonce", "type": "bytes32"},
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


@dataclass(frozen=True)
class SignedAuthorization:
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

    @property
    def signature(self) -> bytes:
        return self.r + self.s + bytes([self.v])

    def as_json(self, *, joined: bool = False) -> dict:
        """The body the relay takes (POST /v1/cities/{city}/payments): the signature as v, r and
        s, or `joined` into one 65-byte hex string."""
        body = {
            "from": self.from_,
            "to": self.to,
            "value": self.value,
            "validAfter": self.valid_after,
            "validBefore": self.valid_before,
            "nonce": "0x" + self.nonce.hex(),
        }
        if joined:
            return body | {"signature": "0x" + self.signature.hex()}
        return body | {"v": self.v, "r": "0x" + self.r.hex(), "s": "0x" + self.s.hex()}

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
        _type_hash(primary_type, _AUTHORIZATION_FIELDS)
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
    try:
        signature = keys.Signature(
            vrs=(
                authorization.v - 27,
                int.from_bytes(authorization.r, "big"),
                int.from_bytes(authorization.s, "big"),
            )
        )
        key = signature.recover_public_key_from_msg_hash(
            authorization_digest(domain, authorization, primary_type)
        )
    except (BadSignature, ValidationError):
        return None
    return key.to_checksum_address()


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
