"""Charging (충전): treasury.issue by an issuer, within every limit of the city's policy.

Gimpo's policy (scripts/city_suite.py): 10% incentive up to 50,000 KRW a month, 500,000 KRW of
purchases a month, 2,000,000 KRW held at most, 29.2 billion KRW a fiscal year.
"""

from datetime import timedelta

from brownie import accounts

LIMIT = 500_000
INCENTIVE_LIMIT = 50_000


def test_issue_emits_issued_with_resident_reference_issuer_amount_and_incentive(
    treasury, fresh_resident, issuer, new_reference, as_hex
):
    reference = new_reference()
    tx = treasury.issue(fresh_resident, 200_000, reference, {"from": issuer})
    assert tx.events["Issued"].values() == [
        fresh_resident.address,
        as_hex(reference),
        issuer.address,
        200_000,
        20_000,
    ]


def test_issue_mints_the_amount_plus_the_incentive_to_the_resident(
    treasury, token, fresh_resident, issuer, new_reference
):
    supply = token.totalSupply()
    treasury.issue(fresh_resident, 200_000, new_reference(), {"from": issuer})
    assert token.balanceOf(fresh_resident) == 220_000
    assert token.totalSupply() == supply + 220_000


def test_issue_returns_the_incentive(treasury, fresh_resident, issuer, new_reference):
    tx = treasury.issue(fresh_resident, 200_000, new_reference(), {"from": issuer})
    assert tx.return_value == 20_000


def test_incentive_is_the_amount_times_the_rate_rounded_down(
    treasury, fresh_resident, issuer, new_reference
):
    tx = treasury.issue(fresh_resident, 12_345, new_reference(), {"from": issuer})
    assert tx.events["Issued"]["incentive"] == 1_234


def test_incentive_is_cut_to_what_is_left_of_the_monthly_incentive_limit(
    treasury, token, fresh_resident, issuer, city_admin, new_reference
):
    treasury.setMonthlyIncentiveLimit(25_000, {"from": city_admin})
    treasury.issue(fresh_resident, 200_000, new_reference(), {"from": issuer})
    tx = treasury.issue(fresh_resident, 100_000, new_reference(), {"from": issuer})
    assert tx.events["Issued"]["incentive"] == 5_000
    assert token.balanceOf(fresh_resident) == 220_000 + 105_000


def test_charge_is_not_refused_once_the_monthly_incentive_limit_is_used_up(
    treasury, token, fresh_resident, issuer, city_admin, new_reference
):
    treasury.setMonthlyIncentiveLimit(20_000, {"from": city_admin})
    treasury.issue(fresh_resident, 200_000, new_reference(), {"from": issuer})
    tx = treasury.issue(fresh_resident, 100_000, new_reference(), {"from": issuer})
    assert tx.events["Issued"]["incentive"] == 0
    assert token.balanceOf(fresh_resident) == 220_000 + 100_000


def test_monthly_purchase_limit_counts_the_amount_without_the_incentive(
    treasury, token, fresh_resident, issuer, new_reference
):
    treasury.issue(fresh_resident, LIMIT, new_reference(), {"from": issuer})
    assert token.balanceOf(fresh_resident) == LIMIT + INCENTIVE_LIMIT
    assert treasury.residentTally(fresh_resident)["purchasedThisMonth"] == LIMIT


def test_issue_reverts_over_the_monthly_purchase_limit_with_the_month_s_purchases(
    treasury, fresh_resident, issuer, new_reference, reverts_with
):
    treasury.issue(fresh_resident, 400_000, new_reference(), {"from": issuer})
    with reverts_with("CityTreasuryMonthlyLimitExceeded", fresh_resident, 400_000, 100_001, LIMIT):
        treasury.issue(fresh_resident, 100_001, new_reference(), {"from": issuer})


