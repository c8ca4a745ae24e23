"""What a wallet or a till reads of a city's cashback, each answer read at one block: the city's
terms, an account's incentive this month against its limit and what it owes, and what one payment
earned. A city in discount mode answers too, with its mode: its contract holds its terms all the
same, and a payment's refusal says why it earns nothing."""

from __future__ import annotations

from dataclasses import dataclass

from citypay.chain.codec import decode_revert
from citypay.chain.deployment import City
from citypay.chain.enums import IncentiveMode
from citypay.chain.gateway import PlatformContract
from citypay.core.errors import NotFound


@dataclass(frozen=True)
class Terms:
    block: int
    mode: IncentiveMode
    bands: list  # ICityCashback.Band records: revenueUpTo, bps
    regions: list  # ICityCashback.RegionRate records: region, bps
    budget: int
    monthly_incentive_limit: int


@dataclass(frozen=True)
class AccountCashback:
    block: int
    mode: IncentiveMode
    incentive_this_month: int
    monthly_incentive_limit: int
    debt: int


@dataclass(frozen=True)
class PaymentCashback:
    block: int
    mode: IncentiveMode
    base: int
    settled_base: int
    paid: int
    rate_bps: int
    refusal: str | None


def cashback_of(city: City) -> PlatformContract:
    if city.chain.cashback is None:
        raise NotFound("no_cashback", f"{city.name} was deployed without a cashback contract")
    return city.chain.cashback


def terms(city: City) -> Terms:
    cashback, treasury = cashback_of(city), city.chain.treasury
    block = cashback.gateway.block_number()
    mode, bands, regions, budget, policy = cashback.gateway.read_many(
        [
            (treasury, "incentiveMode", ()),
            (cashback, "bands", ()),
            (cashback, "regionRates", ()),
            (cashback, "budget", ()),
            (treasury, "policy", ()),
        ],
        block=block,
    )
    return Terms(block, mode, bands, regions, budget, policy.monthlyIncentiveLimit)


def account(city: City, address: str) -> AccountCashback:
    cashback, treasury = cashback_of(city), city.chain.treasury
    block = cashback.gateway.block_number()
    mode, tally, policy, debt = cashback.gateway.read_many(
        [
            (treasury, "incentiveMode", ()),
            (treasury, "residentTally", (address,)),
            (treasury, "policy", ()),
            (cashback, "debtOf", (address,)),
        ],
        block=block,
    )
    return AccountCashback(
        block, mode, tally.incentiveThisMonth, policy.monthlyIncentiveLimit, debt
    )


def payment(city: City, payer: str, merchant: str, payment_id: str) -> PaymentCashback:
    cashback = cashback_of(city)
    key = (payer, merchant, bytes.fromhex(payment_id[2:]))
    block = cashback.gateway.block_number()
    mode, settlement, rate, refusal = cashback.gateway.read_many(
        [
            (city.chain.treasury, "incentiveMode", ()),
            (cashback, "settlementOf", key),
            (cashback, "rateOf", (merchant,)),
            (cashback, "settleRefusal", key),
        ],
        block=block,
    )
    return PaymentCashback(
        block=block,
        mode=mode,
        base=settlement.base,
        settled_base=settlement.claim.base,
        paid=settlement.claim.paid,
        rate_bps=rate,
        refusal=str(decode_revert(refusal)) if refusal else None,
    )
