"""Settling a redemption (issue 9, item 5): one bank transfer settles one redemption
(CityTreasuryBankReferenceUsed), and a frozen account's, or one held for a pending recovery, is
not settled meanwhile (CityTreasuryAccountLocked)."""

import pytest
from brownie import accounts
from eth_utils import keccak

from scripts.city_suite import return_of, settlement

PENDING, SETTLED = 1, 2
REFERENCE = keccak(text="bank-transfer:NH-20240601-0001")
OTHER_REFERENCE = keccak(text="bank-transfer:NH-20240601-0002")
FAILURE = keccak(text="bank-failure:account-closed")
PAYOUT_ACCOUNT = keccak(text="bank-account:resident-1")


@pytest.fixture
def two_cash_outs(treasury, paid_merchant):
    """Two pending cash-outs of the merchant: redemptions 0 and 1."""
    treasury.cashOut(10_000, {"from": paid_merchant})
    treasury.cashOut(20_000, {"from": paid_merchant})


@pytest.fixture(scope="module")
def replacement():
    return accounts.add(keccak(text="city-token-test-wallet:settlement-replacement"))


# --- One bank transfer, one redemption --------------------------------------------------------


def test_settle_marks_the_bank_reference_used(treasury, settler, two_cash_outs):
    assert treasury.bankReferenceUsed(REFERENCE) is False
    treasury.settle(*settlement(treasury, 0, REFERENCE), {"from": settler})
    assert treasury.bankReferenceUsed(REFERENCE) is True


def test_settle_refuses_a_bank_reference_another_redemption_used(
    treasury, settler, two_cash_outs, reverts_with
):
    treasury.settle(*settlement(treasury, 0, REFERENCE), {"from": settler})
    with reverts_with("CityTreasuryBankReferenceUsed", REFERENCE):
        treasury.settle(*settlement(treasury, 1, REFERENCE), {"from": settler})
    assert treasury.redemption(1)["status"] == PENDING


def test_a_redemption_refused_a_used_reference_settles_with_its_own(
    treasury, settler, two_cash_outs, reverts_with
):
    treasury.settle(*settlement(treasury, 0, REFERENCE), {"from": settler})
    with reverts_with("CityTreasuryBankReferenceUsed", REFERENCE):
        treasury.settle(*settlement(treasury, 1, REFERENCE), {"from": settler})
    tx = treasury.settle(*settlement(treasury, 1, OTHER_REFERENCE), {"from": settler})
    assert tx.events["RedemptionSettled"]["payout"] == 20_000


def test_a_bank_reference_of_a_cash_out_cannot_settle_a_resident_refund(
    treasury, token, settler, paid_merchant, resident, reverts_with
):
    treasury.cashOut(10_000, {"from": paid_merchant})
    token.transfer(paid_merchant, 6_000, {"from": resident})
    treasury.requestResidentRefund(PAYOUT_ACCOUNT, {"from": resident})
    treasury.settle(*settlement(treasury, 0, REFERENCE), {"from": settler})
    with reverts_with("CityTreasuryBankReferenceUsed", REFERENCE):
        treasury.settle(*settlement(treasury, 1, REFERENCE), {"from": settler})


def test_a_return_reason_is_not_a_bank_transfer(treasury, settler, two_cash_outs):
    """A returned redemption names why the bank refused it, not a transfer that paid."""
    treasury.returnRedemption(*return_of(treasury, 0, FAILURE), {"from": settler})
    assert treasury.bankReferenceUsed(FAILURE) is False


# --- Not while the account is frozen or held --------------------------------------------------


def test_settle_refuses_a_frozen_merchant_s_redemption(
    treasury, token, compliance, settler, paid_merchant, reverts_with
):
    treasury.cashOut(10_000, {"from": paid_merchant})
    token.freeze(paid_merchant, {"from": compliance})
    with reverts_with("CityTreasuryAccountLocked", paid_merchant):
        treasury.settle(*settlement(treasury, 0, REFERENCE), {"from": settler})
    assert treasury.redemption(0)["status"] == PENDING


def test_a_refused_settlement_leaves_the_bank_reference_unused(
    treasury, token, compliance, settler, paid_merchant, reverts_with
):
    treasury.cashOut(10_000, {"from": paid_merchant})
    token.freeze(paid_merchant, {"from": compliance})
    with reverts_with("CityTreasuryAccountLocked", paid_merchant):
        treasury.settle(*settlement(treasury, 0, REFERENCE), {"from": settler})
    assert treasury.bankReferenceUsed(REFERENCE) is False


def test_a_frozen_merchant_s_redemption_settles_once_unfrozen(
    treasury, token, compliance, settler, paid_merchant, reverts_with
):
    treasury.cashOut(10_000, {"from": paid_merchant})
    token.freeze(paid_merchant, {"from": compliance})
    with reverts_with("CityTreasuryAccountLocked", paid_merchant):
        treasury.settle(*settlement(treasury, 0, REFERENCE), {"from": settler})
    token.unfreeze(paid_merchant, {"from": compliance})
    treasury.settle(*settlement(treasury, 0, REFERENCE), {"from": settler})
    assert treasury.redemption(0)["status"] == SETTLED


def test_settle_refuses_a_frozen_resident_s_refund(
    treasury, token, compliance, settler, paid_merchant, resident, reverts_with
):
    token.transfer(paid_merchant, 6_000, {"from": resident})
    treasury.requestResidentRefund(PAYOUT_ACCOUNT, {"from": resident})
    token.freeze(resident, {"from": compliance})
    with reverts_with("CityTreasuryAccountLocked", resident):
        treasury.settle(*settlement(treasury, 0, REFERENCE), {"from": settler})


def test_a_frozen_account_s_redemption_is_not_returned_either(
    treasury, token, compliance, settler, paid_merchant, reverts_with
):
    """Nothing moves in or out of a frozen account: the return waits for the unfreeze too."""
    treasury.cashOut(10_000, {"from": paid_merchant})
    token.freeze(paid_merchant, {"from": compliance})
    with reverts_with("CityTokenAccountFrozen", paid_merchant):
        treasury.returnRedemption(*return_of(treasury, 0, FAILURE), {"from": settler})


def test_settle_refuses_the_redemption_of_an_account_held_for_a_recovery(
    treasury, registry, compliance, settler, paid_merchant, replacement, reverts_with
):
    treasury.cashOut(10_000, {"from": paid_merchant})
    registry.proposeRecovery(paid_merchant, replacement, {"from": compliance})
    with reverts_with("CityTreasuryAccountLocked", paid_merchant):
        treasury.settle(*settlement(treasury, 0, REFERENCE), {"from": settler})


def test_a_redemption_settles_once_the_recovery_is_executed(
    recover_wallet, treasury, settler, paid_merchant, replacement
):
    treasury.cashOut(10_000, {"from": paid_merchant})
    recover_wallet(paid_merchant, replacement)
    tx = treasury.settle(*settlement(treasury, 0, REFERENCE), {"from": settler})
    assert tx.events["RedemptionSettled"].values()[:3] == [0, paid_merchant.address, 10_000]


def test_settle_refuses_when_the_replacement_of_a_recovered_wallet_is_frozen(
    recover_wallet, treasury, token, compliance, settler, paid_merchant, replacement, reverts_with
):
    treasury.cashOut(10_000, {"from": paid_merchant})
    recover_wallet(paid_merchant, replacement)
    token.freeze(replacement, {"from": compliance})
    with reverts_with("CityTreasuryAccountLocked", replacement):
        treasury.settle(*settlement(treasury, 0, REFERENCE), {"from": settler})
