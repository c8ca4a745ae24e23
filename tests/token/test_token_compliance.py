"""Compliance on the token: pause the city, freeze a wallet, recover a lost wallet to a new one."""

from brownie import chain
from citypay.authorization import sign_authorization

RESIDENT, MERCHANT = 1, 2
FROZEN = "CityTokenAccountFrozen(address)"


# --- Pause --------------------------------------------------------------------------------------


def test_pause_emits_paused_by_the_pauser(token, pauser):
    tx = token.pause({"from": pauser})
    assert token.paused() is True
    assert tx.events["Paused"].values() == [pauser.address]


def test_unpause_emits_unpaused_by_the_pauser(token, pauser):
    token.pause({"from": pauser})
    tx = token.unpause({"from": pauser})
    assert token.paused() is False
    assert tx.events["Unpaused"].values() == [pauser.address]


def test_unpause_lets_payments_through_again(city, token, pauser, resident, merchant):
    token.pause({"from": pauser})
    token.unpause({"from": pauser})
    token.transfer(merchant, 1_000, {"from": resident})
    assert token.balanceOf(merchant) == 1_000


def test_charge_reverts_when_paused(city, token, pauser, resident, charge, expect_revert):
    token.pause({"from": pauser})
    with expect_revert("EnforcedPause()"):
        charge(resident, 10_000)
    assert token.balanceOf(resident) == 110_000


# --- Freeze -------------------------------------------------------------------------------------


def test_freeze_marks_the_wallet_and_emits_account_frozen(city, token, compliance, resident):
    tx = token.freeze(resident, {"from": compliance})
    assert token.isFrozen(resident) is True
    assert tx.events["AccountFrozen"].values() == [resident.address, compliance.address]


def test_freeze_keeps_the_balance_and_the_registration(city, token, compliance, resident):
    token.freeze(resident, {"from": compliance})
    assert token.balanceOf(resident) == 110_000
    assert token.accountKind(resident) == RESIDENT
    assert token.isActive(resident) is True


def test_unfreeze_clears_the_flag_and_emits_account_unfrozen(city, token, compliance, resident):
    token.freeze(resident, {"from": compliance})
    tx = token.unfreeze(resident, {"from": compliance})
    assert token.isFrozen(resident) is False
    assert tx.events["AccountUnfrozen"].values() == [resident.address, compliance.address]


def test_unfrozen_resident_pays_again(city, token, compliance, resident, merchant):
    token.freeze(resident, {"from": compliance})
    token.unfreeze(resident, {"from": compliance})
    token.transfer(merchant, 1_000, {"from": resident})
    assert token.balanceOf(merchant) == 1_000


def test_frozen_resident_cannot_be_charged(
    city, token, compliance, resident, charge, expect_revert
):
    token.freeze(resident, {"from": compliance})
    with expect_revert(FROZEN, resident):
        charge(resident, 10_000)
    assert token.balanceOf(resident) == 110_000


def test_freeze_of_an_unregistered_wallet_survives_its_registration(
    city, token, compliance, stranger, register_resident
):
    token.freeze(stranger, {"from": compliance})
    register_resident(stranger)
    assert token.isFrozen(stranger) is True
    assert token.accountKind(stranger) == RESIDENT


def test_reactivation_does_not_lift_a_freeze(
    city, token, registry, registrar, compliance, resident, merchant, expect_revert
):
    token.freeze(resident, {"from": compliance})
    registry.suspend(resident, {"from": registrar})
    registry.activate(resident, {"from": registrar})
    assert token.isFrozen(resident) is True
    with expect_revert(FROZEN, resident):
        token.transfer(merchant, 1_000, {"from": resident})


def test_registry_status_change_emits_account_status_set(
    city, token, registry, registrar, merchant
):
    tx = registry.suspend(merchant, {"from": registrar})
    assert tx.events["AccountStatusSet"].values() == [merchant.address, MERCHANT, False]
    assert token.isActive(merchant) is False


# --- Recovery of a lost wallet ------------------------------------------------------------------


def test_recover_wallet_moves_the_balance_to_the_replacement(
    recover_wallet, city, token, registry, compliance, resident, replacement
):
    recover_wallet(resident, replacement)
    assert token.balanceOf(replacement) == 110_000
    assert token.balanceOf(resident) == 0


def test_recover_wallet_emits_account_recovered_and_transfer(
    recover_wallet, city, token, registry, compliance, resident, replacement
):
    tx = recover_wallet(resident, replacement)
    assert tx.events["AccountRecovered"].values() == [
        resident.address,
        replacement.address,
        110_000,
    ]
    assert tx.events["Transfer"].values() == [resident.address, replacement.address, 110_000]


def test_recover_wallet_keeps_total_supply(
    recover_wallet, city, token, registry, compliance, resident, replacement
):
    supply = token.totalSupply()
    recover_wallet(resident, replacement)
    assert token.totalSupply() == supply


def test_recover_wallet_moves_the_status_to_the_replacement(
    recover_wallet, city, token, registry, compliance, resident, replacement
):
    recover_wallet(resident, replacement)
    assert token.accountKind(replacement) == RESIDENT
    assert token.isActive(replacement) is True
    assert token.accountKind(resident) == 0
    assert token.isActive(resident) is False


