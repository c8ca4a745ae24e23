"""What a cash-out request must pass before it is recorded: everything the treasury would check,
asked of the chain first, so a refusal costs nothing and names what was wrong."""

from __future__ import annotations

from dataclasses import dataclass

from citypay.authorization import TokenDomain
from citypay.cashout.authorization import recover_cash_out_signer
from citypay.chain.deployment import City
from citypay.chain.duty_sender import ChainRefusal, DutySender
from citypay.core.errors import Conflict, Unprocessable
from citypay.core.validity import Validity

MERCHANT = 2  # ICityToken.AccountKind.Merchant


@dataclass(frozen=True)
class CashOutRequest:
    merchant: str
    amount: int
    valid_before: int
    nonce: bytes
    signature: bytes

    def call_args(self) -> tuple:
        return (self.merchant, self.amount, self.valid_before, self.nonce, self.signature)


def treasury_domain(city: City) -> TokenDomain:
    """The domain as the treasury itself reports it (ERC-5267), so the check is the contract's."""
    _, name, version, chain_id, contract, _, _ = city.treasury.functions.eip712Domain().call()
    return TokenDomain(name, version, chain_id, contract)


def check_request(
    city: City, domain: TokenDomain, request: CashOutRequest, *, now: int, validity: Validity
) -> None:
    """Raises a 4xx naming the field, its value and what is accepted."""
    if request.valid_before < now + validity.least:
        raise Unprocessable(
            "authorization_expiring",
            f"validBefore {request.valid_before} leaves less than {validity.least} s "
            f"after the chain's time {now}",
            field="validBefore",
            value=request.valid_before,
            accepted=f"a time after {now + validity.least} (unix seconds)",
        )
    too_long = validity.lifetime_refusal(
        "cash-out authorization", request.valid_before, now=now, clock="the chain's time"
    )
    if too_long is not None:
        raise too_long
    signer = recover_cash_out_signer(
        domain,
        merchant=request.merchant,
        amount=request.amount,
        valid_before=request.valid_before,
        nonce=request.nonce,
        signature=request.signature,
    )
    if signer != request.merchant:
        raise Unprocessable(
            "invalid_signature",
            f"the signature recovers {signer}, not the merchant {request.merchant}",
            field="signature",
            value="0x" + request.signature.hex(),
            accepted=(
                f"the merchant's EIP-712 CashOutAuthorization signature for domain "
                f"'{domain.name}' version {domain.version}, chain {domain.chain_id}, "
                f"contract {domain.verifying_contract}"
            ),
        )
    token = city.token.functions
    if (
        token.accountKind(request.merchant).call() != MERCHANT
        or not token.isActive(request.merchant).call()
    ):
        raise Unprocessable(
            "merchant_not_active",
            f"{request.merchant} is not an active merchant of {city.code}",
            field="merchant",
            value=request.merchant,
            accepted=f"the wallet of an active merchant registered in {city.code}",
        )
    balance = token.balanceOf(request.merchant).call()
    if request.amount > balance:
        raise Unprocessable(
            "amount_over_balance",
            f"amount {request.amount} KRW is more than the merchant's balance {balance} KRW",
            field="amount",
            value=request.amount,
            accepted=f"1 to {balance} KRW (the balance)",
        )
    if city.treasury.functions.cashOutAuthorizationUsed(request.merchant, request.nonce).call():
        raise Conflict(
            "nonce_used",
            f"nonce 0x{request.nonce.hex()} of {request.merchant} was used on chain already",
            field="nonce",
            value="0x" + request.nonce.hex(),
            accepted="a fresh random 32-byte nonce",
        )


def simulate(city: City, settler: DutySender, request: CashOutRequest) -> None:
    """The treasury's own verdict (frozen, paused, ...): what the checks above do not ask."""
    try:
        settler.simulate(city.treasury.functions.cashOutWithAuthorization(*request.call_args()))
    except ChainRefusal as refusal:
        raise Unprocessable(
            "chain_refused",
            f"the treasury refuses this cash-out: {refusal.reason}",
            accepted="a cash-out the treasury accepts",
        ) from None