def test_monthly_purchase_limit_resets_when_the_kst_month_turns(
    treasury, fresh_resident, issuer, new_reference, kst
):
    kst.sleep_until(kst.next_month_start() + timedelta(days=10))
    treasury.issue(fresh_resident, LIMIT, new_reference(), {"from": issuer})
    next_month = kst.next_month_start()
    kst.sleep_past(next_month)
    treasury.issue(fresh_resident, LIMIT, new_reference(), {"from": issuer})
    tally = treasury.residentTally(fresh_resident)
    assert tally["month"] == kst.month_index(next_month)
    assert tally["purchasedThisMonth"] == LIMIT


def test_monthly_purchase_limit_still_applies_half_an_hour_before_kst_midnight(
    treasury, fresh_resident, issuer, new_reference, kst, reverts_with
):
    kst.sleep_until(kst.next_month_start() + timedelta(days=10))
    treasury.issue(fresh_resident, LIMIT, new_reference(), {"from": issuer})
    kst.sleep_until(kst.next_month_start() - timedelta(minutes=30))
    with reverts_with("CityTreasuryMonthlyLimitExceeded", fresh_resident, LIMIT, 1, LIMIT):
        treasury.issue(fresh_resident, 1, new_reference(), {"from": issuer})


def test_monthly_purchase_limit_resets_at_kst_midnight_while_utc_is_still_in_the_old_month(
    treasury, fresh_resident, issuer, new_reference, kst
):
    kst.sleep_until(kst.next_month_start() + timedelta(days=10))
    treasury.issue(fresh_resident, LIMIT, new_reference(), {"from": issuer})
    next_month = kst.next_month_start()
    kst.sleep_past(next_month, timedelta(minutes=30))
    # 00:30 KST on the 1st is 15:30 UTC on the last day of the month before.
    assert kst.now().utctimetuple().tm_mon != next_month.month
    tx = treasury.issue(fresh_resident, 1_000, new_reference(), {"from": issuer})
    assert tx.events["Issued"]["amount"] == 1_000


def test_residents_have_separate_monthly_limits(
    treasury, token, city, fresh_resident, resident, issuer, new_reference
):
    treasury.issue(fresh_resident, LIMIT, new_reference(), {"from": issuer})
    balance = token.balanceOf(resident)
    treasury.issue(resident, 100_000, new_reference(), {"from": issuer})
    assert token.balanceOf(resident) == balance + 110_000


def test_issue_reverts_over_the_holding_cap_counting_the_incentive(
    treasury, fresh_resident, issuer, city_admin, new_reference, reverts_with
):
    treasury.setHoldingCap(300_000, {"from": city_admin})
    treasury.issue(fresh_resident, 200_000, new_reference(), {"from": issuer})
    with reverts_with("CityTreasuryHoldingCapExceeded", fresh_resident, 220_000, 88_000, 300_000):
        treasury.issue(fresh_resident, 80_000, new_reference(), {"from": issuer})


def test_issue_allows_a_balance_of_exactly_the_holding_cap(
    treasury, token, fresh_resident, issuer, city_admin, new_reference
):
    treasury.setHoldingCap(330_000, {"from": city_admin})
    treasury.issue(fresh_resident, 200_000, new_reference(), {"from": issuer})
    treasury.issue(fresh_resident, 100_000, new_reference(), {"from": issuer})
    assert token.balanceOf(fresh_resident) == 330_000


def test_issue_reverts_over_the_annual_issuance_cap(
    treasury, fresh_resident, issuer, city_admin, new_reference, reverts_with
):
    cap = treasury.issuedThisFiscalYear() + 110_000
    treasury.setAnnualIssuanceCap(cap, {"from": city_admin})
    treasury.issue(fresh_resident, 100_000, new_reference(), {"from": issuer})
    with reverts_with("CityTreasuryAnnualCapExceeded", cap, 11, cap):
        treasury.issue(fresh_resident, 10, new_reference(), {"from": issuer})


def test_issued_this_fiscal_year_counts_charges_with_their_incentive(
    treasury, fresh_resident, issuer, new_reference
):
    issued = treasury.issuedThisFiscalYear()
    treasury.issue(fresh_resident, 100_000, new_reference(), {"from": issuer})
    assert treasury.issuedThisFiscalYear() == issued + 110_000


