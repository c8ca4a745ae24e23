"""Cashback on payments (결제 캐시백): in cashback mode a charge gets no discount; each payment
the backend settles earns its merchant's rate on the general money it drew on, within the
resident's monthly incentive limit, the holding cap, the annual issuance cap and the budget; a
merchant refund takes its share back; cashback is incentive wherever the treasury counts one."""

from __future__ import annotations

import pytest
from brownie import CityCashback, CityToken, CityTreasury, web3
from eth_utils import keccak
from treasury.conftest import error_data, hex32

from .conftest import (
    BUDGET,
    DECLINE_REGION,
    LARGE,
    MIDDLE,
    REGION,
    SMALL,
    ZERO_ID,
    invoice,
    wallet,
)

DAY = 86_400
CASHBACK, DISCOUNT = 1, 0
BANK_ACCOUNT = keccak(text="cashback-test:bank-account")


def _paid(tx) -> list:
    return tx.events["CashbackPaid"].values()


def _reversed(tx) -> list:
    return tx.events["CashbackReversed"].values()


def _refusal(error: str, *args) -> str:
    """What settleRefusal and a batch's CashbackRefused report for `error`."""
    return error_data(error, *args)


def _claim(cashback, payer, merchant, payment_id=ZERO_ID) -> tuple:
    """(general money counted now, (base settled, cashback paid on it))."""
    base, claim = cashback.settlementOf(payer, merchant, payment_id)
    return base, tuple(claim)


# --- Charging ---------------------------------------------------------------------------------


def test_a_charge_in_cashback_mode_gives_no_discount(treasury, token, new_resident, charge):
    resident = new_resident()
    tx = charge(resident, 100_000)
    assert treasury.incentiveMode() == CASHBACK
    assert tx.events["Issued"]["incentive"] == 0
    assert token.balanceOf(resident) == 100_000
    assert treasury.residentTally(resident)["incentiveCharged"] == 0


# --- Earning ----------------------------------------------------------------------------------


def test_an_invoice_payment_earns_the_band_rate_on_its_general_money(
    cashback, token, new_resident, new_merchant, settle
):
    resident, shop = new_resident(100_000), new_merchant()
    payment = invoice()
    token.pay(shop, 40_000, payment, {"from": resident})
    tx = settle(resident, shop, payment)
    assert _paid(tx) == [resident, shop, hex32(payment), resident, 40_000, 1_000, 4_000, 0]
    assert tx.return_value == 4_000
    assert token.balanceOf(resident) == 64_000
    assert _claim(cashback, resident, shop, payment) == (40_000, (40_000, 4_000))


def test_a_gasless_payment_earns_cashback_under_its_nonce(
    token, new_resident, new_merchant, settle, sign, relayer
):
    resident, shop = new_resident(100_000), new_merchant()
    auth = sign(resident, shop, 30_000)
    token.transferWithAuthorization(*auth.as_args(), {"from": relayer})
    tx = settle(resident, shop, auth.nonce)
    assert _paid(tx) == [resident, shop, hex32(auth.nonce), resident, 30_000, 1_000, 3_000, 0]
    assert token.balanceOf(resident) == 73_000


def test_plain_transfers_earn_on_their_running_total_with_the_merchant(
    cashback, token, new_resident, new_merchant, settle
):
    resident, shop = new_resident(100_000), new_merchant()
    token.transfer(shop, 10_000, {"from": resident})
    assert _paid(settle(resident, shop))[4:7] == [10_000, 1_000, 1_000]
    token.transfer(shop, 5_000, {"from": resident})
    token.transfer(shop, 7_000, {"from": resident})
    # Only what was paid since the last settlement earns.
    assert _paid(settle(resident, shop))[4:7] == [12_000, 1_000, 1_200]
    assert _claim(cashback, resident, shop) == (22_000, (22_000, 2_200))


