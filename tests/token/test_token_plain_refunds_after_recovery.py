"""Plain ERC-20 payments (no id) stay refundable after either side's wallet was recovered (issue
9, item 5): their running total is kept by the holders' first wallets, so the merchant's new
wallet refunds what its lost wallet was paid, and the payer's new wallet is refunded what its lost
wallet paid."""

import pytest

ZERO_ID = bytes(32)
RETIRED = "CityTokenAccountRetired(address)"


@pytest.fixture
def paid_plainly(city, token, resident, merchant):
    """The resident paid the merchant 10,000 with a plain transfer."""
    token.transfer(merchant, 10_000, {"from": resident})


def test_the_merchant_s_new_wallet_may_refund_a_plain_payment_its_lost_wallet_received(
    recover_wallet, token, resident, merchant, replacement, paid_plainly
):
    recover_wallet(merchant, replacement)
    assert token.refundableAmount(resident, replacement, ZERO_ID) == 10_000


def test_the_merchant_s_new_wallet_refunds_a_plain_payment_its_lost_wallet_received(
    recover_wallet, token, resident, merchant, replacement, paid_plainly, hex32
):
    recover_wallet(merchant, replacement)
    tx = token.refund(resident, ZERO_ID, 10_000, {"from": replacement})
    assert tx.events["Refunded"].values() == [
        replacement.address,
        resident.address,
        hex32(ZERO_ID),
        10_000,
    ]
    assert token.balanceOf(resident) == 110_000


def test_the_merchant_s_lost_wallet_no_longer_refunds(
    recover_wallet, token, resident, merchant, replacement, paid_plainly, expect_revert
):
    recover_wallet(merchant, replacement)
    with expect_revert(RETIRED, merchant):
        token.refund(resident, ZERO_ID, 10_000, {"from": merchant})


def test_a_plain_payment_is_refunded_to_the_payer_s_new_wallet(
    recover_wallet, token, resident, merchant, replacement, paid_plainly
):
    recover_wallet(resident, replacement)
    tx = token.refund(resident, ZERO_ID, 10_000, {"from": merchant})
    assert tx.events["Transfer"].values() == [merchant.address, replacement.address, 10_000]
    assert token.balanceOf(replacement) == 110_000


def test_the_payer_s_new_wallet_names_the_same_plain_payments(
    recover_wallet, token, resident, merchant, replacement, paid_plainly
):
    recover_wallet(resident, replacement)
    assert token.refundableAmount(replacement, merchant, ZERO_ID) == 10_000
    token.refund(replacement, ZERO_ID, 10_000, {"from": merchant})
    assert token.refundableAmount(resident, merchant, ZERO_ID) == 0


def test_plain_payments_of_the_lost_and_the_new_wallet_add_up(
    recover_wallet, token, resident, merchant, replacement, paid_plainly
):
    recover_wallet(resident, replacement)
    token.transfer(merchant, 6_000, {"from": replacement})
    token.refund(replacement, ZERO_ID, 16_000, {"from": merchant})
    assert token.balanceOf(replacement) == 110_000


def test_a_plain_payment_made_with_transfer_from_is_refundable_after_the_merchant_s_recovery(
    recover_wallet, city, token, resident, merchant, relayer, replacement
):
    token.approve(relayer, 4_000, {"from": resident})
    token.transferFrom(resident, merchant, 4_000, {"from": relayer})
    recover_wallet(merchant, replacement)
    token.refund(resident, ZERO_ID, 4_000, {"from": replacement})
    assert token.balanceOf(resident) == 110_000


def test_plain_payments_stay_bounded_per_payer_after_a_recovery(
    recover_wallet, token, resident, resident2, merchant, replacement, paid_plainly
):
    token.transfer(merchant, 3_000, {"from": resident2})
    recover_wallet(merchant, replacement)
    assert token.refundableAmount(resident, replacement, ZERO_ID) == 10_000
    assert token.refundableAmount(resident2, replacement, ZERO_ID) == 3_000
