"""Secrets of a card: its wallet key sealed with AES-GCM under the key-encryption key from the
settings, and its PIN as an argon2id hash.

The sealed key's associated data names the card and the wallet, so a ciphertext copied onto
another card's row does not open. The key-encryption key's fingerprint is stored with each
sealed key, so a wrong CARD_KEY_ENCRYPTION_KEY is reported as such rather than as tampering.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from citypay.core.config import PLACEHOLDER, Settings

_NONCE = 12
# argon2-cffi's defaults (RFC 9106's second recommendation: 64 MiB, 3 passes): a stolen table
# costs an attacker that much per PIN guess, which matters with PINs of 4 to 6 digits.
_PINS = PasswordHasher()


class VaultError(RuntimeError):
    """The key-encryption key is unusable or does not open a sealed key."""


def key_encryption_key(settings: Settings) -> bytes:
    """CARD_KEY_ENCRYPTION_KEY as 32 bytes: 64 hex digits or 32 bytes in base64. The development
    placeholder (refused outside development by Settings) stands for a fixed development key."""
    value = settings.CARD_KEY_ENCRYPTION_KEY.get_secret_value().strip()
    if value == PLACEHOLDER:
        return hashlib.sha256(b"citypay development card key-encryption key").digest()
    if len(_decoded(value)) != 32:
        raise VaultError(
            "CARD_KEY_ENCRYPTION_KEY must be 32 random bytes as 64 hex digits or base64 "
            "(e.g. `python -c 'import secrets; print(secrets.token_hex(32))'`)"
        )
    return _decoded(value)


def _decoded(value: str) -> bytes:
    digits = value.removeprefix("0x")
    if re.fullmatch(r"[0-9a-fA-F]{64}", digits):
        return bytes.fromhex(digits)
    try:  # standard or URL-safe base64
        return base64.b64decode(value.replace("-", "+").replace("_", "/"), validate=True)
    except binascii.Error:
        return b""


def fingerprint(kek: bytes) -> str:
    return hashlib.sha256(b"citypay-kek-fingerprint" + kek).hexdigest()[:16]


def _aad(card_number: str, wallet: str) -> bytes:
    return f"citypay-card-wallet:{card_number}:{wallet.lower()}".encode()


def seal(kek: bytes, card_number: str, wallet: str, private_key: bytes) -> bytes:
    nonce = os.urandom(_NONCE)
    return nonce + AESGCM(kek).encrypt(nonce, private_key, _aad(card_number, wallet))


def unseal(kek: bytes, kek_fingerprint: str, card_number: str, wallet: str, sealed: bytes) -> bytes:
    if fingerprint(kek) != kek_fingerprint:
        raise VaultError(
            f"the wallet key of card ...{card_number[-4:]} was sealed under another "
            f"CARD_KEY_ENCRYPTION_KEY (fingerprint {kek_fingerprint})"
        )
    try:
        return AESGCM(kek).decrypt(sealed[:_NONCE], sealed[_NONCE:], _aad(card_number, wallet))
    except InvalidTag:
        raise VaultError(
            f"the sealed wallet key of card ...{card_number[-4:]} does not open: "
            "it was altered or belongs to another card"
        ) from None


def hash_pin(pin: str) -> str:
    return _PINS.hash(pin)


def pin_matches(pin_hash: str, pin: str) -> bool:
    try:
        return _PINS.verify(pin_hash, pin)
    except (VerificationError, InvalidHashError):
        return False
