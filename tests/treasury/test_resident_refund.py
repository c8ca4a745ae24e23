"""Resident refund (환불): once 60% of the charged value is used, the rest is burned and paid to
the resident's bank account less the unused incentive, which is clawed back.

The resident of the `city` fixture charged 100,000 KRW with a 10,000 KRW incentive: 110,000
charged, of which 10,000 incentive. Paying 66,000 uses exactly 60% and leaves 44,000, whose
unused incentive is 44,000 * 10,000 / 110,000 = 4,000, so the payout is 40,000.
"""

import pytest
from brownie import accounts
from eth_utils import keccak

from scripts.city_suite import return_of, settlement

RESIDENT_REFUND = 1
PENDING, SETTLED, RETURNED = 1, 2, 3
REFUND_MIN_USED_BPS = 6_000
PAYOUT_ACCOUNT = keccak(text="bank-account:resident-1")
BANK_REFERENCE = keccak(text="bank-transfer:NH-20240501-0042")
FAILURE_REASON = keccak(text="bank-failure:account-closed")


@pytest.fixture
def used_sixty_percent(city, token, resident, merchant):
    token.transfer(merchant, 66_000, {"from": resident})
    return resident


@pytest.fixture
def refund(treasury, used_sixty_percent):
    return treasury.requestResidentRefund(PAYOUT_ACCOUNT, {"from": used_sixty_percent})


def test_refund_reverts_below_sixty_percent_used(
    treasury, token, city, resident, merchant, reverts_with
):
    token.transfer(merchant, 65_999, {"from": resident})
    with reverts_with(
        "CityTreasuryRefundBelowUsage", resident, 65_999, 110_000, REFUND_MIN_USED_BPS
    ):
        treasury.requestResidentRefund(PAYOUT_ACCOUNT, {"from": resident})


def test_refund_is_allowed_at_exactly_sixty_percent_used(
    treasury, token, used_sixty_percent, as_hex
):
    tx = treasury.requestResidentRefund(PAYOUT_ACCOUNT, {"from": used_sixty_percent})
    assert tx.events["RedemptionRequested"].values() == [
        0,
        used_sixty_percent.address,
        RESIDENT_REFUND,
        44_000,
        40_000,
        as_hex(PAYOUT_ACCOUNT),
    ]


def test_refund_burns_the_whole_balance(treasury, token, used_sixty_percent):
    supply = token.totalSupply()
    treasury.requestResidentRefund(PAYOUT_ACCOUNT, {"from": used_sixty_percent})
    assert token.balanceOf(used_sixty_percent) == 0
    assert token.totalSupply() == supply - 44_000


def test_refund_records_the_payout_less_the_unused_incentive(
    treasury, used_sixty_percent, refund, as_hex
):
    assert treasury.redemption(0) == (
        used_sixty_percent.address,
        RESIDENT_REFUND,
        PENDING,
        refund.timestamp,
        0,
        44_000,
        110_000,
        40_000,
        10_000,
        as_hex(PAYOUT_ACCOUNT),
        as_hex(bytes(32)),
    )


def test_unused_incentive_is_rounded_down_in_the_resident_s_disfavour(
    treasury, token, city, resident, merchant
):
    token.transfer(merchant, 70_001, {"from": resident})
    tx = treasury.requestResidentRefund(PAYOUT_ACCOUNT, {"from": resident})
    # 39,999 * 10,000 / 110,000 = 3,636.27: 3,636 clawed back, 36,363 paid.
    assert tx.events["RedemptionRequested"]["payout"] == 36_363


def test_refund_adds_to_the_burned_and_clawed_back_totals(treasury, used_sixty_percent):
    issued, incentive, burned, returned, settled, clawed_back = treasury.totals()
    treasury.requestResidentRefund(PAYOUT_ACCOUNT, {"from": used_sixty_percent})
    assert treasury.totals() == (
        issued,
        incentive,
        burned + 44_000,
        returned,
        settled,
        clawed_back + 4_000,
    )


def test_refund_resets_the_charged_value_and_keeps_the_month_s_purchases(
    treasury, used_sixty_percent, refund, kst
):
    assert treasury.residentTally(used_sixty_percent) == (
        kst.month_index(kst.now()),
        100_000,
        10_000,
        0,
        0,
    )


