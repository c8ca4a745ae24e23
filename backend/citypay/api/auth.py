"""Who may call what. Every route that is not public takes a `PrincipalDep` and says, with
`allow`, which roles or which wallet it admits."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from citypay.api.deps import PlatformDep
from citypay.auth.credentials import Forbidden, Principal, Unauthorized, authenticate
from citypay.auth.models import Role


def get_principal(request: Request, platform: PlatformDep) -> Principal:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized(
            "missing_credentials",
            "this endpoint needs a signed-in wallet or an API key",
            field="Authorization",
            value=header or None,
            accepted="'Bearer <API key>' or 'Bearer <session from POST /v1/auth/siwe>'",
        )
    return authenticate(platform.db, token.strip())


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def allow(
    principal: Principal,
    *,
    city: str,
    roles: frozenset[Role] | set[Role] = frozenset(),
    wallets: tuple[str | None, ...] = (),
) -> None:
    """Passes an API key with one of `roles` for `city`, or a wallet signed in as one of
    `wallets`; refuses anyone else, saying who would be admitted."""
    if principal.role is not None and principal.role in roles and principal.may_act_for_city(city):
        return
    if principal.address is not None and principal.address in {w for w in wallets if w}:
        return
    admitted = [f"an API key with role {', '.join(sorted(roles))} for {city}"] if roles else []
    admitted += [f"the wallet {w}" for w in wallets if w]
    who = (principal.role and f"{principal.role} key '{principal.name}'") or principal.address
    raise Forbidden(
        "forbidden",
        f"{who} may not do this",
        accepted=" or ".join(admitted) or "nobody",
    )
