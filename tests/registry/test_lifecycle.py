"""Suspend, activate, revoke; the ban of a business revoked for illegal exchange (상품권깡)."""

import pytest
from brownie import ZERO_ADDRESS, chain

from scripts.city_suite import GIMPO, signed_application

NONE, ACTIVE, SUSPENDED, REVOKED = 0, 1, 2, 3
RESIDENT, MERCHANT = 1, 2
BAN_PERIOD = GIMPO.policy.ban_period


@pytest.fixture(scope="module")
def successor(new_wallet):
    """A new wallet that applies with a revoked merchant's business id."""
    return new_wallet("successor")


@pytest.fixture(scope="module")
def business(helpers, merchant):
    """The business id the root conftest registered `merchant` with."""
    return helpers.business_hash(merchant.address)


@pytest.fixture
def reapply(registry, registrar, helpers, merchant, successor):
    """The successor wallet applies with the merchant's business id."""

    def reapply_():
        application = (
            helpers.business_hash(merchant.address),
            helpers.account_hash("successor"),
            300_000_000,
            5611,
            41570,
        )
        return registry.registerMerchant(
            *signed_application(registry, successor, application), {"from": registrar}
        )

    return reapply_


# --- Suspend and activate ---------------------------------------------------------------------


@pytest.mark.parametrize(("who", "kind"), [("resident", RESIDENT), ("merchant", MERCHANT)])
def test_suspend_emits_status_changed_and_deactivates_the_token_account(
    registry, token, registrar, city, request, who, kind
):
    wallet = request.getfixturevalue(who)
    tx = registry.suspend(wallet, {"from": registrar})
    assert tx.events["StatusChanged"].values() == [wallet.address, ACTIVE, SUSPENDED, False]
    assert tx.events["AccountStatusSet"].values() == [wallet.address, kind, False]
    assert (token.accountKind(wallet), token.isActive(wallet)) == (kind, False)


@pytest.mark.parametrize(("who", "kind"), [("resident", RESIDENT), ("merchant", MERCHANT)])
def test_activate_emits_status_changed_and_reactivates_the_token_account(
    registry, token, registrar, city, request, who, kind
):
    wallet = request.getfixturevalue(who)
    registry.suspend(wallet, {"from": registrar})
    tx = registry.activate(wallet, {"from": registrar})
    assert tx.events["StatusChanged"].values() == [wallet.address, SUSPENDED, ACTIVE, False]
    assert (token.accountKind(wallet), token.isActive(wallet)) == (kind, True)


def test_suspended_merchant_is_not_an_active_merchant(registry, registrar, city, merchant):
    registry.suspend(merchant, {"from": registrar})
    assert registry.merchantOf(merchant)["status"] == SUSPENDED
    assert not registry.isActiveMerchant(merchant)


def test_suspended_resident_keeps_its_record_with_the_new_status(
    registry, registrar, city, resident
):
    registry.suspend(resident, {"from": registrar})
    assert registry.residentOf(resident)["status"] == SUSPENDED


def test_suspend_does_not_change_the_counts(registry, registrar, city, resident, merchant):
    registry.suspend(resident, {"from": registrar})
    registry.suspend(merchant, {"from": registrar})
    assert (registry.residentCount(), registry.merchantCount()) == (2, 2)


# --- Invalid status changes -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("before", "action", "current", "requested"),
    [
        ([], "activate", ACTIVE, ACTIVE),
        (["suspend"], "suspend", SUSPENDED, SUSPENDED),
        (["revoke"], "activate", REVOKED, ACTIVE),
        (["revoke"], "suspend", REVOKED, SUSPENDED),
        (["revoke"], "revoke", REVOKED, REVOKED),
    ],
)
@pytest.mark.parametrize("who", ["resident", "merchant"])
def test_invalid_status_change_reverts_with_current_and_requested_status(
    registry, registrar, city, request, reverts_with, who, before, action, current, requested
):
    wallet = request.getfixturevalue(who)
    for step in before:
        _change(registry, step, wallet, registrar)
    with reverts_with("CityRegistryInvalidStatusChange", wallet, current, requested):
        _change(registry, action, wallet, registrar)


@pytest.mark.parametrize(
    ("action", "requested"), [("activate", ACTIVE), ("suspend", SUSPENDED), ("revoke", REVOKED)]
)
def test_status_change_of_an_unregistered_wallet_reverts(
    registry, registrar, city, stranger, reverts_with, action, requested
):
    with reverts_with("CityRegistryInvalidStatusChange", stranger, NONE, requested):
        _change(registry, action, stranger, registrar)


def _change(registry, action, wallet, registrar):
    if action == "revoke":
        return registry.revoke(wallet, False, {"from": registrar})
    return getattr(registry, action)(wallet, {"from": registrar})


# --- Revoke -----------------------------------------------------------------------------------


