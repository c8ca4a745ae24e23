"""What a city's contracts say of themselves at one block, to set against the events."""

from __future__ import annotations

from dataclasses import dataclass

from citypay.audit.source import CityContracts
from citypay.chain.gateway import ChainGateway

# The treasury's totals() by the names the books give them: name -> the result's field.
TOTALS = {
    "issued": "issued",
    "incentive": "incentive",
    "burned": "burned",
    "returned": "returned",
    "settled": "settled",
    "clawed_back": "clawedBack",
}
# The most redemptions asked in one JSON-RPC batch.
REDEMPTIONS_A_BATCH = 500


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


def read_views(
    gateway: ChainGateway, city: CityContracts, block: int, redemptions: list[int]
) -> CityViews:
    """The views at `block`, the block the events were read up to (the same moment)."""
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
    statuses = {}
    for start in range(0, len(redemptions), REDEMPTIONS_A_BATCH):
        numbers = redemptions[start : start + REDEMPTIONS_A_BATCH]
        records = gateway.read_many(
            [(treasury, "redemption", (number,)) for number in numbers], block=block
        )
        for number, record in zip(numbers, records, strict=True):
            statuses[number] = record.status.name.lower()
    return CityViews(
        block=block,
        block_time=int(gateway.block(block)["timestamp"], 16),
        total_supply=supply,
        totals={name: getattr(totals, field) for name, field in TOTALS.items()},
        annual_cap=policy.annualIssuanceCap,
        issued_this_fiscal_year=issued,
        current_fiscal_year=year,
        fiscal_year_start_month=start_month,
        redemption_count=count,
        redemption_status=statuses,
    )
