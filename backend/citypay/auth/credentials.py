"""Issuing and checking credentials. Bearer tokens carry their kind in a prefix: `cpk_` for an API
key, `cps_` for a wallet session; both are 256-bit random and stored only as SHA-256."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from eth_utils import to_checksum_address
from siwe import SiweMessage, VerificationError
from sqlalchemy import select, update

from citypay.auth.models import ApiKey, Role, SignInNonce, WalletSession
from citypay.core.errors import ApiError
from citypay.db.models import aware, utcnow
from citypay.db.session import Database

API_KEY_PREFIX = "cpk_"
SESSION_PREFIX = "cps_"
NONCE_LIFETIME = timedelta(minutes=10)


class Unauthorized(ApiError):
    status_code = 401


class Forbidden(ApiError):
    status_code = 403


@dataclass(frozen=True)
class Principal:
    """Who is calling: an API key's role (and city), or a signed-in wallet's address."""

    name: str
    role: Role | None = None
    city: str | None = None
    address: str | None = None

    def may_act_for_city(self, city: str) -> bool:
        return self.role is not None and self.city in (None, city)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_api_key(db: Database, name: str, role: Role, city: str | None) -> str:
    """Stores a new key and returns it: the only time it is seen."""
    token = API_KEY_PREFIX + secrets.token_urlsafe(32)
    with db.session() as session:
        session.add(ApiKey(name=name, role=role, city=city, key_hash=_digest(token)))
    return token


def revoke_api_key(db: Database, name: str) -> int:
    with db.session() as session:
        result = session.execute(
            update(ApiKey)
            .where(ApiKey.name == name, ApiKey.revoked_at.is_(None))
            .values(revoked_at=utcnow())
        )
        return result.rowcount


def authenticate(db: Database, token: str) -> Principal:
    if token.startswith(API_KEY_PREFIX):
        with db.session() as session:
            key = session.scalar(select(ApiKey).where(ApiKey.key_hash == _digest(token)))
        if key is None or key.revoked_at is not None:
            raise Unauthorized("invalid_api_key", "this API key is unknown or revoked")
        return Principal(name=key.name, role=key.role, city=key.city)
    if token.startswith(SESSION_PREFIX):
        with db.session() as session:
            found = session.get(WalletSession, _digest(token))
        if found is None or aware(found.expires_at) <= utcnow():
            raise Unauthorized(
                "session_expired",
                "this sign-in session is unknown or expired",
                accepted="a new session from POST /v1/auth/siwe",
            )
        return Principal(name=found.address, address=found.address)
    raise Unauthorized(
        "invalid_credentials",
        "the bearer token is neither an API key nor a sign-in session",
        accepted=f"'Authorization: Bearer {API_KEY_PREFIX}...' or '{SESSION_PREFIX}...'",
    )


def issue_nonce(db: Database) -> tuple[str, datetime]:
    nonce = secrets.token_hex(16)
    expires_at = utcnow() + NONCE_LIFETIME
    with db.session() as session:
        session.add(SignInNonce(nonce=nonce, expires_at=expires_at))
    return nonce, expires_at


def sign_in(
    db: Database,
    message: str,
    signature: str,
    *,
    domain: str,
    chain_id: int,
    session_lifetime: timedelta,
) -> tuple[str, str, datetime]:
    """Checks an EIP-4361 message and its signature; returns (token, address, expiry)."""
    try:
        # The EIP's regular expression, not siwe's ABNF parser: that one backtracks, 8 s of CPU
        # for 4,096 characters of garbage on this open endpoint (schemathesis found it), 0.75 s
        # for a long statement; this one takes under a millisecond and reads the same fields.
        # Either way the signature is checked over the message rebuilt from what was read.
        parsed = SiweMessage.from_message(message, abnf=False)
    except Exception as wrong:  # the parser raises several unrelated types
        raise Unauthorized(
            "invalid_siwe_message",
            f"not an EIP-4361 message: {wrong}",
            field="message",
            accepted="a Sign-In with Ethereum message (EIP-4361)",
        ) from None
    if parsed.domain != domain:
        raise Unauthorized(
            "wrong_domain",
            f"the message signs in to {parsed.domain}, not to this backend",
            field="domain",
            value=parsed.domain,
            accepted=domain,
        )
    if parsed.chain_id != chain_id:
        raise Unauthorized(
            "wrong_chain",
            f"the message is for chain {parsed.chain_id}",
            field="chainId",
            value=parsed.chain_id,
            accepted=str(chain_id),
        )
    now = utcnow()
    with db.session() as session:
        # Consumed before the signature is checked: a nonce is good for one attempt only.
        consumed = session.execute(
            update(SignInNonce)
            .where(
                SignInNonce.nonce == parsed.nonce,
                SignInNonce.used_at.is_(None),
                SignInNonce.expires_at > now,
            )
            .values(used_at=now)
        ).rowcount
    if not consumed:
        raise Unauthorized(
            "invalid_nonce",
            "the nonce was not issued by this backend, is used or has expired",
            field="nonce",
            value=parsed.nonce,
            accepted="a fresh nonce from POST /v1/auth/nonce",
        )
    try:
        parsed.verify(signature, domain=domain, nonce=parsed.nonce, timestamp=now)
    except VerificationError as wrong:
        raise Unauthorized(
            "invalid_siwe_signature",
            f"the sign-in was refused: {type(wrong).__name__}",
            field="signature",
            value=signature,
            accepted=f"an EIP-191 signature of the message by {parsed.address}",
        ) from None
    token = SESSION_PREFIX + secrets.token_urlsafe(32)
    address = to_checksum_address(parsed.address)
    expires_at = now + session_lifetime
    if parsed.expiration_time:
        expires_at = min(expires_at, datetime.fromisoformat(str(parsed.expiration_time)))
    with db.session() as session:
        session.add(
            WalletSession(token_hash=_digest(token), address=address, expires_at=expires_at)
        )
    return token, address, expires_at
