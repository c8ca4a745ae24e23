"""Cash-out (환전): a merchant burns part of its balance for a fee-free bank transfer to its
registered payout account; a settler records the transfer or returns the tokens, once."""

import pytest
from brownie import ZERO_ADDRESS, accounts
from eth_utils import keccak

from scripts.city_suite import return_of, settlement

CASH_OUT, RESIDENT_REFUND = 0, 1
NONE, PENDING, SETTLED, RETURNED = 0, 1, 2, 3
BANK_REFERENCE = keccak(text="bank-transfer:KB-20240501-0001")
FAILURE_REASON = keccak(text="bank-failure:account-closed")


@pytest.fixture
def cash_out(treasury, paid_merchant):
    """The paid merchant cashes out 25,000 of its 60,000."""
    return treasury.cashOut(25_000, {"from": paid_merchant})


def test_cash_out_burns_the_amount_from_the_merchant(treasury, token, paid_merchant):
    supply = token.totalSupply()
    treasury.cashOut(25_000, {"from": paid_merchant})
    assert token.balanceOf(paid_merchant) == 35_000
    assert token.totalSupply() == supply - 25_000


def test_cash_out_records_a_pending_redemption_to_the_registered_payout_account(
    treasury, paid_merchant, cash_out, helpers, as_hex
):
    assert treasury.redemption(0) == (
        paid_merchant.address,
        CASH_OUT,
        PENDING,
        cash_out.timestamp,
        0,
        25_000,
        0,
        25_000,
        0,
        as_hex(helpers.account_hash(paid_merchant.address)),
        as_hex(bytes(32)),
    )


def test_cash_out_emits_redemption_requested(paid_merchant, cash_out, helpers, as_hex):
    assert cash_out.events["RedemptionRequested"].values() == [
        0,
        paid_merchant.address,
        CASH_OUT,
        25_000,
        25_000,
        as_hex(helpers.account_hash(paid_merchant.address)),
    ]


def test_cash_out_returns_consecutive_redemption_ids(treasury, paid_merchant):
    first = treasury.cashOut(1_000, {"from": paid_merchant})
    second = treasury.cashOut(2_000, {"from": paid_merchant})
    assert (first.return_value, second.return_value) == (0, 1)
    assert treasury.redemptionCount() == 2


def test_cash_out_pays_to_the_payout_account_the_merchant_last_signed(
    treasury, registry, paid_merchant, registrar, payout_signature, as_hex
):
    new_account = keccak(text="bank-account:merchant-1-new")
    deadline, signature = payout_signature(paid_merchant, new_account, nonce=1)
    registry.changePayoutAccount(
        paid_merchant, new_account, deadline, signature, {"from": registrar}
    )
    tx = treasury.cashOut(1_000, {"from": paid_merchant})
    assert tx.events["RedemptionRequested"]["payoutAccountHash"] == as_hex(new_account)


def test_cash_out_of_the_whole_balance_is_allowed(treasury, token, paid_merchant):
    treasury.cashOut(60_000, {"from": paid_merchant})
    assert token.balanceOf(paid_merchant) == 0


def test_cash_out_adds_to_the_burned_total(treasury, paid_merchant):
    issued, incentive, burned, returned, settled, clawed_back = treasury.totals()
    treasury.cashOut(25_000, {"from": paid_merchant})
    assert treasury.totals() == (issued, incentive, burned + 25_000, returned, settled, clawed_back)


def test_settle_closes_the_redemption_with_the_bank_reference(
    treasury, paid_merchant, cash_out, settler, helpers, as_hex
):
    tx = treasury.settle(*settlement(treasury, 0, BANK_REFERENCE), {"from": settler})
    assert treasury.redemption(0) == (
        paid_merchant.address,
        CASH_OUT,
        SETTLED,
        cash_out.timestamp,
        tx.timestamp,
        25_000,
        0,
        25_000,
        0,
        as_hex(helpers.account_hash(paid_merchant.address)),
        as_hex(BANK_REFERENCE),
    )


def test_settle_emits_redemption_settled_with_the_payout(
    treasury, paid_merchant, cash_out, settler, as_hex
):
    tx = treasury.settle(*settlement(treasury, 0, BANK_REFERENCE), {"from": settler})
    assert tx.events["RedemptionSettled"].values() == [
        0,
        paid_merchant.address,
        25_000,
        as_hex(BANK_REFERENCE),
    ]


def test_settle_adds_the_payout_to_the_settled_total(treasury, cash_out, settler):
    issued, incentive, burned, returned, settled, clawed_back = treasury.totals()
    treasury.settle(*settlement(treasury, 0, BANK_REFERENCE), {"from": settler})
    assert treasury.totals() == (issued, incentive, burned, returned, settled + 25_000, clawed_back)


def test_settle_leaves_the_merchant_s_balance_alone(
    treasury, token, paid_merchant, cash_out, settler
):
    treasury.settle(*settlement(treasury, 0, BANK_REFERENCE), {"from": settler})
    assert token.balanceOf(paid_merchant) == 35_000


def test_settle_reverts_with_an_empty_bank_reference(treasury, cash_out, settler, reverts_with):
    with reverts_with("CityTreasuryEmptyReference"):
        treasury.settle(*settlement(treasury, 0, bytes(32)), {"from": settler})


def test_return_redemption_restores_the_burned_tokens(
    treasury, token, paid_merchant, cash_out, settler
):
    supply = token.totalSupply()
    treasury.returnRedemption(*return_of(treasury, 0, FAILURE_REASON), {"from": settler})
    assert token.balanceOf(paid_merchant) == 60_000
    assert token.totalSupply() == supply + 25_000