@pytest.mark.parametrize(
    ("revenue", "region", "bps"),
    [
        (SMALL, REGION, 1_000),
        (MIDDLE, REGION, 500),
        (SMALL, DECLINE_REGION, 1_500),
        (MIDDLE, DECLINE_REGION, 1_500),
        (LARGE, REGION, 0),
        (LARGE, DECLINE_REGION, 0),
    ],
    ids=["small", "middle", "small-in-decline-area", "middle-in-decline-area", "large",
         "large-in-decline-area"],
)  # fmt: skip
def test_the_rate_is_the_revenue_bands_or_the_regions_where_higher(
    cashback, token, new_resident, new_merchant, settle, revenue, region, bps
):
    """A merchant above every band earns nothing, whatever its region."""
    resident, shop = new_resident(100_000), new_merchant(revenue, region)
    token.transfer(shop, 20_000, {"from": resident})
    assert cashback.rateOf(shop) == bps
    tx = settle(resident, shop)
    assert _paid(tx)[4:8] == [20_000, bps, 20_000 * bps // 10_000, 0]
    assert token.balanceOf(resident) == 80_000 + 20_000 * bps // 10_000


def test_a_payment_settled_twice_is_paid_once(
    cashback, token, new_resident, new_merchant, settle, cashback_payer
):
    resident, shop = new_resident(100_000), new_merchant()
    payment = invoice()
    token.pay(shop, 50_000, payment, {"from": resident})
    settle(resident, shop, payment)
    again = settle(resident, shop, payment)
    assert "CashbackPaid" not in again.events
    assert again.return_value == 0
    entry = (resident, shop, payment)
    batch = cashback.settleBatch([entry, entry], {"from": cashback_payer})
    assert "CashbackPaid" not in batch.events
    assert token.balanceOf(resident) == 55_000
    assert cashback.budget() == BUDGET - 5_000


def test_program_money_in_a_payment_earns_nothing(
    cashback, programs, token, city_admin, new_resident, new_merchant, settle, outsider
):
    for role in ("PROGRAM_MANAGER_ROLE", "PROGRAM_FUNDER_ROLE", "PROGRAM_PAYER_ROLE"):
        programs.grantRole(getattr(programs, role)(), city_admin, {"from": city_admin})
    expiry = web3.eth.get_block("latest").timestamp + 90 * DAY
    terms = (keccak(text="cashback-test:program"), 1_000_000, 100_000, 0, expiry, 2**64 - 1, [], [])
    program = programs.createProgram(terms, {"from": city_admin}).return_value
    programs.fundProgram(program, 1_000_000, terms[0], {"from": city_admin})
    resident, program_only, shop = new_resident(100_000), new_resident(), new_merchant()
    programs.payOut(program, [(resident, 30_000), (program_only, 30_000)], {"from": city_admin})

    # The payment draws the program's 30,000 first: 20,000 of general money earns.
    payment = invoice()
    token.pay(shop, 50_000, payment, {"from": resident})
    assert _paid(settle(resident, shop, payment))[4:7] == [20_000, 1_000, 2_000]
    # A payment of program money alone earns nothing.
    token.transfer(shop, 10_000, {"from": program_only})
    nothing = settle(program_only, shop)
    assert "CashbackPaid" not in nothing.events
    assert token.balanceOf(program_only) == 20_000

    # A refund gives the program money back first: the cashback stays until general money goes.
    token.refund(resident, payment, 30_000, {"from": shop})
    assert "CashbackReversed" not in settle(resident, shop, payment, sender=outsider).events
    token.refund(resident, payment, 10_000, {"from": shop})
    tx = settle(resident, shop, payment, sender=outsider)
    assert _reversed(tx)[4:7] == [10_000, 1_000, 1_000]


def test_plain_transfers_made_before_cashback_mode_earn_nothing_once_baselined(
    cashback, treasury, token, city_admin, new_resident, new_merchant, settle, cashback_payer
):
    resident, shop = new_resident(100_000), new_merchant()
    treasury.setIncentiveMode(DISCOUNT, {"from": city_admin})
    token.transfer(shop, 50_000, {"from": resident})
    treasury.setIncentiveMode(CASHBACK, {"from": city_admin})
    tx = cashback.baseline([(resident, shop, ZERO_ID)], {"from": cashback_payer})
    assert tx.return_value == 1
    assert tx.events["CashbackBaselined"].values() == [resident, shop, hex32(ZERO_ID), 50_000]
    assert _claim(cashback, resident, shop) == (50_000, (50_000, 0))
    assert token.balanceOf(resident) == 50_000
    # Only what is paid afterwards earns.
    token.transfer(shop, 20_000, {"from": resident})
    assert _paid(settle(resident, shop))[4:7] == [20_000, 1_000, 2_000]


def test_a_baseline_never_lowers_a_payment_nor_skips_a_refunds_take_back(
    cashback, token, new_resident, new_merchant, settle, cashback_payer, outsider
):
    resident, shop = new_resident(100_000), new_merchant()
    payment = invoice()
    token.pay(shop, 100_000, payment, {"from": resident})
    settle(resident, shop, payment)
    token.refund(resident, payment, 40_000, {"from": shop})
    entry = (resident, shop, payment)
    tx = cashback.baseline([entry, entry], {"from": cashback_payer})
    assert tx.return_value == 0
    assert "CashbackBaselined" not in tx.events
    assert _claim(cashback, resident, shop, payment) == (60_000, (100_000, 10_000))
    tx = settle(resident, shop, payment, sender=outsider)
    assert _reversed(tx)[4:7] == [40_000, 4_000, 4_000]


# --- Limits -----------------------------------------------------------------------------------


def test_the_monthly_incentive_limit_cuts_cashback(
    cashback, treasury, token, new_resident, new_merchant, settle, kst
):
    # GIMPO: 50,000 KRW of incentive a month; 15% of 400,000 would be 60,000.
    resident, shop = new_resident(500_000), new_merchant(region=DECLINE_REGION)
    first, second = invoice(), invoice()
    token.pay(shop, 400_000, first, {"from": resident})
    token.pay(shop, 50_000, second, {"from": resident})
    assert _paid(settle(resident, shop, first))[4:8] == [400_000, 1_500, 50_000, 0]
    assert treasury.residentTally(resident)["incentiveThisMonth"] == 50_000
    assert _paid(settle(resident, shop, second))[4:8] == [50_000, 1_500, 0, 0]
    # A payment cut by the limit does not earn again in a new month.
    kst.sleep_past(kst.next_month_start())
    assert "CashbackPaid" not in settle(resident, shop, second).events
    assert token.balanceOf(resident) == 100_000
    assert cashback.budget() == BUDGET - 50_000


def test_the_monthly_limit_is_shared_with_a_discount_charged_earlier_in_the_month(
    treasury, token, city_admin, new_resident, new_merchant, charge, settle
):
    admin = {"from": city_admin}
    resident, shop = new_resident(), new_merchant(region=DECLINE_REGION)
    treasury.setIncentiveMode(DISCOUNT, admin)
    treasury.setIncentiveBps(1_000, admin)
    assert charge(resident, 100_000).events["Issued"]["incentive"] == 10_000
    treasury.setIncentiveMode(CASHBACK, admin)
    charge(resident, 300_000)
    payment = invoice()
    token.pay(shop, 300_000, payment, {"from": resident})
    # 45,000 earned, 40,000 of the month's 50,000 left.
    assert _paid(settle(resident, shop, payment))[4:8] == [300_000, 1_500, 40_000, 0]
    assert treasury.residentTally(resident)["incentiveThisMonth"] == 50_000


def test_the_holding_cap_cuts_cashback(
    treasury, token, city_admin, new_resident, new_merchant, settle
):
    resident, shop = new_resident(200_000), new_merchant()
    payment = invoice()
    token.pay(shop, 100_000, payment, {"from": resident})
    treasury.setHoldingCap(104_000, {"from": city_admin})
    assert _paid(settle(resident, shop, payment))[4:8] == [100_000, 1_000, 4_000, 0]
    assert token.balanceOf(resident) == 104_000


def test_the_annual_issuance_cap_cuts_cashback(
    treasury, token, city_admin, new_resident, new_merchant, settle
):
    resident, shop = new_resident(100_000), new_merchant()
    payment = invoice()
    token.pay(shop, 100_000, payment, {"from": resident})
    treasury.setAnnualIssuanceCap(treasury.issuedThisFiscalYear() + 1_500, {"from": city_admin})
    assert _paid(settle(resident, shop, payment))[4:8] == [100_000, 1_000, 1_500, 0]


def test_the_budget_cuts_cashback_and_a_reversal_gives_it_back(
    cashback, token, city_admin, new_resident, new_merchant, settle, outsider
):
    tx = cashback.setBudget(3_000, {"from": city_admin})
    assert tx.events["CashbackBudgetChanged"].values() == [BUDGET, 3_000]
    resident, shop = new_resident(200_000), new_merchant()
    first, second = invoice(), invoice()
    token.pay(shop, 100_000, first, {"from": resident})
    token.pay(shop, 50_000, second, {"from": resident})
    assert _paid(settle(resident, shop, first))[6] == 3_000
    assert _paid(settle(resident, shop, second))[6] == 0
    assert cashback.budget() == 0
    token.refund(resident, first, 100_000, {"from": shop})
    assert _reversed(settle(resident, shop, first, sender=outsider))[5] == 3_000
    assert cashback.budget() == 3_000


# --- Merchant refunds -------------------------------------------------------------------------


def test_a_merchant_refund_takes_cashback_back_in_proportion_by_anyone(
    cashback, treasury, token, new_resident, new_merchant, settle, outsider
):
    resident, shop = new_resident(100_000), new_merchant()
    payment = invoice()
    token.pay(shop, 100_000, payment, {"from": resident})
    settle(resident, shop, payment)
    token.refund(resident, payment, 30_000, {"from": shop})
    tx = settle(resident, shop, payment, sender=outsider)
    assert _reversed(tx) == [resident, shop, hex32(payment), resident, 30_000, 3_000, 3_000]
    assert tx.return_value == -3_000
    assert token.balanceOf(resident) == 10_000 + 30_000 - 3_000
    # The month's incentive and the resident's charges lose what was taken back.
    tally = treasury.residentTally(resident)
    assert (tally["incentiveThisMonth"], tally["incentiveCharged"]) == (7_000, 7_000)

    token.refund(resident, payment, 70_000, {"from": shop})
    tx = settle(resident, shop, payment, sender=outsider)
    assert _reversed(tx)[4:7] == [70_000, 7_000, 7_000]
    assert token.balanceOf(resident) == 100_000
    assert _claim(cashback, resident, shop, payment) == (0, (0, 0))
    assert cashback.budget() == BUDGET


def test_a_reversal_rounds_toward_the_city(
    cashback, token, new_resident, new_merchant, settle, outsider
):
    resident, shop = new_resident(100_000), new_merchant()
    payment = invoice()
    token.pay(shop, 33_333, payment, {"from": resident})
    assert _paid(settle(resident, shop, payment))[6] == 3_333
    token.refund(resident, payment, 1, {"from": shop})
    # 3,333 x 1 / 33,333 is a tenth of a won: one won goes back.
    assert _reversed(settle(resident, shop, payment, sender=outsider))[5] == 1
    token.refund(resident, payment, 33_332, {"from": shop})
    assert _reversed(settle(resident, shop, payment, sender=outsider))[5] == 3_332


def test_cashback_the_resident_spent_becomes_a_debt_its_next_cashback_pays_first(
    cashback, token, new_resident, new_merchant, charge, settle, outsider
):
    resident, shop, elsewhere = new_resident(100_000), new_merchant(), new_merchant()
    payment = invoice()
    token.pay(shop, 100_000, payment, {"from": resident})
    settle(resident, shop, payment)
    token.refund(resident, payment, 100_000, {"from": shop})
    # The resident spends the refund and most of the cashback before the refund is settled.
    token.pay(elsewhere, 106_000, invoice(), {"from": resident})
    tx = settle(resident, shop, payment, sender=outsider)
    assert _reversed(tx)[4:7] == [100_000, 10_000, 4_000]
    assert token.balanceOf(resident) == 0
    assert cashback.debtOf(resident) == 6_000

    charge(resident, 100_000)
    again = invoice()
    token.pay(shop, 100_000, again, {"from": resident})
    assert _paid(settle(resident, shop, again))[4:8] == [100_000, 1_000, 4_000, 6_000]
    assert cashback.debtOf(resident) == 0
    assert token.balanceOf(resident) == 4_000
    assert cashback.budget() == BUDGET - 10_000


def test_a_frozen_residents_reversal_is_owed_whole(
    cashback, token, compliance, new_resident, new_merchant, settle, outsider
):
    resident, shop = new_resident(100_000), new_merchant()
    payment = invoice()
    token.pay(shop, 100_000, payment, {"from": resident})
    settle(resident, shop, payment)
    token.refund(resident, payment, 50_000, {"from": shop})
    token.freeze(resident, {"from": compliance})
    assert _reversed(settle(resident, shop, payment, sender=outsider))[5:7] == [5_000, 0]
    assert token.balanceOf(resident) == 60_000
    assert cashback.debtOf(resident) == 5_000


def test_a_refund_is_taken_back_after_the_city_returned_to_discounts(
    treasury, token, city_admin, new_resident, new_merchant, settle, outsider
):
    resident, shop = new_resident(100_000), new_merchant()
    payment = invoice()
    token.pay(shop, 100_000, payment, {"from": resident})
    settle(resident, shop, payment)
    treasury.setIncentiveMode(DISCOUNT, {"from": city_admin})
    token.refund(resident, payment, 100_000, {"from": shop})
    assert _reversed(settle(resident, shop, payment, sender=outsider))[5:7] == [10_000, 10_000]
    assert token.balanceOf(resident) == 100_000


def test_naming_another_merchant_takes_no_cashback_back(
    cashback, token, new_resident, new_merchant, settle, outsider
):
    resident, shop, other = new_resident(100_000), new_merchant(), new_merchant()
    payment = invoice()
    token.pay(shop, 100_000, payment, {"from": resident})
    settle(resident, shop, payment)
    tx = settle(resident, other, payment, sender=outsider)
    assert "CashbackReversed" not in tx.events
    assert token.balanceOf(resident) == 10_000
    assert _claim(cashback, resident, shop, payment) == (100_000, (100_000, 10_000))


# --- Cashback is incentive --------------------------------------------------------------------


def test_cashback_counts_as_incentive_in_the_residents_tally(
    treasury, token, new_resident, new_merchant, settle
):
    resident, shop = new_resident(100_000), new_merchant()
    token.transfer(shop, 100_000, {"from": resident})
    settle(resident, shop)
    tally = treasury.residentTally(resident)
    assert tally["purchasedThisMonth"] == 100_000
    assert tally["incentiveThisMonth"] == 10_000
    assert (tally["chargedValue"], tally["incentiveCharged"]) == (110_000, 10_000)


def test_a_resident_refund_claws_back_cashback_as_it_does_a_discount(
    treasury, token, new_resident, new_merchant, settle
):
    """Charged 100,000, spent it all, got 10,000 back: the tally of a 10% discount's charge
    spent as far, and the same refund (its incentive share clawed back, 10,000 x 10/110)."""
    resident, shop = new_resident(100_000), new_merchant()
    token.transfer(shop, 100_000, {"from": resident})
    settle(resident, shop)
    tx = treasury.requestResidentRefund(BANK_ACCOUNT, {"from": resident})
    requested = tx.events["RedemptionRequested"]
    assert (requested["burned"], requested["payout"]) == (10_000, 9_091)
    assert treasury.totals()[5] == 909


def test_money_that_is_all_cashback_is_neither_given_nor_refunded(
    gifts, treasury, token, registry, registrar, new_resident, new_merchant, settle, reverts_with
):
    giver, resident, shop = new_resident(100_000), new_resident(), new_merchant()
    gifts.gift(resident, 100_000, {"from": giver})
    token.transfer(shop, 100_000, {"from": resident})
    settle(resident, shop)
    assert token.balanceOf(resident) == 10_000
    assert gifts.giftableOf(resident) == 0
    with reverts_with("CityGiftsNotCashFunded", resident, 0, 1):
        gifts.gift(giver, 1, {"from": resident})
    with reverts_with("CityTreasuryRefundBelowUsage", resident, 0, 10_000, 6_000):
        treasury.requestResidentRefund(BANK_ACCOUNT, {"from": resident})
    # Even its closing refund pays none of it out.
    registry.revoke(resident, False, {"from": registrar})
    tx = treasury.requestResidentRefund(BANK_ACCOUNT, {"from": resident})
    requested = tx.events["RedemptionRequested"]
    assert (requested["burned"], requested["payout"]) == (10_000, 0)


def test_treasury_totals_count_cashback_as_issued_incentive_and_reversals_as_clawed_back(
    treasury, token, new_resident, new_merchant, settle, outsider
):
    resident, shop = new_resident(100_000), new_merchant()
    before = treasury.totals()
    payment = invoice()
    token.pay(shop, 100_000, payment, {"from": resident})
    settle(resident, shop, payment)
    token.refund(resident, payment, 30_000, {"from": shop})
    settle(resident, shop, payment, sender=outsider)
    issued, incentive, burned, returned, settled, clawed_back = treasury.totals()
    assert (issued, incentive) == (before[0] + 10_000, before[1] + 10_000)
    assert (burned, clawed_back) == (before[2] + 3_000, before[5] + 3_000)
    assert (returned, settled) == before[3:5]
    assert token.totalSupply() == issued - burned + returned


# --- Refusals ---------------------------------------------------------------------------------


def test_a_frozen_or_held_resident_is_paid_nothing_meanwhile(
    cashback, registry, token, compliance, new_resident, new_merchant, settle, reverts_with
):
    resident, shop = new_resident(100_000), new_merchant()
    payment = invoice()
    token.pay(shop, 10_000, payment, {"from": resident})
    token.freeze(resident, {"from": compliance})
    assert cashback.settleRefusal(resident, shop, payment) == _refusal(
        "CityCashbackAccountLocked", resident
    )
    with reverts_with("CityCashbackAccountLocked", resident):
        settle(resident, shop, payment)
    token.unfreeze(resident, {"from": compliance})
    registry.proposeRecovery(resident, wallet("replacement"), {"from": compliance})
    with reverts_with("CityCashbackAccountLocked", resident):
        settle(resident, shop, payment)
    # Nothing was counted: the payment earns once the resident may take money again.
    assert _claim(cashback, resident, shop, payment) == (10_000, (0, 0))


def test_only_a_residents_payment_to_a_merchant_earns(
    cashback, new_resident, new_merchant, stranger
):
    resident, other, shop = new_resident(), new_resident(), new_merchant()
    assert cashback.settleRefusal(resident, shop, ZERO_ID) == "0x"
    assert cashback.settleRefusal(stranger, shop, ZERO_ID) == _refusal(
        "CityCashbackNotResident", stranger
    )
    assert cashback.settleRefusal(shop, other, ZERO_ID) == _refusal("CityCashbackNotResident", shop)
    assert cashback.settleRefusal(resident, other, ZERO_ID) == _refusal(
        "CityCashbackNotMerchant", other
    )


def test_in_discount_mode_no_payment_earns_cashback(
    treasury, token, city_admin, new_resident, new_merchant, settle, reverts_with
):
    resident, shop = new_resident(100_000), new_merchant()
    payment = invoice()
    token.pay(shop, 10_000, payment, {"from": resident})
    treasury.setIncentiveMode(DISCOUNT, {"from": city_admin})
    with reverts_with("CityCashbackNotCashbackMode"):
        settle(resident, shop, payment)
    treasury.setIncentiveMode(CASHBACK, {"from": city_admin})
    assert _paid(settle(resident, shop, payment))[6] == 1_000


def test_a_batch_events_a_refused_payment_and_settles_the_others(
    cashback, token, compliance, new_resident, new_merchant, cashback_payer
):
    first, frozen, third = (new_resident(100_000) for _ in range(3))
    shop = new_merchant()
    payment = invoice()
    token.pay(shop, 10_000, payment, {"from": first})
    token.transfer(shop, 20_000, {"from": frozen})
    token.transfer(shop, 30_000, {"from": third})
    token.freeze(frozen, {"from": compliance})
    entries = [(first, shop, payment), (frozen, shop, ZERO_ID), (third, shop, ZERO_ID)]
    tx = cashback.settleBatch(entries, {"from": cashback_payer})
    assert tx.return_value == 2
    refused = _refusal("CityCashbackAccountLocked", frozen)
    assert tx.events["CashbackRefused"].values() == [frozen, shop, hex32(ZERO_ID), refused]
    assert [(e["payer"], e["minted"]) for e in tx.events["CashbackPaid"]] == [
        (first, 1_000),
        (third, 3_000),
    ]
    assert token.balanceOf(frozen) == 80_000


# --- Terms and mode ---------------------------------------------------------------------------


def test_new_terms_replace_the_old_for_payments_settled_afterwards(
    cashback, token, city_admin, new_resident, new_merchant, settle
):
    resident, shop = new_resident(100_000), new_merchant(region=DECLINE_REGION)
    tx = cashback.setTerms([(MIDDLE, 2_000)], [(REGION, 3_000)], {"from": city_admin})
    assert tx.events["CashbackTermsChanged"].values() == [[(MIDDLE, 2_000)], [(REGION, 3_000)]]
    assert cashback.bands() == [(MIDDLE, 2_000)]
    assert cashback.regionRates() == [(REGION, 3_000)]
    # The decline area's old rate is gone with its terms.
    assert cashback.rateOf(shop) == 2_000
    token.transfer(shop, 10_000, {"from": resident})
    assert _paid(settle(resident, shop))[5:7] == [2_000, 2_000]


@pytest.mark.parametrize(
    ("bands", "regions", "error", "args"),
    [
        ([(SMALL, 3_001)], [], "CityCashbackRateTooHigh", (3_001, 3_000)),
        ([], [(REGION, 3_001)], "CityCashbackRateTooHigh", (3_001, 3_000)),
        ([(SMALL, 1_000), (SMALL, 500)], [], "CityCashbackBandsNotAscending", (1, SMALL)),
        ([(SMALL + i, 100) for i in range(9)], [], "CityCashbackTooManyRates", (9, 8)),
        ([], [(i, 100) for i in range(65)], "CityCashbackTooManyRates", (65, 64)),
    ],
    ids=["band-rate", "region-rate", "bands-not-ascending", "too-many-bands", "too-many-regions"],
)
def test_terms_are_refused_out_of_bounds(
    cashback, city_admin, reverts_with, bands, regions, error, args
):
    with reverts_with(error, *args):
        cashback.setTerms(bands, regions, {"from": city_admin})
    assert [tuple(b) for b in cashback.bands()] == [
        (SMALL, 1_000),
        (1_000_000_000, 500),
    ]


def test_the_highest_rate_is_accepted(cashback, city_admin, new_merchant):
    shop = new_merchant()
    cashback.setTerms([(SMALL, 3_000)], [(REGION, 3_000)], {"from": city_admin})
    assert cashback.rateOf(shop) == cashback.MAX_RATE_BPS() == 3_000


def test_cashback_mode_zeroes_the_discount_and_refuses_a_new_one(
    treasury, city_admin, reverts_with
):
    admin = {"from": city_admin}
    treasury.setIncentiveMode(DISCOUNT, admin)
    treasury.setIncentiveBps(1_000, admin)
    tx = treasury.setIncentiveMode(CASHBACK, admin)
    assert tx.events["PolicyChanged"]["newValue"] == 0
    assert tx.events["IncentiveModeChanged"].values() == [DISCOUNT, CASHBACK]
    assert treasury.policy()["incentiveBps"] == 0
    with reverts_with("CityTreasuryCashbackMode", 500):
        treasury.setIncentiveBps(500, admin)
    treasury.setIncentiveBps(0, admin)


def test_cashback_mode_needs_a_linked_cashback_contract(
    city_terms, token, city_admin, reverts_with
):
    admin = {"from": city_admin}
    unlinked = CityTreasury.deploy(*city_terms.treasury_args(token, city_admin), admin)
    with reverts_with("CityTreasuryCashbackNotLinked"):
        unlinked.setIncentiveMode(CASHBACK, admin)


def test_the_treasury_links_its_citys_cashback_contract_once(
    city_terms, cashback, treasury, token, city_admin, stranger, reverts_with
):
    admin = {"from": city_admin}
    with reverts_with("CityTreasuryCashbackAlreadyLinked", cashback):
        treasury.linkCashback(CityCashback.deploy(token, city_admin, admin), admin)

    fresh = CityTreasury.deploy(*city_terms.treasury_args(token, city_admin), admin)
    other_city = CityToken.deploy("Other Pay", "OTHER", city_admin, admin)
    with reverts_with("CityTreasuryNotCashback", stranger):
        fresh.linkCashback(stranger, admin)
    foreign = CityCashback.deploy(other_city, city_admin, admin)
    with reverts_with("CityTreasuryNotCashback", foreign):
        fresh.linkCashback(foreign, admin)
    own = CityCashback.deploy(token, city_admin, admin)
    tx = fresh.linkCashback(own, admin)
    assert tx.events["CashbackLinked"]["cashback"] == own
    assert fresh.cashback() == own


# --- Recovery ---------------------------------------------------------------------------------


def test_a_recovered_wallet_keeps_its_debt_and_gets_its_payments_cashback(
    cashback, token, new_resident, new_merchant, charge, settle, outsider, recover_wallet
):
    resident, shop, shop2, elsewhere = new_resident(200_000), *(new_merchant() for _ in range(3))
    token.transfer(shop, 100_000, {"from": resident})
    settle(resident, shop)
    unsettled = invoice()
    token.pay(shop2, 20_000, unsettled, {"from": resident})
    token.refund(resident, ZERO_ID, 100_000, {"from": shop})
    token.pay(elsewhere, 190_000, invoice(), {"from": resident})
    settle(resident, shop, sender=outsider)
    assert cashback.debtOf(resident) == 10_000

    replacement = wallet("replacement")
    recover_wallet(resident, replacement)
    assert cashback.debtOf(replacement) == 10_000
    # A payment of the lost wallet's pays the replacement: its debt first.
    tx = settle(resident, shop2, unsettled)
    assert _paid(tx)[3:8] == [replacement, 20_000, 1_000, 0, 2_000]
    # The running total with the shop is the holder's, whichever wallet paid.
    charge(replacement, 100_000)
    token.transfer(shop, 100_000, {"from": replacement})
    tx = settle(replacement, shop)
    assert _paid(tx)[3:8] == [replacement, 100_000, 1_000, 2_000, 8_000]
    assert cashback.debtOf(replacement) == 0
    assert token.balanceOf(replacement) == 2_000