def test_recover_wallet_carries_the_frozen_bit_over(
    recover_wallet,
    city,
    token,
    registry,
    compliance,
    resident,
    merchant,
    replacement,
    expect_revert,
):
    token.freeze(resident, {"from": compliance})
    recover_wallet(resident, replacement)
    assert token.isFrozen(replacement) is True
    with expect_revert(FROZEN, replacement):
        token.transfer(merchant, 1_000, {"from": replacement})


def test_replacement_wallet_pays_a_merchant_after_recovery(
    recover_wallet, city, token, registry, compliance, resident, merchant, replacement
):
    recover_wallet(resident, replacement)
    token.transfer(merchant, 1_000, {"from": replacement})
    assert token.balanceOf(replacement) == 109_000
    assert token.balanceOf(merchant) == 1_000


def test_lost_wallet_cannot_pay_after_recovery(
    recover_wallet,
    city,
    token,
    registry,
    compliance,
    resident,
    merchant,
    replacement,
    expect_revert,
):
    recover_wallet(resident, replacement)
    with expect_revert("CityTokenAccountRetired(address)", resident):
        token.transfer(merchant, 1, {"from": resident})


def test_authorization_signed_by_the_lost_wallet_is_refused_after_recovery(
    recover_wallet,
    city,
    token,
    registry,
    compliance,
    resident,
    merchant,
    replacement,
    relayer,
    sign,
    expect_revert,
):
    auth = sign(resident, merchant, 1_000, valid_before=2**40)
    recover_wallet(resident, replacement)
    with expect_revert("CityTokenAccountRetired(address)", resident):
        token.transferWithAuthorization(*auth.as_args(), {"from": relayer})
    assert token.balanceOf(replacement) == 110_000


def test_replacement_wallet_signs_authorizations_after_recovery(
    recover_wallet,
    city,
    token,
    registry,
    compliance,
    resident,
    merchant,
    replacement,
    relayer,
    domain,
):
    recover_wallet(resident, replacement)
    auth = sign_authorization(
        replacement.private_key, domain, to=merchant.address, value=1_000, valid_before=2**40
    )
    token.transferWithAuthorization(*auth.as_args(), {"from": relayer})
    assert token.balanceOf(merchant) == 1_000


def test_recover_merchant_wallet_moves_balance_and_merchant_status(
    recover_wallet, city, token, registry, compliance, resident, merchant, replacement
):
    token.transfer(merchant, 5_000, {"from": resident})
    recover_wallet(merchant, replacement)
    assert token.balanceOf(replacement) == 5_000
    assert token.accountKind(replacement) == MERCHANT
    assert token.isActive(replacement) is True
    token.transfer(replacement, 1_000, {"from": resident})
    assert token.balanceOf(replacement) == 6_000


def test_recover_wallet_refuses_a_replacement_already_flagged(
    city, token, registry, compliance, registrar, resident, replacement, expect_revert
):
    token.freeze(replacement, {"from": compliance})
    registry.proposeRecovery(resident, replacement, {"from": compliance})
    chain.sleep(registry.recoveryDelay() + 1)
    with expect_revert("CityTokenReplacementInUse(address)", replacement):
        registry.executeRecovery(resident, {"from": registrar})
    assert token.balanceOf(resident) == 110_000


def test_recover_wallet_reverts_when_paused(
    city, token, registry, compliance, registrar, pauser, resident, replacement, expect_revert
):
    registry.proposeRecovery(resident, replacement, {"from": compliance})
    chain.sleep(registry.recoveryDelay() + 1)
    token.pause({"from": pauser})
    with expect_revert("EnforcedPause()"):
        registry.executeRecovery(resident, {"from": registrar})
    assert token.balanceOf(resident) == 110_000


def test_refund_of_a_payment_made_before_recovery_reaches_the_replacement_wallet(
    recover_wallet,
    city,
    token,
    registry,
    compliance,
    resident,
    merchant,
    replacement,
    relayer,
    sign,
    balances,
):
    auth = sign(resident, merchant, 8_000)
    token.transferWithAuthorization(*auth.as_args(), {"from": relayer})
    recover_wallet(resident, replacement)
    tx = token.refund(resident, auth.nonce, 3_000, {"from": merchant})
    assert token.currentWallet(resident) == replacement.address
    assert tx.events["Transfer"].values() == [merchant.address, replacement.address, 3_000]
    assert balances(resident, replacement) == [0, 110_000 - 8_000 + 3_000]


def test_recovered_merchant_refunds_a_payment_its_lost_wallet_received(
    recover_wallet,
    city,
    token,
    registry,
    compliance,
    resident,
    merchant,
    replacement,
    relayer,
    sign,
):
    auth = sign(resident, merchant, 8_000)
    token.transferWithAuthorization(*auth.as_args(), {"from": relayer})
    recover_wallet(merchant, replacement)
    assert token.refundableAmount(resident, replacement, auth.nonce) == 8_000
    assert token.refundableAmount(resident, merchant, auth.nonce) == 0
    token.refund(resident, auth.nonce, 8_000, {"from": replacement})
    assert token.balanceOf(resident) == 110_000
    assert token.refundableAmount(resident, replacement, auth.nonce) == 0
