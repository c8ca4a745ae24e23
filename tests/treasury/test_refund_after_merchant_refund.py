"""The 60% usage rule and merchant refunds (issue 9, item 5): a merchant refund of a payment that
a resident refund had counted as used makes that money charged again, with the incentive share it
had, so reversing a payment after the refund cannot have made the refund allowed for free: the
next refund needs 60% of it used again and claws back its incentive.

The resident charged 100,000 with a 10,000 incentive (110,000, the incentive 909 bps of it), paid
66,000 (60%) with plain transfers and was refunded the other 44,000 (payout 40,000).
"""

import pytest
from brownie import accounts
from eth_utils import keccak

from scripts.city_suite import return_of

RESIDENT_REFUND = 1
REFUND_MIN_USED_BPS = 6_000
PAYOUT_ACCOUNT = keccak(text="bank-account:resident-1")
FAILURE = keccak(text="bank-failure:account-closed")
ZERO_ID = bytes(32)


@pytest.fixture
def refunded(city, token, treasury, resident, merchant):
    """The resident used 60% and was refunded the rest: redemption 0."""
    token.transfer(merchant, 66_000, {"from": resident})
    treasury.requestResidentRefund(PAYOUT_ACCOUNT, {"from": resident})
    return resident


def charged(treasury, resident) -> tuple[int, int]:
    tally = treasury.residentTally(resident)
    return tally["chargedValue"], tally["incentiveCharged"]


def test_a_resident_refund_leaves_nothing_charged(treasury, refunded):
    assert charged(treasury, refunded) == (0, 0)


def test_a_merchant_refund_after_a_resident_refund_is_charged_money_again_with_its_incentive(
    token, treasury, merchant, refunded
):
    """66,000 * 909 bps = 5,999 of incentive."""
    token.refund(refunded, ZERO_ID, 66_000, {"from": merchant})
    assert charged(treasury, refunded) == (66_000, 5_999)


def test_a_partial_merchant_refund_is_charged_again_in_part(token, treasury, merchant, refunded):
    token.refund(refunded, ZERO_ID, 10_000, {"from": merchant})
    assert charged(treasury, refunded) == (10_000, 909)


def test_the_refunded_payment_does_not_count_as_used_for_the_next_refund(
    token, treasury, merchant, refunded, reverts_with
):
    token.refund(refunded, ZERO_ID, 66_000, {"from": merchant})
    with reverts_with("CityTreasuryRefundBelowUsage", refunded, 0, 66_000, REFUND_MIN_USED_BPS):
        treasury.requestResidentRefund(PAYOUT_ACCOUNT, {"from": refunded})


def test_the_next_refund_claws_back_the_incentive_of_the_refunded_payment(
    token, treasury, merchant, refunded, as_hex
):
    """60% of 66,000 used again leaves 26,400, whose incentive 26,400 * 5,999 / 66,000 = 2,399
    is clawed back."""
    token.refund(refunded, ZERO_ID, 66_000, {"from": merchant})
    token.transfer(merchant, 39_600, {"from": refunded})
    clawed_back = treasury.totals()[5]
    tx = treasury.requestResidentRefund(PAYOUT_ACCOUNT, {"from": refunded})
    assert tx.events["RedemptionRequested"].values() == [
        1,
        refunded.address,
        RESIDENT_REFUND,
        26_400,
        24_001,
        as_hex(PAYOUT_ACCOUNT),
    ]
    assert treasury.totals()[5] == clawed_back + 2_399


def test_only_what_the_refund_counted_as_used_is_charged_again(
    token, treasury, merchant, refunded, charge
):
    """A charge made after the refund is in the tally already: refunding its payment adds
    nothing to it (66,000 of the 77,000 refunded was counted as used)."""
    charge(refunded, 10_000)
    token.transfer(merchant, 11_000, {"from": refunded})
    token.refund(refunded, ZERO_ID, 77_000, {"from": merchant})
    assert charged(treasury, refunded) == (11_000 + 66_000, 1_000 + 5_999)


def test_a_returned_resident_refund_forgets_what_it_counted_as_used(
    token, treasury, settler, merchant, refunded
):
    treasury.returnRedemption(*return_of(treasury, 0, FAILURE), {"from": settler})
    token.refund(refunded, ZERO_ID, 66_000, {"from": merchant})
    assert charged(treasury, refunded) == (110_000, 10_000)


def test_what_a_refund_counted_as_used_moves_with_a_recovered_wallet(
    recover_wallet, token, treasury, merchant, refunded
):
    replacement = accounts.add(keccak(text="city-token-test-wallet:usage-replacement"))
    recover_wallet(refunded, replacement)
    token.refund(refunded, ZERO_ID, 66_000, {"from": merchant})
    assert charged(treasury, replacement) == (66_000, 5_999)


def test_a_merchant_refund_without_a_resident_refund_before_it_changes_no_tally(
    token, treasury, city, resident, merchant
):
    token.transfer(merchant, 10_000, {"from": resident})
    token.refund(resident, ZERO_ID, 10_000, {"from": merchant})
    assert charged(treasury, resident) == (110_000, 10_000)


def test_a_payment_made_after_the_refund_and_refunded_counts_against_the_usage_too(
    token, treasury, merchant, refunded, charge
):
    """The documented residual (docs/security.md): a payment record keeps no date, so until the
    usage the refund counted is used up, a refund of a later payment is charged again too. It
    errs against the resident (more charged, more incentive clawed back), never for it."""
    charge(refunded, 10_000)
    token.transfer(merchant, 11_000, {"from": refunded})
    token.refund(refunded, ZERO_ID, 11_000, {"from": merchant})
    assert charged(treasury, refunded) == (11_000 + 11_000, 1_000 + 999)


# --- A returned refund and merchant refunds -------------------------------------------------


def test_a_refund_returned_after_a_merchant_refund_of_its_usage_counts_that_money_once(
    token, treasury, settler, merchant, refunded
):
    token.refund(refunded, ZERO_ID, 66_000, {"from": merchant})
    treasury.returnRedemption(*return_of(treasury, 0, FAILURE), {"from": settler})
    assert charged(treasury, refunded)[0] == 110_000


def test_a_returned_refund_and_a_merchant_refund_do_not_open_a_refund_under_sixty_percent(
    token, treasury, settler, merchant, refunded, reverts_with
):
    """The resident names a bank account that returns the transfer, and its merchant refunds
    the 66,000 meanwhile: back to 110,000 charged and held, it spends 39,600 (36%)."""
    token.refund(refunded, ZERO_ID, 66_000, {"from": merchant})
    treasury.returnRedemption(*return_of(treasury, 0, FAILURE), {"from": settler})
    token.transfer(merchant, 39_600, {"from": refunded})
    with reverts_with(
        "CityTreasuryRefundBelowUsage", refunded, 39_600, 110_000, REFUND_MIN_USED_BPS
    ):
        treasury.requestResidentRefund(PAYOUT_ACCOUNT, {"from": refunded})


def test_returning_an_earlier_refund_keeps_what_a_later_refund_counted_as_used(
    token, treasury, settler, merchant, refunded, charge
):
    charge(refunded, 100_000)
    token.transfer(merchant, 66_000, {"from": refunded})
    treasury.requestResidentRefund(PAYOUT_ACCOUNT, {"from": refunded})
    treasury.returnRedemption(*return_of(treasury, 0, FAILURE), {"from": settler})
    before = charged(treasury, refunded)[0]
    token.refund(refunded, ZERO_ID, 66_000, {"from": merchant})
    assert charged(treasury, refunded)[0] == before + 66_000
