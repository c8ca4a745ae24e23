"""Checks a payer-signed authorization against the chain before it costs anything.

Every refusal names the field, the value and what would be accepted. The checks that need nothing
but the authorization run in the request's thread; the chain's views are read for a whole group
of authorizations at once (payments/service.py), one JSON-RPC batch at one block.
"""

from __future__ import annotations

from dataclasses import dataclass

from eth_abi import encode
from eth_utils import function_signature_to_4byte_selector
from web3 import Web3

from citypay.authorization import SignedAuthorization, TokenDomain, recover_authorizer
from citypay.chain.deployment import City
from citypay.core.errors import ApiError, Conflict, Unprocessable
from citypay.core.validity import Validity
from citypay.payments.models import Payment

RESIDENT, MERCHANT = 1, 2


@dataclass(frozen=True)
class Party:
    """What the chain says about an account: its kind, whether it may transact, its balance."""

    kind: int
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


# The views the check reads, encoded by hand: web3.py's contract-call machinery re-validates the
# whole ABI on every call, which cost about 5 ms a call; these are plain eth_calls.
_VIEWS = {
    name: (function_signature_to_4byte_selector(signature), types)
    for name, signature, types in (
        ("paused", "paused()", []),
        ("authorizationState", "authorizationState(address,bytes32)", ["address", "bytes32"]),
        ("accountKind", "accountKind(address)", ["address"]),
        ("isActive", "isActive(address)", ["address"]),
        ("isFrozen", "isFrozen(address)", ["address"]),
        ("balanceOf", "balanceOf(address)", ["address"]),
    )
}
_PARTY_VIEWS = ("accountKind", "isActive", "isFrozen", "balanceOf")


def _eth_call(token: str, block: str, view: str, *args) -> tuple[str, list]:
    selector, types = _VIEWS[view]
    data = "0x" + (selector + encode(types, args)).hex()
    return "eth_call", [{"to": token, "data": data}, block]


def _batch(w3: Web3, requests: list[tuple[str, list]]) -> list:
    """The results of one JSON-RPC batch, in order."""
    responses = w3.provider.make_batch_request(requests)
    if not isinstance(responses, list):  # the node refused the whole batch
        raise RuntimeError(f"the node refused the check's batch: {responses}")
    results = []
    for response in responses:
        if "error" in response:
            raise RuntimeError(f"the node refused a check's view: {response['error']}")
        results.append(response["result"])
    return results


class ChainViews:
    """Reads the views a group of authorizations needs at the newest block: the nonces' state,
    the token's pause and each party's account. Pause and parties are kept until the next
    block, where they may change; a nonce is read every time, as each payment has its own. One
    thread uses it (the service's acceptor)."""

    def __init__(self, w3: Web3) -> None:
        self.w3 = w3
        self._block: int | None = None
        self._words: dict[tuple, int] = {}  # (token, view, *args) -> word at self._block

    def read(self, group: list[tuple[City, SignedAuthorization]]) -> list[ChainView]:
        """One round trip to the node, two on the first read after a new block."""
        needed = {
            key: None
            for city, authorization in group
            for key in self._keys(city.token.address, authorization)
        }
        missing = [key for key in needed if key not in self._words]
        block, *words = _batch(
            self.w3,
            [
                ("eth_blockNumber", []),
                *(
                    _eth_call(c.token.address, "latest", "authorizationState", a.from_, a.nonce)
                    for c, a in group
                ),
                *(_eth_call(key[0], "latest", *key[1:]) for key in missing),
            ],
        )
        nonces, fresh = words[: len(group)], words[len(group) :]
        if int(block, 16) != self._block:  # what was kept is of an earlier block
            self._block, self._words = int(block, 16), {}
        self._words.update(zip(missing, (int(word, 16) for word in fresh), strict=True))
        stale = [key for key in needed if key not in self._words]
        if stale:
            words = _batch(self.w3, [_eth_call(k[0], hex(self._block), *k[1:]) for k in stale])
            self._words.update(zip(stale, (int(word, 16) for word in words), strict=True))
        return [
            self._view(city.token.address, authorization, int(used, 16))
            for (city, authorization), used in zip(group, nonces, strict=True)
        ]

    @staticmethod
    def _keys(token: str, authorization: SignedAuthorization) -> list[tuple]:
        return [(token, "paused")] + [
            (token, view, party)
            for party in (authorization.from_, authorization.to)
            for view in _PARTY_VIEWS
        ]

    def _view(self, token: str, authorization: SignedAuthorization, used: int) -> ChainView:
        return ChainView(
            paused=bool(self._words[(token, "paused")]),
            nonce_used=bool(used),
            payer=self._party(token, authorization.from_),
            merchant=self._party(token, authorization.to),
        )

    def _party(self, token: str, account: str) -> Party:
        kind, active, frozen, balance = (self._words[(token, v, account)] for v in _PARTY_VIEWS)
        return Party(kind, bool(active), bool(frozen), balance)


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
    if merchant.kind != MERCHANT or not merchant.active or merchant.frozen:
        state = "not a merchant of " + city.name if merchant.kind != MERCHANT else "not active"
        return Unprocessable(
            "unknown_merchant" if merchant.kind != MERCHANT else "merchant_not_active",
            f"{authorization.to} is {state}",
            field="to",
            value=authorization.to,
            accepted=f"an active merchant registered in {city.name}",
        )
    if payer.kind != RESIDENT or not payer.active or payer.frozen:
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
