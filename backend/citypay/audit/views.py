"""What a city's contracts say of themselves at one block, to set against the events."""

from __future__ import annotations

from dataclasses import dataclass

from web3 import Web3

from citypay.audit.source import CityContracts
from citypay.chain.events import CONTRACT_ABI, packaged_abi

TOTALS = ("issued", "incentive", "burned", "returned", "settled", "clawed_back")
REDEMPTION_STATUS = {0: "none", 1: "pending", 2: "settled", 3: "returned"}


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
    redemption_status: dict[int, str]  # of the redemptions asked about


def read_views(w3: Web3, city: CityContracts, block: int, redemptions: list[int]) -> CityViews:
    """The views at `block`, the block the events were read up to (the same moment)."""
    token = w3.eth.contract(address=city.token, abi=packaged_abi(CONTRACT_ABI["token"]))
    treasury = w3.eth.contract(address=city.treasury, abi=packaged_abi(CONTRACT_ABI["treasury"]))
    at = {"block_identifier": block}
    statuses = {}
    for number in redemptions:
        statuses[number] = REDEMPTION_STATUS[treasury.functions.redemption(number).call(**at)[2]]
    return CityViews(
        block=block,
        block_time=w3.eth.get_block(block)["timestamp"],
        total_supply=token.functions.totalSupply().call(**at),
        totals=dict(zip(TOTALS, treasury.functions.totals().call(**at), strict=True)),
        annual_cap=treasury.functions.policy().call(**at)[0],
        issued_this_fiscal_year=treasury.functions.issuedThisFiscalYear().call(**at),
        current_fiscal_year=treasury.functions.currentFiscalYear().call(**at),
        fiscal_year_start_month=treasury.functions.fiscalYearStartMonth().call(**at),
        redemption_count=treasury.functions.redemptionCount().call(**at),
        redemption_status=statuses,
    )