def test_issued_this_fiscal_year_reads_zero_once_the_kst_year_turns(
    treasury, fresh_resident, issuer, new_reference, kst
):
    treasury.issue(fresh_resident, 100_000, new_reference(), {"from": issuer})
    kst.sleep_past(kst.next_year_start())
    assert treasury.issuedThisFiscalYear() == 0


def test_annual_issuance_cap_resets_when_the_fiscal_year_turns(
    treasury, fresh_resident, issuer, city_admin, new_reference, kst
):
    cap = treasury.issuedThisFiscalYear() + 110_000
    treasury.setAnnualIssuanceCap(cap, {"from": city_admin})
    treasury.issue(fresh_resident, 100_000, new_reference(), {"from": issuer})
    new_year = kst.next_year_start()
    kst.sleep_past(new_year)
    treasury.issue(fresh_resident, 100_000, new_reference(), {"from": issuer})
    assert treasury.issuedThisFiscalYear() == 110_000
    assert treasury.currentFiscalYear() == new_year.year


def test_issue_decreases_the_issuer_allowance_by_amount_plus_incentive(
    treasury, fresh_resident, issuer, new_reference
):
    allowance = treasury.issuerAllowance(issuer)
    treasury.issue(fresh_resident, 100_000, new_reference(), {"from": issuer})
    assert treasury.issuerAllowance(issuer) == allowance - 110_000


def test_issuer_may_use_up_its_allowance_exactly(
    treasury, token, fresh_resident, issuer_admin, new_reference
):
    small_issuer = accounts[9]
    treasury.configureIssuer(small_issuer, 110_000, {"from": issuer_admin})
    treasury.issue(fresh_resident, 100_000, new_reference(), {"from": small_issuer})
    assert treasury.issuerAllowance(small_issuer) == 0
    assert token.balanceOf(fresh_resident) == 110_000


def test_issue_reverts_beyond_the_issuer_allowance(
    treasury, fresh_resident, issuer_admin, new_reference, reverts_with
):
    small_issuer = accounts[9]
    treasury.configureIssuer(small_issuer, 115_000, {"from": issuer_admin})
    treasury.issue(fresh_resident, 100_000, new_reference(), {"from": small_issuer})
    with reverts_with("CityTreasuryIssuerAllowanceExceeded", small_issuer, 5_000, 11_000):
        treasury.issue(fresh_resident, 10_000, new_reference(), {"from": small_issuer})


def test_deposit_reference_is_marked_issued(treasury, fresh_resident, issuer, new_reference):
    reference = new_reference()
    assert not treasury.depositIssued(reference)
    treasury.issue(fresh_resident, 1_000, reference, {"from": issuer})
    assert treasury.depositIssued(reference)


def test_same_deposit_reference_never_mints_twice(
    treasury, fresh_resident, issuer, new_reference, reverts_with
):
    reference = new_reference()
    treasury.issue(fresh_resident, 1_000, reference, {"from": issuer})
    with reverts_with("CityTreasuryDepositAlreadyIssued", reference):
        treasury.issue(fresh_resident, 1_000, reference, {"from": issuer})


def test_same_deposit_reference_never_mints_for_another_resident_or_issuer(
    treasury, city, fresh_resident, resident, issuer, issuer_admin, new_reference, reverts_with
):
    other_issuer = accounts[9]
    treasury.configureIssuer(other_issuer, 1_000_000, {"from": issuer_admin})
    reference = new_reference()
    treasury.issue(fresh_resident, 1_000, reference, {"from": issuer})
    with reverts_with("CityTreasuryDepositAlreadyIssued", reference):
        treasury.issue(resident, 1_000, reference, {"from": other_issuer})


def test_a_refused_charge_leaves_its_deposit_reference_unused(
    treasury, registry, token, fresh_resident, issuer, registrar, new_reference, reverts_with
):
    reference = new_reference()
    registry.suspend(fresh_resident, {"from": registrar})
    with reverts_with("CityTokenResidentNotActive", fresh_resident):
        treasury.issue(fresh_resident, 1_000, reference, {"from": issuer})
    registry.activate(fresh_resident, {"from": registrar})
    treasury.issue(fresh_resident, 1_000, reference, {"from": issuer})
    assert token.balanceOf(fresh_resident) == 1_100


