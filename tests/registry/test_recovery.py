"""ERC-3643-style recovery: a lost wallet's registration, balance and charge history move to a
replacement wallet."""

import pytest
from brownie import ZERO_ADDRESS

NONE, RESIDENT, MERCHANT = 0, 1, 2
ACTIVE, SUSPENDED, REVOKED = 1, 2, 3
MONTHLY_LIMIT = 500_000


@pytest.fixture(scope="module")
def replacement(new_wallet):
    return new_wallet("replacement")


@pytest.fixture
def paid_merchant(city, token, resident, merchant):
    token.transfer(merchant, 30_000, {"from": resident})
    return merchant


# --- A merchant's wallet ----------------------------------------------------------------------


def test_recover_merchant_moves_the_record_to_the_replacement(
    recover_wallet, registry, compliance, paid_merchant, replacement, as_hex
):
    record = registry.merchantOf(paid_merchant)
    recover_wallet(paid_merchant, replacement)
    assert registry.merchantOf(replacement) == record
    assert registry.merchantOf(paid_merchant) == (
        as_hex(bytes(32)),
        as_hex(bytes(32)),
        0,
        0,
        0,
        NONE,
    )


def test_recover_merchant_moves_the_business_id_to_the_replacement(
    recover_wallet, registry, compliance, paid_merchant, replacement, helpers
):
    recover_wallet(paid_merchant, replacement)
    assert registry.walletOfBusiness(helpers.business_hash(paid_merchant.address)) == (
        replacement.address
    )


def test_recover_merchant_moves_the_balance_and_the_token_status(
    recover_wallet, registry, token, compliance, paid_merchant, replacement
):
    recover_wallet(paid_merchant, replacement)
    assert token.balanceOf(replacement) == 30_000
    assert token.balanceOf(paid_merchant) == 0
    assert (token.accountKind(replacement), token.isActive(replacement)) == (MERCHANT, True)
    assert token.accountKind(paid_merchant) == NONE


def test_recover_merchant_emits_wallet_recovered_and_account_recovered(
    recover_wallet, registry, compliance, paid_merchant, replacement
):
    tx = recover_wallet(paid_merchant, replacement)
    assert tx.events["WalletRecovered"].values() == [paid_merchant.address, replacement.address]
    assert tx.events["AccountRecovered"].values() == [
        paid_merchant.address,
        replacement.address,
        30_000,
    ]


def test_recovered_merchant_cashes_out_to_its_registered_payout_account(
    recover_wallet, registry, treasury, compliance, paid_merchant, replacement, helpers, as_hex
):
    recover_wallet(paid_merchant, replacement)
    tx = treasury.cashOut(30_000, {"from": replacement})
    assert tx.events["RedemptionRequested"]["payoutAccountHash"] == as_hex(
        helpers.account_hash(paid_merchant.address)
    )


def test_recover_merchant_does_not_move_a_resident_tally(
    recover_wallet, registry, compliance, paid_merchant, replacement
):
    tx = recover_wallet(paid_merchant, replacement)
    assert "ResidentTallyMoved" not in tx.events


def test_lost_wallet_cannot_pay_or_be_paid_after_recovery(
    recover_wallet, registry, token, compliance, paid_merchant, resident, replacement, reverts_with
):
    recover_wallet(paid_merchant, replacement)
    with reverts_with("CityTokenAccountRetired", paid_merchant):
        token.transfer(paid_merchant, 1_000, {"from": resident})


# --- A resident's wallet ----------------------------------------------------------------------


def test_recover_resident_moves_the_record_and_the_identity(
    recover_wallet, registry, compliance, city, resident, replacement, helpers, as_hex
):
    record = registry.residentOf(resident)
    recover_wallet(resident, replacement)
    assert registry.residentOf(replacement) == record
    assert registry.residentOf(resident) == (as_hex(bytes(32)), 0, NONE)
    assert registry.walletOfIdentity(helpers.identity_hash(resident.address)) == (
        replacement.address
    )


def test_recover_resident_moves_the_balance(
    recover_wallet, registry, token, compliance, city, resident, replacement
):
    recover_wallet(resident, replacement)
    assert (token.balanceOf(replacement), token.balanceOf(resident)) == (110_000, 0)
    assert (token.accountKind(replacement), token.isActive(replacement)) == (RESIDENT, True)