def test_settling_a_refund_pays_the_payout(treasury, used_sixty_percent, refund, settler, as_hex):
    tx = treasury.settle(*settlement(treasury, 0, BANK_REFERENCE), {"from": settler})
    assert tx.events["RedemptionSettled"].values() == [
        0,
        used_sixty_percent.address,
        40_000,
        as_hex(BANK_REFERENCE),
    ]
    assert treasury.totals()["settled"] == 40_000


def test_returning_a_refund_restores_the_balance(
    treasury, token, used_sixty_percent, refund, settler
):
    tx = treasury.returnRedemption(*return_of(treasury, 0, FAILURE_REASON), {"from": settler})
    assert token.balanceOf(used_sixty_percent) == 44_000
    assert tx.events["RedemptionReturned"]["restored"] == 44_000


def test_returning_a_refund_gives_back_the_clawed_back_incentive(
    treasury, used_sixty_percent, refund, settler
):
    treasury.returnRedemption(*return_of(treasury, 0, FAILURE_REASON), {"from": settler})
    _, _, burned, returned, settled, clawed_back = treasury.totals()
    assert (burned, returned, settled, clawed_back) == (44_000, 44_000, 0, 0)


def test_returning_a_refund_restores_the_tally_as_before_the_request(
    treasury, used_sixty_percent, settler
):
    before = treasury.residentTally(used_sixty_percent)
    treasury.requestResidentRefund(PAYOUT_ACCOUNT, {"from": used_sixty_percent})
    treasury.returnRedemption(*return_of(treasury, 0, FAILURE_REASON), {"from": settler})
    assert treasury.residentTally(used_sixty_percent) == before


def test_after_a_returned_refund_the_resident_can_ask_again_for_the_same_payout(
    treasury, used_sixty_percent, refund, settler
):
    treasury.returnRedemption(*return_of(treasury, 0, FAILURE_REASON), {"from": settler})
    tx = treasury.requestResidentRefund(PAYOUT_ACCOUNT, {"from": used_sixty_percent})
    assert tx.events["RedemptionRequested"]["payout"] == 40_000


def test_refund_reverts_with_a_zero_balance(
    treasury, token, city, resident, merchant, reverts_with
):
    token.transfer(merchant, 110_000, {"from": resident})
    with reverts_with("CityTreasuryNothingToRefund", resident):
        treasury.requestResidentRefund(PAYOUT_ACCOUNT, {"from": resident})


def test_refund_reverts_for_a_resident_who_never_charged(treasury, fresh_resident, reverts_with):
    with reverts_with("CityTreasuryNothingToRefund", fresh_resident):
        treasury.requestResidentRefund(PAYOUT_ACCOUNT, {"from": fresh_resident})


def test_a_payment_refunded_after_a_refund_is_charged_money_again_not_yet_used(
    treasury, token, used_sixty_percent, refund, merchant, reverts_with
):
    """The refund counted that payment as used; given back, it counts as charged again, unused."""
    token.refund(used_sixty_percent, bytes(32), 10_000, {"from": merchant})
    with reverts_with(
        "CityTreasuryRefundBelowUsage", used_sixty_percent, 0, 10_000, REFUND_MIN_USED_BPS
    ):
        treasury.requestResidentRefund(PAYOUT_ACCOUNT, {"from": used_sixty_percent})


def test_refund_reverts_without_a_payout_account(treasury, used_sixty_percent, reverts_with):
    with reverts_with("CityTreasuryEmptyReference"):
        treasury.requestResidentRefund(bytes(32), {"from": used_sixty_percent})


def test_refund_reverts_for_a_merchant(treasury, token, city, resident, merchant, reverts_with):
    token.transfer(merchant, 66_000, {"from": resident})
    with reverts_with("CityTreasuryNotResident", merchant):
        treasury.requestResidentRefund(PAYOUT_ACCOUNT, {"from": merchant})


def test_returning_a_refund_after_a_wallet_recovery_restores_the_replacement(
    recover_wallet, treasury, token, registry, used_sixty_percent, refund, compliance, settler
):
    """Every burned won ends settled or returned (DESIGN.md), also when the wallet was lost
    while the refund was pending."""
    replacement = accounts.add(keccak(text="city-token-test-wallet:resident-1-replacement"))
    recover_wallet(used_sixty_percent, replacement)
    treasury.returnRedemption(*return_of(treasury, 0, FAILURE_REASON), {"from": settler})
    assert token.balanceOf(replacement) == 44_000
