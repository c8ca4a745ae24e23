"""Sign-In with Ethereum (EIP-4361) for wallets and merchants: a nonce, then a signed message."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter
from pydantic import BaseModel, Field

from citypay.api.auth import PrincipalDep
from citypay.api.deps import PlatformDep
from citypay.api.openapi import errors
from citypay.auth.credentials import issue_nonce, sign_in
from citypay.core.fields import RequestModel, Signature65, UtcDateTime

router = APIRouter(tags=["auth"])


class NonceOut(BaseModel):
    nonce: str
    expiresAt: UtcDateTime
    domain: str = Field(description="the domain the EIP-4361 message must name")
    chainId: int


class SignInIn(RequestModel):
    message: str = Field(max_length=4096, description="the EIP-4361 message as signed")
    signature: Signature65


class SessionOut(BaseModel):
    token: str = Field(description="send as 'Authorization: Bearer <token>'")
    address: str
    expiresAt: UtcDateTime


class WhoAmI(BaseModel):
    name: str
    role: str | None
    city: str | None
    address: str | None


@router.post("/v1/auth/nonce", response_model=NonceOut)
def new_nonce(platform: PlatformDep):
    nonce, expires_at = issue_nonce(platform.db)
    return NonceOut(
        nonce=nonce,
        expiresAt=expires_at,
        domain=platform.settings.SIWE_DOMAIN,
        chainId=platform.deployment.chain_id,
    )


@router.post("/v1/auth/siwe", response_model=SessionOut, responses=errors(401))
def sign_in_with_ethereum(body: SignInIn, platform: PlatformDep):
    token, address, expires_at = sign_in(
        platform.db,
        body.message,
        body.signature,
        domain=platform.settings.SIWE_DOMAIN,
        chain_id=platform.deployment.chain_id,
        session_lifetime=timedelta(seconds=platform.settings.SESSION_LIFETIME),
    )
    return SessionOut(token=token, address=address, expiresAt=expires_at)


@router.get("/v1/auth/me", response_model=WhoAmI)
def who_am_i(principal: PrincipalDep):
    return WhoAmI(
        name=principal.name,
        role=principal.role and principal.role.value,
        city=principal.city,
        address=principal.address,
    )
