"""What a city's contracts say of themselves at one block, to set against the events."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from citypay.audit.source import CityContracts
from citypay.chain.gateway import ChainGateway, PlatformContract

# The treasury's totals() by the names the books give them: name -> the result's field.
TOTALS = {
    "issued": "issued",
    "incentive": "incentive",
    "burned": "burned",
    "returned": "returned",
    "settled": "settled",
    "clawed_back": "clawedBack",
}
# The most views (a redemption's, a resident's debt) asked in one JSON-RPC batch.
VIEWS_A_BATCH = 500


@dataclass(frozen=True)
class CityViews:
    block: int
    block_time: int
    total_supply: int
    totals: dict[str, int]  # the treasury's lifetime totals(), named as TOTALS
    annual_cap: int
    issued_this_fiscal_year: int
    current_fiscal_year: int
    fiscal_year_start_month: int
    redemption_count: int
    redemption_status: dict[int, str]  # of the redemptions asked about: pending, settled, ...
    # A city with a cashback contract: what it may still pay, the treasury's incentive mode
    # (discount or cashback) and what each resident asked about owes; None and empty without.
    cashback_budget: int | None = None
    incentive_mode: str | None = None
    cashback_debts: dict[str, int] = field(default_factory=dict)


def _each(
    gateway: ChainGateway,
    contract: PlatformContract,
    function: str,
    keys: Sequence[Any],
    block: int,
    value: Callable[[Any], Any],
) -> dict[Any, Any]:
    """`function(key)` for each key, VIEWS_A_BATCH to a batch, as `value` makes each answer."""
    answers = {}
    for start in range(0, len(keys), VIEWS_A_BATCH):
        batch = keys[start : start + VIEWS_A_BATCH]
        read = gateway.read_many([(contract, function, (key,)) for key in batch], block=block)
        answers.update(zip(batch, map(value, read), strict=True))
    return answers


def read_views(
    gateway: ChainGateway,
    city: CityContracts,
    block: int,
    redemptions: list[int],
    debtors: Sequence[str] = (),
) -> CityViews:
    """The views at `block`, the block the events were read up to (the same moment); the debt
    of each of `debtors` where the city has a cashback contract."""
    token = gateway.contract(city.token, "token")
    treasury = gateway.contract(city.treasury, "treasury")
    supply, totals, policy, issued, year, start_month, count = gateway.read_many(
        [
            (token, "totalSupply", ()),
            (treasury, "totals", ()),
            (treasury, "policy", ()),
            (treasury, "issuedThisFiscalYear", ()),
            (treasury, "currentFiscalYear", ()),
            (treasury, "fiscalYearStartMonth", ()),
            (treasury, "redemptionCount", ()),
        ],
        block=block,
    )
    statuses = _each(
        gateway, treasury, "redemption", redemptions, block, lambda r: r.status.name.lower()
    )
    budget = mode = None
    debts: dict[str, int] = {}
    if city.cashback is not None:
        cashback = gateway.contract(city.cashback, "cashback")
        budget, incentive_mode = gateway.read_many(
            [(cashback, "budget", ()), (treasury, "incentiveMode", ())], block=block
        )
        mode = incentive_mode.name.lower()
        debts = _each(gateway, cashback, "debtOf", debtors, block, int)
    return CityViews(
        block=block,
        block_time=int(gateway.block(block)["timestamp"], 16),
        total_supply=supply,
        totals={name: getattr(totals, member) for name, member in TOTALS.items()},
        annual_cap=policy.annualIssuanceCap,
        issued_this_fiscal_year=issued,
        current_fiscal_year=year,
        fiscal_year_start_month=start_month,
        redemption_count=count,
        redemption_status=statuses,
        cashback_budget=budget,
        incentive_mode=mode,
        cashback_debts=debts,
    )
