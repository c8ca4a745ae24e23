"""Plain ERC-20 movements: transfer and transferFrom are payments, resident -> active merchant."""

from brownie import ZERO_ADDRESS

NOT_ALLOWED = "CityTokenTransferNotAllowed(address,address)"
FROZEN = "CityTokenAccountFrozen(address)"
NOT_REGISTERED = "CityTokenNotRegistered(address)"
MERCHANT_NOT_ACTIVE = "CityTokenMerchantNotActive(address)"
RESIDENT_NOT_ACTIVE = "CityTokenResidentNotActive(address)"
PAUSED = "EnforcedPause()"


def test_token_has_zero_decimals(token):
    assert token.decimals() == 0


def test_token_is_named_after_its_city(token):
    assert token.name() == "Gimpo Pay"
    assert token.symbol() == "GIMPO"


def test_transfer_by_resident_to_active_merchant_pays_the_merchant(city, token, resident, merchant):
    tx = token.transfer(merchant, 7_000, {"from": resident})
    assert token.balanceOf(resident) == 110_000 - 7_000
    assert token.balanceOf(merchant) == 7_000
    assert tx.events["Transfer"].values() == [resident.address, merchant.address, 7_000]


def test_transfer_to_merchant_is_refundable_as_a_plain_payment(
    city, token, resident, merchant, merchant2
):
    token.transfer(merchant, 3_000, {"from": resident})
    token.transfer(merchant, 2_000, {"from": resident})
    assert token.refundableAmount(resident, merchant, bytes(32)) == 5_000
    assert token.refundableAmount(resident, merchant2, bytes(32)) == 0


def test_transfer_keeps_total_supply(city, token, resident, merchant):
    supply = token.totalSupply()
    token.transfer(merchant, 1_000, {"from": resident})
    assert token.totalSupply() == supply == 220_000


def test_transfer_between_residents_reverts(
    city, token, resident, resident2, balances, expect_revert
):
    before = balances(resident, resident2)
    with expect_revert(NOT_ALLOWED, resident, resident2):
        token.transfer(resident2, 1_000, {"from": resident})
    assert balances(resident, resident2) == before


def test_transfer_between_merchants_reverts(
    city, token, resident, merchant, merchant2, balances, expect_revert
):
    token.transfer(merchant, 5_000, {"from": resident})
    before = balances(merchant, merchant2)
    with expect_revert(NOT_ALLOWED, merchant, merchant2):
        token.transfer(merchant2, 1_000, {"from": merchant})
    assert balances(merchant, merchant2) == before


def test_transfer_by_merchant_to_resident_reverts(
    city, token, resident, resident2, merchant, balances, expect_revert
):
    token.transfer(merchant, 5_000, {"from": resident})
    before = balances(merchant, resident2)
    with expect_revert(NOT_ALLOWED, merchant, resident2):
        token.transfer(resident2, 1_000, {"from": merchant})
    assert balances(merchant, resident2) == before


def test_transfer_to_unregistered_wallet_reverts(
    city, token, resident, stranger, balances, expect_revert
):
    before = balances(resident, stranger)
    with expect_revert(NOT_REGISTERED, stranger):
        token.transfer(stranger, 1_000, {"from": resident})
    assert balances(resident, stranger) == before


def test_transfer_by_unregistered_wallet_reverts(
    city, token, stranger, merchant, balances, expect_revert
):
    before = balances(stranger, merchant)
    with expect_revert(NOT_REGISTERED, stranger):
        token.transfer(merchant, 0, {"from": stranger})
    assert balances(stranger, merchant) == before


def test_transfer_to_zero_address_reverts(city, token, resident, balances, expect_revert):
    before = balances(resident)
    with expect_revert("ERC20InvalidReceiver(address)", ZERO_ADDRESS):
        token.transfer(ZERO_ADDRESS, 1_000, {"from": resident})
    assert balances(resident) == before


def test_transfer_to_suspended_merchant_reverts(
    city, token, registry, registrar, resident, merchant, balances, expect_revert
):
    registry.suspend(merchant, {"from": registrar})
    before = balances(resident, merchant)
    with expect_revert(MERCHANT_NOT_ACTIVE, merchant):
        token.transfer(merchant, 1_000, {"from": resident})
    assert balances(resident, merchant) == before


def test_transfer_to_revoked_merchant_reverts(
    city, token, registry, registrar, resident, merchant, balances, expect_revert
):
    registry.revoke(merchant, False, {"from": registrar})
    before = balances(resident, merchant)
    with expect_revert(MERCHANT_NOT_ACTIVE, merchant):
        token.transfer(merchant, 1_000, {"from": resident})
    assert balances(resident, merchant) == before


def test_transfer_to_reactivated_merchant_pays_the_merchant(
    city, token, registry, registrar, resident, merchant
):
    registry.suspend(merchant, {"from": registrar})
    registry.activate(merchant, {"from": registrar})
    token.transfer(merchant, 1_000, {"from": resident})
    assert token.balanceOf(merchant) == 1_000


def test_transfer_by_suspended_resident_reverts(
    city, token, registry, registrar, resident, merchant, balances, expect_revert
):
    registry.suspend(resident, {"from": registrar})
    before = balances(resident, merchant)
    with expect_revert(RESIDENT_NOT_ACTIVE, resident):
        token.transfer(merchant, 1_000, {"from": resident})
    assert balances(resident, merchant) == before


def test_transfer_by_frozen_wallet_reverts(
    city, token, compliance, resident, merchant, balances, expect_revert
):
    token.freeze(resident, {"from": compliance})
    before = balances(resident, merchant)
    with expect_revert(FROZEN, resident):
        token.transfer(merchant, 1_000, {"from": resident})
    assert balances(resident, merchant) == before


