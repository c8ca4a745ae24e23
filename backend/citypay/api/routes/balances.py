"""Money classes over HTTP: an account's balance and what it is made of (what a wallet shows a
resident, with what expires when), and the city's policy programs with their figures."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from citypay.api.deps import CityDep, PlatformDep
from citypay.core.errors import NotFound
from citypay.core.fields import Address

router = APIRouter(tags=["balances"])


class GeneralLot(BaseModel):
    amount: int = Field(description="KRW of general money that expires at `expiresAt`")
    expiresAt: int = Field(description="unix seconds: the start of the UTC day it expires")


class ProgramHolding(BaseModel):
    program: int
    code: str = Field(description="the program's code, e.g. YOUTH-2026H1")
    amount: int
    expiresAt: int = Field(description="unix seconds: the program's expiry")


class BalancePublic(BaseModel):
    city: str
    account: str
    block: int = Field(description="the block these figures are read at")
    balance: int = Field(description="balanceOf: the total, what every ERC-20 tool shows")
    general: list[GeneralLot] = Field(description="unexpired general money by expiry, oldest first")
    programs: list[ProgramHolding] = Field(description="each program's money, soonest expiry first")
    expired: int = Field(description="expired money awaiting the sweep: it can no longer be spent")


def _code(raw: bytes) -> str:
    """A program's bytes32 code as its text when it is printable ASCII, else its hex."""
    text = bytes(raw).rstrip(b"\0")
    if text and text.isascii() and text.decode().isprintable():
        return text.decode()
    return "0x" + bytes(raw).hex()


@router.get("/v1/cities/{city}/accounts/{account}/balance", response_model=BalancePublic)
def account_balance(city: CityDep, account: Address, platform: PlatformDep):
    """Public, as the chain is: the breakdown adds up to the balance (general money by expiry,
    each program's money, expired money)."""
    if city.programs is None:
        raise NotFound("no_money_classes", f"{city.name} runs no money classes")
    gateway = platform.gateway
    token = city.chain.token
    classes = gateway.contract(city.programs.address, "programs")
    # One block for every figure: they add up.
    block = int(gateway.rpc.request("eth_blockNumber"), 16)
    balance, (holdings, expired) = gateway.read_many(
        [(token, "balanceOf", (account,)), (classes, "breakdownOf", (account,))], block=block
    )
    numbers = [h.program for h in holdings if h.program != 0]
    records = gateway.read_many([(classes, "program", (n,)) for n in numbers], block=block)
    codes = {n: _code(r.code) for n, r in zip(numbers, records, strict=True)}
    return BalancePublic(
        city=city.code,
        account=account,
        block=block,
        balance=balance,
        general=[
            GeneralLot(amount=h.amount, expiresAt=h.expiry) for h in holdings if h.program == 0
        ],
        programs=[
            ProgramHolding(
                program=h.program, code=codes[h.program], amount=h.amount, expiresAt=h.expiry
            )
            for h in holdings
            if h.program != 0
        ],
        expired=expired,
    )


class ProgramPublic(BaseModel):
    program: int
    code: str
    budget: int
    funded: int
    paidOut: int
    spent: int = Field(description="paid to merchants")
    refunded: int = Field(description="back from merchants' refunds")
    expired: int = Field(description="gone back to the city at expiry")
    outstanding: int = Field(
        description="what residents hold of it: paidOut - spent + refunded - expired"
    )
    maxPerRecipient: int
    spendFrom: int = Field(description="unix seconds")
    expiresAt: int = Field(description="unix seconds")
    closed: bool


class ProgramsPublic(BaseModel):
    city: str
    block: int
    programs: list[ProgramPublic]


@router.get("/v1/cities/{city}/programs", response_model=ProgramsPublic)
def city_programs(city: CityDep, platform: PlatformDep):
    """Public, as the chain is: every policy program of the city with its figures, read at one
    block."""
    if city.programs is None:
        raise NotFound("no_money_classes", f"{city.name} runs no money classes")
    gateway = platform.gateway
    classes = gateway.contract(city.programs.address, "programs")
    block = int(gateway.rpc.request("eth_blockNumber"), 16)
    (count,) = gateway.read_many([(classes, "programCount", ())], block=block)
    records = gateway.read_many(
        [(classes, "program", (n,)) for n in range(1, count + 1)], block=block
    )
    return ProgramsPublic(
        city=city.code,
        block=block,
        programs=[
            ProgramPublic(
                program=number,
                code=_code(r.code),
                budget=r.budget,
                funded=r.funded,
                paidOut=r.paidOut,
                spent=r.spent,
                refunded=r.refunded,
                expired=r.expired,
                outstanding=r.paidOut - r.spent + r.refunded - r.expired,
                maxPerRecipient=r.maxPerRecipient,
                spendFrom=r.spendFrom,
                expiresAt=r.expiry,
                closed=r.closed,
            )
            for number, r in enumerate(records, start=1)
        ],
    )
