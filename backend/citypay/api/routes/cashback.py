"""Cashback on payments (결제 캐시백) over HTTP, public as the chain is: a city's terms, an
account's incentive this month and what it owes, what one payment earned. The backend's worker
pays it (cashback/settler.py); nothing here sends anything."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from citypay.api.deps import CityDep
from citypay.cashback import figures
from citypay.chain.enums import IncentiveMode
from citypay.core.fields import Address, Hex32

router = APIRouter(tags=["cashback"])

Mode = Literal["discount", "cashback"]
MODE_DESCRIPTION = (
    "how the city pays its purchase incentive now: 'discount' at charge, or 'cashback' on "
    "payments (the treasury's incentiveMode)"
)


def _mode(mode: IncentiveMode) -> Mode:
    return "cashback" if mode == IncentiveMode.CASHBACK else "discount"


class BandPublic(BaseModel):
    revenueUpTo: int = Field(description="merchants with an annual revenue up to this (KRW)")
    bps: int = Field(description="earn this rate, in basis points (1,000 = 10%)")


class RegionRatePublic(BaseModel):
    region: int = Field(description="the registry's region code, e.g. 31170")
    bps: int = Field(description="the rate there, in basis points, where above the band's")


class CashbackTermsPublic(BaseModel):
    city: str
    block: int = Field(description="the block these figures are read at")
    mode: Mode = Field(description=MODE_DESCRIPTION)
    bands: list[BandPublic] = Field(
        description="by ascending revenue: a merchant earns the first that holds its revenue, "
        "none above the last"
    )
    regions: list[RegionRatePublic]
    budgetLeft: int = Field(description="KRW the city may still pay as cashback")
    monthlyIncentiveLimit: int = Field(
        description="KRW of incentive (cashback and any discount) a resident gets a month"
    )


class AccountCashbackPublic(BaseModel):
    city: str
    account: str
    block: int = Field(description="the block these figures are read at")
    mode: Mode = Field(description=MODE_DESCRIPTION)
    incentiveThisMonth: int = Field(
        description="incentive the treasury counted for the account this month (KST): cashback "
        "net of what refunds took back, and any discount at charge"
    )
    monthlyIncentiveLimit: int
    incentiveLeftThisMonth: int = Field(description="what the limit leaves this month")
    debt: int = Field(
        description="cashback a refund took back that the account had spent: its next cashback "
        "pays it first"
    )


class PaymentCashbackPublic(BaseModel):
    city: str
    payer: str
    merchant: str
    paymentId: str = Field(description="the invoice id or EIP-3009 nonce; zero: plain transfers")
    block: int = Field(description="the block these figures are read at")
    mode: Mode = Field(description=MODE_DESCRIPTION)
    base: int = Field(
        description="the payment's general money as the chain counts it now: paid, less "
        "refunded, less program money (KRW)"
    )
    settledBase: int = Field(description="what the cashback paid on it was settled on (KRW)")
    cashback: int = Field(description="cashback it earned, less what refunds took back (KRW)")
    unsettled: int = Field(
        description="base - settledBase: above zero, to be paid at its next settlement; below, "
        "a refund's share to be taken back"
    )
    rateBps: int = Field(description="the rate a payment at this merchant earns now")
    refusal: str | None = Field(
        description="why it would earn nothing now, the contract's error (e.g. "
        "CityCashbackNotCashbackMode()); null if it would"
    )


@router.get("/v1/cities/{city}/cashback", response_model=CashbackTermsPublic)
def cashback_terms(city: CityDep):
    """Public, as the chain is: the city's mode, its rates by merchant revenue band and region,
    the budget left and the monthly incentive limit the treasury holds residents to."""
    terms = figures.terms(city)
    return CashbackTermsPublic(
        city=city.code,
        block=terms.block,
        mode=_mode(terms.mode),
        bands=[BandPublic(revenueUpTo=b.revenueUpTo, bps=b.bps) for b in terms.bands],
        regions=[RegionRatePublic(region=r.region, bps=r.bps) for r in terms.regions],
        budgetLeft=terms.budget,
        monthlyIncentiveLimit=terms.monthly_incentive_limit,
    )


@router.get("/v1/cities/{city}/accounts/{account}/cashback", response_model=AccountCashbackPublic)
def account_cashback(city: CityDep, account: Address):
    """Public, as the chain is: the account's incentive this month against the limit, and what it
    owes from cashback taken back."""
    found = figures.account(city, account)
    return AccountCashbackPublic(
        city=city.code,
        account=account,
        block=found.block,
        mode=_mode(found.mode),
        incentiveThisMonth=found.incentive_this_month,
        monthlyIncentiveLimit=found.monthly_incentive_limit,
        incentiveLeftThisMonth=max(0, found.monthly_incentive_limit - found.incentive_this_month),
        debt=found.debt,
    )


@router.get(
    "/v1/cities/{city}/cashback/payments/{payer}/{merchant}/{payment_id}",
    response_model=PaymentCashbackPublic,
)
def payment_cashback(city: CityDep, payer: Address, merchant: Address, payment_id: Hex32):
    """Public, as the chain is: what a payment earned. Named as a refund names it: the payer, the
    merchant and the payment's id (its invoice id or EIP-3009 nonce), or 0x00...00 for the
    payer's plain transfers to that merchant (their running total)."""
    found = figures.payment(city, payer, merchant, payment_id)
    return PaymentCashbackPublic(
        city=city.code,
        payer=payer,
        merchant=merchant,
        paymentId=payment_id.lower(),
        block=found.block,
        mode=_mode(found.mode),
        base=found.base,
        settledBase=found.settled_base,
        cashback=found.paid,
        unsettled=found.base - found.settled_base,
        rateBps=found.rate_bps,
        refusal=found.refusal,
    )