def test_transfer_to_frozen_wallet_reverts(
    city, token, compliance, resident, merchant, balances, expect_revert
):
    token.freeze(merchant, {"from": compliance})
    before = balances(resident, merchant)
    with expect_revert(FROZEN, merchant):
        token.transfer(merchant, 1_000, {"from": resident})
    assert balances(resident, merchant) == before


def test_transfer_reverts_when_paused(
    city, token, pauser, resident, merchant, balances, expect_revert
):
    token.pause({"from": pauser})
    before = balances(resident, merchant)
    with expect_revert(PAUSED):
        token.transfer(merchant, 1_000, {"from": resident})
    assert balances(resident, merchant) == before


def test_transfer_over_balance_reverts(city, token, resident, merchant, balances, expect_revert):
    before = balances(resident, merchant)
    with expect_revert(
        "ERC20InsufficientBalance(address,uint256,uint256)", resident, 110_000, 110_001
    ):
        token.transfer(merchant, 110_001, {"from": resident})
    assert balances(resident, merchant) == before


# --- transferFrom: the spender moves the payer's tokens, under the same rules ------------------


def test_spender_transfer_from_with_allowance_pays_the_merchant(
    city, token, resident, merchant, relayer
):
    token.approve(relayer, 10_000, {"from": resident})
    tx = token.transferFrom(resident, merchant, 4_000, {"from": relayer})
    assert token.balanceOf(resident) == 110_000 - 4_000
    assert token.balanceOf(merchant) == 4_000
    assert token.allowance(resident, relayer) == 6_000
    assert tx.events["Transfer"].values() == [resident.address, merchant.address, 4_000]


def test_spender_transfer_from_is_refundable_as_a_plain_payment(
    city, token, resident, merchant, relayer
):
    token.approve(relayer, 10_000, {"from": resident})
    token.transferFrom(resident, merchant, 4_000, {"from": relayer})
    assert token.refundableAmount(resident, merchant, bytes(32)) == 4_000


def test_spender_transfer_from_between_residents_reverts(
    city, token, resident, resident2, relayer, balances, expect_revert
):
    token.approve(relayer, 10_000, {"from": resident})
    before = balances(resident, resident2)
    with expect_revert(NOT_ALLOWED, resident, resident2):
        token.transferFrom(resident, resident2, 1_000, {"from": relayer})
    assert balances(resident, resident2) == before
    assert token.allowance(resident, relayer) == 10_000


def test_spender_transfer_from_merchant_to_resident_reverts(
    city, token, resident, merchant, relayer, balances, expect_revert
):
    token.transfer(merchant, 5_000, {"from": resident})
    token.approve(relayer, 10_000, {"from": merchant})
    before = balances(merchant, resident)
    with expect_revert(NOT_ALLOWED, merchant, resident):
        token.transferFrom(merchant, resident, 1_000, {"from": relayer})
    assert balances(merchant, resident) == before


def test_spender_transfer_from_to_unregistered_wallet_reverts(
    city, token, resident, stranger, relayer, balances, expect_revert
):
    token.approve(relayer, 10_000, {"from": resident})
    before = balances(resident, stranger)
    with expect_revert(NOT_REGISTERED, stranger):
        token.transferFrom(resident, stranger, 1_000, {"from": relayer})
    assert balances(resident, stranger) == before


def test_spender_transfer_from_to_suspended_merchant_reverts(
    city, token, registry, registrar, resident, merchant, relayer, balances, expect_revert
):
    token.approve(relayer, 10_000, {"from": resident})
    registry.suspend(merchant, {"from": registrar})
    before = balances(resident, merchant)
    with expect_revert(MERCHANT_NOT_ACTIVE, merchant):
        token.transferFrom(resident, merchant, 1_000, {"from": relayer})
    assert balances(resident, merchant) == before


def test_spender_transfer_from_frozen_payer_reverts(
    city, token, compliance, resident, merchant, relayer, balances, expect_revert
):
    token.approve(relayer, 10_000, {"from": resident})
    token.freeze(resident, {"from": compliance})
    before = balances(resident, merchant)
    with expect_revert(FROZEN, resident):
        token.transferFrom(resident, merchant, 1_000, {"from": relayer})
    assert balances(resident, merchant) == before


def test_spender_transfer_from_to_frozen_merchant_reverts(
    city, token, compliance, resident, merchant, relayer, balances, expect_revert
):
    token.approve(relayer, 10_000, {"from": resident})
    token.freeze(merchant, {"from": compliance})
    before = balances(resident, merchant)
    with expect_revert(FROZEN, merchant):
        token.transferFrom(resident, merchant, 1_000, {"from": relayer})
    assert balances(resident, merchant) == before


def test_spender_transfer_from_reverts_when_paused(
    city, token, pauser, resident, merchant, relayer, balances, expect_revert
):
    token.approve(relayer, 10_000, {"from": resident})
    token.pause({"from": pauser})
    before = balances(resident, merchant)
    with expect_revert(PAUSED):
        token.transferFrom(resident, merchant, 1_000, {"from": relayer})
    assert balances(resident, merchant) == before


def test_spender_transfer_from_over_allowance_reverts(
    city, token, resident, merchant, relayer, balances, expect_revert
):
    token.approve(relayer, 999, {"from": resident})
    before = balances(resident, merchant)
    with expect_revert("ERC20InsufficientAllowance(address,uint256,uint256)", relayer, 999, 1_000):
        token.transferFrom(resident, merchant, 1_000, {"from": relayer})
    assert balances(resident, merchant) == before