def test_return_redemption_closes_the_redemption_with_the_reason(
    treasury, paid_merchant, cash_out, settler, helpers, as_hex
):
    tx = treasury.returnRedemption(*return_of(treasury, 0, FAILURE_REASON), {"from": settler})
    assert treasury.redemption(0) == (
        paid_merchant.address,
        CASH_OUT,
        RETURNED,
        cash_out.timestamp,
        tx.timestamp,
        25_000,
        0,
        25_000,
        0,
        as_hex(helpers.account_hash(paid_merchant.address)),
        as_hex(FAILURE_REASON),
    )


def test_return_redemption_emits_redemption_returned(
    treasury, paid_merchant, cash_out, settler, as_hex
):
    tx = treasury.returnRedemption(*return_of(treasury, 0, FAILURE_REASON), {"from": settler})
    assert tx.events["RedemptionReturned"].values() == [
        0,
        paid_merchant.address,
        25_000,
        as_hex(FAILURE_REASON),
    ]


def test_supply_equals_issued_less_burned_plus_returned_after_settle_and_return(
    treasury, token, paid_merchant, settler
):
    treasury.cashOut(25_000, {"from": paid_merchant})
    treasury.cashOut(5_000, {"from": paid_merchant})
    treasury.settle(*settlement(treasury, 0, BANK_REFERENCE), {"from": settler})
    treasury.returnRedemption(*return_of(treasury, 1, FAILURE_REASON), {"from": settler})
    issued, _, burned, returned, settled, _ = treasury.totals()
    assert (burned, returned, settled) == (30_000, 5_000, 25_000)
    assert token.totalSupply() == issued - burned + returned


@pytest.mark.parametrize(
    ("first", "second", "status"),
    [
        ("settle", "settle", SETTLED),
        ("settle", "returnRedemption", SETTLED),
        ("returnRedemption", "settle", RETURNED),
        ("returnRedemption", "returnRedemption", RETURNED),
    ],
)
def test_a_redemption_ends_once(treasury, cash_out, settler, reverts_with, first, second, status):
    closing = {"settle": settlement, "returnRedemption": return_of}
    getattr(treasury, first)(*closing[first](treasury, 0, BANK_REFERENCE), {"from": settler})
    with reverts_with("CityTreasuryRedemptionNotPending", 0, status):
        getattr(treasury, second)(*closing[second](treasury, 0, BANK_REFERENCE), {"from": settler})


@pytest.mark.parametrize("close", ["settle", "returnRedemption"])
def test_closing_an_unknown_redemption_reverts(treasury, cash_out, settler, reverts_with, close):
    with reverts_with("CityTreasuryRedemptionNotPending", 1, NONE):
        getattr(treasury, close)(1, ZERO_ADDRESS, 0, BANK_REFERENCE, {"from": settler})


def test_cash_out_reverts_for_a_resident(treasury, city, resident, reverts_with):
    with reverts_with("CityTreasuryNotMerchant", resident):
        treasury.cashOut(1_000, {"from": resident})


def test_cash_out_reverts_for_an_unregistered_wallet(treasury, city, stranger, reverts_with):
    with reverts_with("CityTreasuryNotMerchant", stranger):
        treasury.cashOut(1_000, {"from": stranger})


def test_cash_out_reverts_when_the_merchant_is_suspended(
    treasury, registry, paid_merchant, registrar, reverts_with
):
    registry.suspend(paid_merchant, {"from": registrar})
    with reverts_with("CityTokenMerchantNotActive", paid_merchant):
        treasury.cashOut(1_000, {"from": paid_merchant})


def test_cash_out_reverts_when_the_merchant_is_frozen(
    treasury, token, paid_merchant, compliance, reverts_with
):
    token.freeze(paid_merchant, {"from": compliance})
    with reverts_with("CityTokenAccountFrozen", paid_merchant):
        treasury.cashOut(1_000, {"from": paid_merchant})


def test_cash_out_reverts_for_more_than_the_balance(treasury, paid_merchant, reverts_with):
    with reverts_with("ERC20InsufficientBalance", paid_merchant, 60_000, 60_001):
        treasury.cashOut(60_001, {"from": paid_merchant})


def test_cash_out_reverts_for_a_zero_amount(treasury, paid_merchant, reverts_with):
    with reverts_with("CityTreasuryZeroAmount"):
        treasury.cashOut(0, {"from": paid_merchant})


def test_cash_out_reverts_while_the_city_is_paused(
    treasury, token, paid_merchant, pauser, reverts_with
):
    token.pause({"from": pauser})
    with reverts_with("EnforcedPause"):
        treasury.cashOut(1_000, {"from": paid_merchant})


def test_return_after_a_wallet_recovery_restores_the_tokens_to_the_replacement(
    recover_wallet, treasury, token, registry, paid_merchant, cash_out, compliance, settler
):
    """Every burned won ends settled or returned (DESIGN.md): a merchant that lost its wallet
    while a cash-out was pending must still get the tokens back when the bank transfer fails."""
    replacement = accounts.add(keccak(text="city-token-test-wallet:merchant-1-replacement"))
    recover_wallet(paid_merchant, replacement)
    treasury.returnRedemption(*return_of(treasury, 0, FAILURE_REASON), {"from": settler})
    assert token.balanceOf(replacement) == 60_000
