"""Checks a payer-signed authorization against the chain before it costs anything.

Every refusal names the field, the value and what would be accepted. The checks that need nothing
but the authorization run in the request's thread; the chain's views are read for a whole group
of authorizations at once (payments/service.py), one JSON-RPC batch at one block.
"""

from __future__ import annotations

from dataclasses import dataclass

from citypay.authorization import SignedAuthorization, TokenDomain, recover_authorizer
from citypay.chain.deployment import City
from citypay.chain.enums import AccountKind
from citypay.chain.gateway import ChainGateway, PlatformContract, Read
from citypay.core.errors import ApiError, Conflict, Unprocessable
from citypay.core.validity import Validity
from citypay.payments.models import Payment


@dataclass(frozen=True)
class Party:
    """What the chain says about an account: its kind, whether it may transact, its balance."""

    kind: AccountKind
    active: bool
    frozen: bool
    balance: int


@dataclass(frozen=True)
class ChainView:
    """What the chain says about one authorization and its parties."""

    paused: bool
    nonce_used: bool
    payer: Party
    merchant: Party


_PARTY_VIEWS = ("accountKind", "isActive", "isFrozen", "balanceOf")


class ChainViews:
    """Reads the views a group of authorizations needs at the newest block: the nonces' state,
    the token's pause and each party's account. Pause and parties are kept until the next
    block, where they may change; a nonce is read every time, as each payment has its own. One
    thread uses it (the service's acceptor)."""

    def __init__(self, gateway: ChainGateway) -> None:
        self.gateway = gateway
        self._block: int | None = None
        # A read (token, view, its arguments) -> its result at self._block
        self._kept: dict[Read, object] = {}

    def read(self, group: list[tuple[City, SignedAuthorization]]) -> list[ChainView]:
        """One round trip to the node, two on the first read after a new block."""
        needed = {
            key: None
            for city, authorization in group
            for key in self._keys(city.chain.token, authorization)
        }
        missing = [key for key in needed if key not in self._kept]
        block, results = self.gateway.read_at_head(
            [
                *(
                    (city.chain.token, "authorizationState", (a.from_, a.nonce))
                    for city, a in group
                ),
                *missing,
            ]
        )
        nonces, fresh = results[: len(group)], results[len(group) :]
        if block != self._block:  # what was kept is of an earlier block
            self._block, self._kept = block, {}
        self._kept.update(zip(missing, fresh, strict=True))
        stale = [key for key in needed if key not in self._kept]
        if stale:
            again = self.gateway.read_many(stale, block=block)
            self._kept.update(zip(stale, again, strict=True))
        return [
            self._view(city.chain.token, authorization, used)
            for (city, authorization), used in zip(group, nonces, strict=True)
        ]

    @staticmethod
    def _keys(token: PlatformContract, authorization: SignedAuthorization) -> list[Read]:
        return [(token, "paused", ())] + [
            (token, view, (party,))
            for party in (authorization.from_, authorization.to)
            for view in _PARTY_VIEWS
        ]

    def _view(
        self, token: PlatformContract, authorization: SignedAuthorization, used: bool
    ) -> ChainView:
        return ChainView(
            paused=self._kept[(token, "paused", ())],
            nonce_used=used,
            payer=self._party(token, authorization.from_),
            merchant=self._party(token, authorization.to),
        )

    def _party(self, token: PlatformContract, account: str) -> Party:
        kind, active, frozen, balance = (self._kept[(token, v, (account,))] for v in _PARTY_VIEWS)
        return Party(kind, active, frozen, balance)


def authorization_refusal(
    city: City,
    domain: TokenDomain,
    authorization: SignedAuthorization,
    *,
    now: int,
    validity: Validity,
) -> ApiError | None:
    """What is wrong with the authorization itself (signature, validity window, amount)."""
    if recover_authorizer(domain, authorization) != authorization.from_:
        return Unprocessable(
            "invalid_signature",
            f"the signature does not recover the payer {authorization.from_} for {city.name} "
            f"(token {domain.verifying_contract}, chain id {domain.chain_id})",
            field="signature",
            value="0x" + authorization.signature.hex(),
            accepted=f"an EIP-712 TransferWithAuthorization signature by {authorization.from_} "
            f"in the domain of {city.name} on chain id {domain.chain_id}",
        )
    window = validity.window_refusal(
        "authorization",
        authorization.valid_after,
        authorization.valid_before,
        now=now,
        clock="the time",
    )
    if window is not None:
        return window
    if authorization.value <= 0:
        return Unprocessable(
            "invalid_amount",
            "the amount must be positive",
            field="value",
            value=authorization.value,
            accepted="> 0",
        )
    return None


def chain_refusal(
    city: City, authorization: SignedAuthorization, view: ChainView, pending: int
) -> ApiError | None:
    """What the chain (and `pending`, the payer's payments not yet included) says against it."""
    if view.paused:
        return Conflict(
            "city_paused",
            f"{city.name} is paused: no payment is accepted",
            field="city",
            value=city.code,
        )
    if view.nonce_used:
        return Conflict(
            "nonce_used",
            f"the nonce was already used or cancelled by {authorization.from_}",
            field="nonce",
            value=authorization.nonce,
            accepted="a fresh random 32-byte nonce",
        )
    merchant, payer = view.merchant, view.payer
    is_merchant = merchant.kind is AccountKind.MERCHANT
    if not is_merchant or not merchant.active or merchant.frozen:
        state = "not a merchant of " + city.name if not is_merchant else "not active"
        return Unprocessable(
            "unknown_merchant" if not is_merchant else "merchant_not_active",
            f"{authorization.to} is {state}",
            field="to",
            value=authorization.to,
            accepted=f"an active merchant registered in {city.name}",
        )
    if payer.kind is not AccountKind.RESIDENT or not payer.active or payer.frozen:
        return Unprocessable(
            "payer_not_allowed",
            f"{authorization.from_} is not an active resident of {city.name}",
            field="from",
            value=authorization.from_,
            accepted=f"an active, unfrozen resident wallet of {city.name}",
        )
    available = payer.balance - pending
    if authorization.value > available:
        return Unprocessable(
            "insufficient_balance",
            f"{authorization.from_} has {available:,} KRW available "
            f"({payer.balance:,} held, {pending:,} in payments not yet included)",
            field="value",
            value=authorization.value,
            accepted=f"at most {available}",
        )
    return None


def mismatch_refusal(existing: Payment, authorization: SignedAuthorization) -> ApiError:
    """The nonce is taken by a different authorization of the same payer."""
    return ApiError(
        "nonce_reused",
        f"payment {existing.id} already uses this nonce of {authorization.from_} with other terms",
        field="nonce",
        value=authorization.nonce,
        accepted="a fresh random 32-byte nonce for a new payment",
        status_code=409,
    )


def refuse_mismatch(existing: Payment, authorization: SignedAuthorization) -> None:
    raise mismatch_refusal(existing, authorization)