def test_recover_resident_moves_the_treasury_tally(
    recover_wallet, registry, treasury, compliance, city, resident, replacement, kst
):
    tally = treasury.residentTally(resident)
    recover_wallet(resident, replacement)
    assert treasury.residentTally(replacement) == tally
    assert treasury.residentTally(resident) == (kst.month_index(kst.now()), 0, 0, 0, 0)


def test_recover_resident_emits_resident_tally_moved(
    recover_wallet, registry, compliance, city, resident, replacement
):
    tx = recover_wallet(resident, replacement)
    assert tx.events["ResidentTallyMoved"].values() == [resident.address, replacement.address]
    assert tx.events["WalletRecovered"].values() == [resident.address, replacement.address]


def test_monthly_purchase_limit_carries_over_to_the_replacement(
    recover_wallet,
    registry,
    treasury,
    compliance,
    issuer,
    city,
    resident,
    replacement,
    helpers,
    reverts_with,
):
    purchased = treasury.residentTally(resident)["purchasedThisMonth"]
    recover_wallet(resident, replacement)
    requested = MONTHLY_LIMIT - purchased + 1
    with reverts_with(
        "CityTreasuryMonthlyLimitExceeded", replacement, purchased, requested, MONTHLY_LIMIT
    ):
        treasury.issue(replacement, requested, helpers.deposit_reference(), {"from": issuer})


def test_recover_suspended_resident_keeps_it_suspended(
    recover_wallet, registry, token, registrar, compliance, city, resident, replacement
):
    registry.suspend(resident, {"from": registrar})
    recover_wallet(resident, replacement)
    assert registry.residentOf(replacement)["status"] == SUSPENDED
    assert not token.isActive(replacement)


def test_recovery_does_not_change_the_counts(
    recover_wallet, registry, compliance, city, resident, merchant, replacement, new_wallet
):
    recover_wallet(resident, replacement)
    recover_wallet(merchant, new_wallet("merchant replacement"))
    assert (registry.residentCount(), registry.merchantCount()) == (2, 2)


# --- Refusals ---------------------------------------------------------------------------------


@pytest.mark.parametrize("target", ["resident2", "merchant2"])
def test_recover_to_a_registered_wallet_reverts(
    registry, compliance, city, resident, request, reverts_with, target
):
    registered = request.getfixturevalue(target)
    with reverts_with("CityRegistryAlreadyRegistered", registered):
        registry.proposeRecovery(resident, registered, {"from": compliance})


def test_recover_to_a_revoked_wallet_reverts(
    registry, registrar, compliance, city, resident, resident2, reverts_with
):
    registry.revoke(resident2, False, {"from": registrar})
    with reverts_with("CityRegistryAlreadyRegistered", resident2):
        registry.proposeRecovery(resident, resident2, {"from": compliance})


def test_recover_to_the_zero_address_reverts(registry, compliance, city, resident, reverts_with):
    with reverts_with("CityRegistryZeroAddress"):
        registry.proposeRecovery(resident, ZERO_ADDRESS, {"from": compliance})


def test_recover_an_unregistered_wallet_reverts(
    registry, compliance, city, stranger, replacement, reverts_with
):
    with reverts_with("CityRegistryNotRegistered", stranger):
        registry.proposeRecovery(stranger, replacement, {"from": compliance})


def test_a_revoked_wallet_is_recovered_with_its_status_so_its_money_can_close_out(
    recover_wallet, registry, token, registrar, city, resident, replacement
):
    registry.revoke(resident, False, {"from": registrar})
    recover_wallet(resident, replacement)
    assert registry.residentOf(replacement)["status"] == REVOKED
    assert token.balanceOf(replacement) == 110_000


def test_a_wallet_revoked_for_illegal_exchange_is_not_recovered(
    registry, registrar, compliance, city, resident, replacement, reverts_with
):
    registry.revoke(resident, True, {"from": registrar})
    with reverts_with("CityRegistryRevokedForIllegalExchange", resident):
        registry.proposeRecovery(resident, replacement, {"from": compliance})


def test_a_wallet_recovered_once_cannot_be_recovered_again(
    recover_wallet, registry, compliance, city, resident, replacement, new_wallet, reverts_with
):
    recover_wallet(resident, replacement)
    with reverts_with("CityRegistryNotRegistered", resident):
        registry.proposeRecovery(resident, new_wallet("second replacement"), {"from": compliance})
