"""What a cash-out request must pass before it is recorded: everything the treasury would check,
asked of the chain first, so a refusal costs nothing and names what was wrong."""

from __future__ import annotations

from dataclasses import dataclass

from citypay.authorization import TokenDomain
from citypay.cashout.authorization import (
    MAX_CASH_OUT_VALIDITY,
    CashOutTerms,
    recover_cash_out_signer,
)
from citypay.chain.deployment import City
from citypay.chain.duty_sender import DutySender
from citypay.chain.enums import AccountKind, AuthorizationState, Status
from citypay.chain.gateway import ChainRefused
from citypay.core.errors import Conflict, Unprocessable
from citypay.core.validity import Validity, span_refusal


@dataclass(frozen=True)
class CashOutRequest:
    """The merchant's signed terms and its signature, as cashOutWithAuthorization takes them."""

    terms: CashOutTerms
    signature: bytes

    @property
    def merchant(self) -> str:
        return self.terms.merchant

    @property
    def nonce(self) -> bytes:
        return self.terms.nonce

    def call_args(self) -> tuple:
        return self.terms.call_args(self.signature)


def treasury_domain(city: City) -> TokenDomain:
    """The domain as the treasury itself reports it (ERC-5267), so the check is the contract's."""
    domain = city.chain.treasury.call("eip712Domain")
    return TokenDomain(domain.name, domain.version, domain.chainId, domain.verifyingContract)


def check_request(
    city: City, domain: TokenDomain, request: CashOutRequest, *, now: int, validity: Validity
) -> None:
    """Raises a 4xx naming the field, its value and what is accepted."""
    terms = request.terms
    refusal = validity.window_refusal(
        "cash-out authorization",
        terms.valid_after,
        terms.valid_before,
        now=now,
        clock="the chain's time",
    )
    if refusal is not None:
        raise refusal
    refusal = span_refusal(
        "cash-out authorization",
        terms.valid_after,
        terms.valid_before,
        most=MAX_CASH_OUT_VALIDITY,
        contract="treasury",
    )
    if refusal is not None:
        raise refusal
    signer = recover_cash_out_signer(domain, terms, request.signature)
    if signer != terms.merchant:
        raise Unprocessable(
            "invalid_signature",
            f"the signature recovers {signer}, not the merchant {terms.merchant}",
            field="signature",
            value="0x" + request.signature.hex(),
            accepted=(
                f"the merchant's EIP-712 CashOutAuthorization signature for domain "
                f"'{domain.name}' version {domain.version}, chain {domain.chain_id}, "
                f"contract {domain.verifying_contract}"
            ),
        )
    token, treasury = city.chain.token, city.chain.treasury
    registered, kind, active, balance, state = token.gateway.read_many(
        [
            (city.chain.registry, "merchantOf", (terms.merchant,)),
            (token, "accountKind", (terms.merchant,)),
            (token, "isActive", (terms.merchant,)),
            (token, "balanceOf", (terms.merchant,)),
            (treasury, "cashOutAuthorizationState", (terms.merchant, terms.nonce)),
        ]
    )
    payout_account = registered.payoutAccountHash
    revoked = registered.status is Status.REVOKED
    if kind is not AccountKind.MERCHANT or not (active or revoked):
        raise Unprocessable(
            "merchant_not_active",
            f"{terms.merchant} is not an active or revoked merchant of {city.code}",
            field="merchant",
            value=terms.merchant,
            accepted=f"the wallet of an active merchant registered in {city.code} (or a revoked "
            "one's closing cash-out)",
        )
    if terms.payout_account_hash != payout_account:
        raise Unprocessable(
            "payout_account_mismatch",
            f"the authorization pays 0x{terms.payout_account_hash.hex()}, the registry holds "
            f"0x{payout_account.hex()} for {terms.merchant}",
            field="payoutAccountHash",
            value="0x" + terms.payout_account_hash.hex(),
            accepted="0x" + payout_account.hex() + " (GET .../merchants/{merchant}/payout-account)",
        )
    if terms.amount > balance:
        raise Unprocessable(
            "amount_over_balance",
            f"amount {terms.amount} KRW is more than the merchant's balance {balance} KRW",
            field="amount",
            value=terms.amount,
            accepted=f"1 to {balance} KRW (the balance)",
        )
    if state is not AuthorizationState.UNUSED:
        raise Conflict(
            "nonce_used",
            f"nonce 0x{terms.nonce.hex()} of {terms.merchant} was "
            f"{'cancelled' if state is AuthorizationState.CANCELED else 'used'} on chain already",
            field="nonce",
            value="0x" + terms.nonce.hex(),
            accepted="a fresh random 32-byte nonce",
        )


def simulate(city: City, settler: DutySender, request: CashOutRequest) -> None:
    """The treasury's own verdict (frozen, paused, ...): what the checks above do not ask."""
    try:
        settler.simulate(city.chain.treasury, "cashOutWithAuthorization", *request.call_args())
    except ChainRefused as refusal:
        raise Unprocessable(
            "chain_refused",
            f"the treasury refuses this cash-out: {refusal.reason}",
            accepted="a cash-out the treasury accepts",
        ) from None