def test_issue_reverts_for_a_zero_amount(
    treasury, fresh_resident, issuer, new_reference, reverts_with
):
    with reverts_with("CityTreasuryZeroAmount"):
        treasury.issue(fresh_resident, 0, new_reference(), {"from": issuer})


def test_issue_reverts_for_an_empty_deposit_reference(
    treasury, fresh_resident, issuer, reverts_with
):
    with reverts_with("CityTreasuryEmptyReference"):
        treasury.issue(fresh_resident, 1_000, bytes(32), {"from": issuer})


def test_issue_reverts_for_a_merchant(
    treasury, city, merchant, issuer, new_reference, reverts_with
):
    with reverts_with("CityTreasuryNotResident", merchant):
        treasury.issue(merchant, 1_000, new_reference(), {"from": issuer})


def test_issue_reverts_for_an_unregistered_wallet(
    treasury, city, stranger, issuer, new_reference, reverts_with
):
    with reverts_with("CityTreasuryNotResident", stranger):
        treasury.issue(stranger, 1_000, new_reference(), {"from": issuer})


def test_issue_reverts_for_a_suspended_resident(
    treasury, registry, fresh_resident, issuer, registrar, new_reference, reverts_with
):
    registry.suspend(fresh_resident, {"from": registrar})
    with reverts_with("CityTokenResidentNotActive", fresh_resident):
        treasury.issue(fresh_resident, 1_000, new_reference(), {"from": issuer})


def test_issue_reverts_for_a_revoked_resident(
    treasury, registry, fresh_resident, issuer, registrar, new_reference, reverts_with
):
    registry.revoke(fresh_resident, False, {"from": registrar})
    with reverts_with("CityTokenResidentNotActive", fresh_resident):
        treasury.issue(fresh_resident, 1_000, new_reference(), {"from": issuer})


def test_issue_reverts_for_a_frozen_resident(
    treasury, token, fresh_resident, issuer, compliance, new_reference, reverts_with
):
    token.freeze(fresh_resident, {"from": compliance})
    with reverts_with("CityTokenAccountFrozen", fresh_resident):
        treasury.issue(fresh_resident, 1_000, new_reference(), {"from": issuer})


def test_issue_reverts_while_the_city_is_paused(
    treasury, token, fresh_resident, issuer, pauser, new_reference, reverts_with
):
    token.pause({"from": pauser})
    with reverts_with("EnforcedPause"):
        treasury.issue(fresh_resident, 1_000, new_reference(), {"from": issuer})


def test_totals_count_issued_value_and_incentive(treasury, fresh_resident, issuer, new_reference):
    issued, incentive, burned, returned, settled, clawed_back = treasury.totals()
    treasury.issue(fresh_resident, 200_000, new_reference(), {"from": issuer})
    assert treasury.totals() == (
        issued + 220_000,
        incentive + 20_000,
        burned,
        returned,
        settled,
        clawed_back,
    )


def test_totals_after_the_city_fixture_hold_its_two_charges(treasury, city):
    assert treasury.totals() == (220_000, 20_000, 0, 0, 0, 0)


def test_resident_tally_holds_the_month_s_purchases_and_the_charged_value(
    treasury, fresh_resident, issuer, new_reference, kst
):
    treasury.issue(fresh_resident, 200_000, new_reference(), {"from": issuer})
    treasury.issue(fresh_resident, 12_345, new_reference(), {"from": issuer})
    assert treasury.residentTally(fresh_resident) == (
        kst.month_index(kst.now()),
        212_345,
        21_234,
        233_579,
        21_234,
    )


def test_resident_tally_zeroes_the_month_s_counters_in_a_new_month(
    treasury, fresh_resident, issuer, new_reference, kst
):
    treasury.issue(fresh_resident, 200_000, new_reference(), {"from": issuer})
    next_month = kst.next_month_start()
    kst.sleep_past(next_month)
    assert treasury.residentTally(fresh_resident) == (
        kst.month_index(next_month),
        0,
        0,
        220_000,
        20_000,
    )