def test_revoke_resident_emits_status_changed_and_deactivates_it(
    registry, token, registrar, city, resident
):
    tx = registry.revoke(resident, False, {"from": registrar})
    assert tx.events["StatusChanged"].values() == [resident.address, ACTIVE, REVOKED, False]
    assert (token.accountKind(resident), token.isActive(resident)) == (RESIDENT, False)


def test_revoke_resident_frees_its_identity_for_a_new_wallet(
    registry, registrar, city, resident, successor, helpers
):
    identity = helpers.identity_hash(resident.address)
    registry.revoke(resident, False, {"from": registrar})
    assert registry.walletOfIdentity(identity) == ZERO_ADDRESS
    registry.registerResident(successor, identity, 41570, {"from": registrar})
    assert registry.walletOfIdentity(identity) == successor.address


def test_revoke_counts_the_resident_out(registry, registrar, city, resident):
    registry.revoke(resident, False, {"from": registrar})
    assert (registry.residentCount(), registry.merchantCount()) == (1, 2)


def test_revoke_counts_the_merchant_out(registry, registrar, city, merchant):
    registry.revoke(merchant, False, {"from": registrar})
    assert (registry.residentCount(), registry.merchantCount()) == (2, 1)


def test_revoke_a_suspended_merchant(registry, registrar, city, merchant):
    registry.suspend(merchant, {"from": registrar})
    tx = registry.revoke(merchant, False, {"from": registrar})
    assert tx.events["StatusChanged"].values() == [merchant.address, SUSPENDED, REVOKED, False]
    assert registry.merchantOf(merchant)["status"] == REVOKED


def test_payments_to_a_revoked_merchant_revert(
    registry, token, registrar, city, resident, merchant, reverts_with
):
    registry.revoke(merchant, False, {"from": registrar})
    with reverts_with("CityTokenMerchantNotActive", merchant):
        token.transfer(merchant, 1_000, {"from": resident})


def test_revoke_without_illegal_exchange_frees_the_business_id(
    registry, registrar, city, merchant, business
):
    tx = registry.revoke(merchant, False, {"from": registrar})
    assert "BusinessBanned" not in tx.events
    assert registry.walletOfBusiness(business) == ZERO_ADDRESS
    assert registry.bannedUntil(business) == 0


def test_business_revoked_without_illegal_exchange_registers_again_at_once(
    registry, registrar, city, merchant, successor, business, reapply
):
    registry.revoke(merchant, False, {"from": registrar})
    reapply()
    assert registry.walletOfBusiness(business) == successor.address


def test_revoke_for_illegal_exchange_emits_status_changed_with_the_flag(
    registry, registrar, city, merchant
):
    tx = registry.revoke(merchant, True, {"from": registrar})
    assert tx.events["StatusChanged"].values() == [merchant.address, ACTIVE, REVOKED, True]


def test_revoke_for_illegal_exchange_bans_the_business_for_the_ban_period(
    registry, registrar, city, merchant, business, as_hex
):
    tx = registry.revoke(merchant, True, {"from": registrar})
    until = tx.timestamp + BAN_PERIOD
    assert tx.events["BusinessBanned"].values() == [as_hex(business), until]
    assert registry.bannedUntil(business) == until
    assert registry.walletOfBusiness(business) == ZERO_ADDRESS


def test_banned_business_cannot_register_under_a_new_wallet(
    registry, registrar, city, merchant, business, reapply, reverts_with
):
    tx = registry.revoke(merchant, True, {"from": registrar})
    with reverts_with("CityRegistryBusinessBanned", business, tx.timestamp + BAN_PERIOD):
        reapply()


def test_banned_business_still_refused_an_hour_before_the_ban_ends(
    registry, registrar, city, merchant, business, reapply, reverts_with
):
    tx = registry.revoke(merchant, True, {"from": registrar})
    chain.sleep(BAN_PERIOD - 3_600)
    with reverts_with("CityRegistryBusinessBanned", business, tx.timestamp + BAN_PERIOD):
        reapply()


def test_banned_business_registers_again_once_the_ban_ended(
    registry, registrar, city, merchant, successor, business, reapply
):
    registry.revoke(merchant, True, {"from": registrar})
    chain.sleep(BAN_PERIOD + 60)
    reapply()
    assert registry.walletOfBusiness(business) == successor.address
    assert registry.isActiveMerchant(successor)


def test_a_new_ban_period_applies_to_the_next_ban(
    registry, registrar, city_admin, city, merchant, business
):
    registry.setBanPeriod(30 * 86_400, {"from": city_admin})
    tx = registry.revoke(merchant, True, {"from": registrar})
    assert registry.bannedUntil(business) == tx.timestamp + 30 * 86_400


def test_revoking_a_resident_for_illegal_exchange_bans_no_business(
    registry, registrar, city, resident
):
    tx = registry.revoke(resident, True, {"from": registrar})
    assert tx.events["StatusChanged"].values() == [resident.address, ACTIVE, REVOKED, True]
    assert "BusinessBanned" not in tx.events
