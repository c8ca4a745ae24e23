"""Registration of residents and merchants: one wallet per identity and per business, merchant
eligibility (revenue cap, excluded categories), and the city admin's registry setters."""

import pytest
from brownie import ZERO_ADDRESS, CityRegistry

from scripts.city_suite import (
    DEPARTMENT_STORE,
    ENTERTAINMENT_BAR,
    GAMBLING,
    GIMPO,
    LARGE_MART,
    signed_application,
)

NONE, RESIDENT, MERCHANT = 0, 1, 2
ACTIVE = 1
BAKERY = 4721
REVENUE_CAP = GIMPO.policy.merchant_revenue_cap


@pytest.fixture(scope="module")
def newcomer(new_wallet):
    return new_wallet("newcomer")


@pytest.fixture(scope="module")
def shop(new_wallet):
    return new_wallet("shop")


# --- Residents --------------------------------------------------------------------------------


def test_register_resident_emits_resident_registered(
    registry, registrar, newcomer, helpers, as_hex
):
    identity = helpers.identity_hash("newcomer")
    tx = registry.registerResident(newcomer, identity, 41570, {"from": registrar})
    assert tx.events["ResidentRegistered"].values() == [newcomer.address, as_hex(identity), 41570]


def test_register_resident_records_the_resident(registry, registrar, newcomer, helpers, as_hex):
    identity = helpers.identity_hash("newcomer")
    registry.registerResident(newcomer, identity, 41570, {"from": registrar})
    assert registry.residentOf(newcomer) == (as_hex(identity), 41570, ACTIVE)
    assert registry.walletOfIdentity(identity) == newcomer.address


def test_register_resident_makes_the_wallet_an_active_resident_in_the_token(
    registry, token, registrar, newcomer, helpers
):
    tx = registry.registerResident(
        newcomer, helpers.identity_hash("newcomer"), 41570, {"from": registrar}
    )
    assert (token.accountKind(newcomer), token.isActive(newcomer)) == (RESIDENT, True)
    assert tx.events["AccountStatusSet"].values() == [newcomer.address, RESIDENT, True]


def test_register_resident_counts_the_resident(registry, register_resident, newcomer):
    count = registry.residentCount()
    register_resident(newcomer)
    assert registry.residentCount() == count + 1


def test_one_identity_registers_one_wallet(
    registry, registrar, newcomer, shop, helpers, reverts_with
):
    identity = helpers.identity_hash("newcomer")
    registry.registerResident(newcomer, identity, 41570, {"from": registrar})
    with reverts_with("CityRegistryIdentityInUse", identity, newcomer):
        registry.registerResident(shop, identity, 41570, {"from": registrar})


def test_register_resident_reverts_with_an_empty_identity_hash(
    registry, registrar, newcomer, reverts_with
):
    with reverts_with("CityRegistryEmptyHash", "identityHash"):
        registry.registerResident(newcomer, bytes(32), 41570, {"from": registrar})


def test_register_resident_reverts_for_the_zero_address(registry, registrar, helpers, reverts_with):
    with reverts_with("CityRegistryZeroAddress"):
        registry.registerResident(
            ZERO_ADDRESS, helpers.identity_hash("nobody"), 41570, {"from": registrar}
        )


def test_register_resident_reverts_for_a_registered_resident(
    registry, registrar, city, resident, helpers, reverts_with
):
    with reverts_with("CityRegistryAlreadyRegistered", resident):
        registry.registerResident(
            resident, helpers.identity_hash("another person"), 41570, {"from": registrar}
        )


def test_register_resident_reverts_for_a_registered_merchant(
    registry, registrar, city, merchant, helpers, reverts_with
):
    with reverts_with("CityRegistryAlreadyRegistered", merchant):
        registry.registerResident(
            merchant, helpers.identity_hash("another person"), 41570, {"from": registrar}
        )


# --- Merchants --------------------------------------------------------------------------------


def test_register_merchant_emits_merchant_registered(
    registry, registrar, shop, application, as_hex
):
    app = application("shop", category=BAKERY, revenue=450_000_000, region=41571)
    tx = registry.registerMerchant(*signed_application(registry, shop, app), {"from": registrar})
    assert tx.events["MerchantRegistered"].values() == [
        shop.address,
        as_hex(app[0]),
        BAKERY,
        41571,
        450_000_000,
        as_hex(app[1]),
    ]


def test_register_merchant_records_the_merchant(registry, registrar, shop, application, as_hex):
    app = application("shop", category=BAKERY, revenue=450_000_000, region=41571)
    registry.registerMerchant(*signed_application(registry, shop, app), {"from": registrar})
    assert registry.merchantOf(shop) == (
        as_hex(app[0]),
        as_hex(app[1]),
        450_000_000,
        BAKERY,
        41571,
        ACTIVE,
    )
    assert registry.walletOfBusiness(app[0]) == shop.address
    assert registry.isActiveMerchant(shop)


def test_register_merchant_makes_the_wallet_an_active_merchant_in_the_token(
    registry, token, registrar, shop, application
):
    tx = registry.registerMerchant(
        *signed_application(registry, shop, application("shop")), {"from": registrar}
    )
    assert (token.accountKind(shop), token.isActive(shop)) == (MERCHANT, True)
    assert tx.events["AccountStatusSet"].values() == [shop.address, MERCHANT, True]


def test_register_merchant_counts_the_merchant(registry, registrar, shop, application):
    count = registry.merchantCount()
    registry.registerMerchant(
        *signed_application(registry, shop, application("shop")), {"from": registrar}
    )
    assert registry.merchantCount() == count + 1


def test_one_business_registers_one_wallet(
    registry, registrar, shop, newcomer, application, reverts_with
):
    app = application("shop")
    registry.registerMerchant(*signed_application(registry, shop, app), {"from": registrar})
    with reverts_with("CityRegistryBusinessInUse", app[0], shop):
        registry.registerMerchant(*signed_application(registry, newcomer, app), {"from": registrar})


@pytest.mark.parametrize("category", [LARGE_MART, DEPARTMENT_STORE, ENTERTAINMENT_BAR, GAMBLING])
def test_register_merchant_reverts_for_an_excluded_category(
    registry, registrar, shop, application, reverts_with, category
):
    with reverts_with("CityRegistryCategoryExcluded", category):
        registry.registerMerchant(
            *signed_application(registry, shop, application("shop", category=category)),
            {"from": registrar},
        )


def test_register_merchant_reverts_over_the_revenue_cap(
    registry, registrar, shop, application, reverts_with
):
    app = application("shop", revenue=REVENUE_CAP + 1)
    with reverts_with("CityRegistryRevenueOverCap", REVENUE_CAP + 1, REVENUE_CAP):
        registry.registerMerchant(*signed_application(registry, shop, app), {"from": registrar})


def test_register_merchant_allows_a_revenue_of_exactly_the_cap(
    registry, registrar, shop, application
):
    registry.registerMerchant(
        *signed_application(registry, shop, application("shop", revenue=REVENUE_CAP)),
        {"from": registrar},
    )
    assert registry.merchantOf(shop)["annualRevenue"] == REVENUE_CAP


def test_register_merchant_reverts_with_an_empty_business_hash(
    registry, registrar, shop, application, reverts_with
):
    app = (bytes(32), *application("shop")[1:])
    with reverts_with("CityRegistryEmptyHash", "businessIdHash"):
        registry.registerMerchant(*signed_application(registry, shop, app), {"from": registrar})


def test_register_merchant_reverts_with_an_empty_payout_account_hash(
    registry, registrar, shop, application, reverts_with
):
    app = application("shop", payout_account=bytes(32))
    with reverts_with("CityRegistryEmptyHash", "payoutAccountHash"):
        registry.registerMerchant(*signed_application(registry, shop, app), {"from": registrar})


def test_register_merchant_reverts_for_the_zero_address(
    registry, registrar, application, reverts_with
):
    with reverts_with("CityRegistryZeroAddress"):
        registry.registerMerchant(
            *signed_application(registry, ZERO_ADDRESS, application("shop")), {"from": registrar}
        )


def test_register_merchant_reverts_for_a_registered_merchant(
    registry, registrar, city, merchant, application, reverts_with
):
    with reverts_with("CityRegistryAlreadyRegistered", merchant):
        registry.registerMerchant(
            *signed_application(registry, merchant, application("second shop")), {"from": registrar}
        )


def test_register_merchant_reverts_for_a_registered_resident(
    registry, registrar, city, resident, application, reverts_with
):
    with reverts_with("CityRegistryAlreadyRegistered", resident):
        registry.registerMerchant(
            *signed_application(registry, resident, application("second shop")), {"from": registrar}
        )


def test_city_fixture_counts_two_residents_and_two_merchants(registry, city):
    assert (registry.residentCount(), registry.merchantCount()) == (2, 2)


# --- Yearly re-check (updateMerchant) ---------------------------------------------------------


def test_update_merchant_emits_merchant_updated(registry, registrar, city, merchant):
    tx = registry.updateMerchant(merchant, BAKERY, 41571, 900_000_000, {"from": registrar})
    assert tx.events["MerchantUpdated"].values() == [merchant.address, BAKERY, 41571, 900_000_000]


def test_update_merchant_changes_the_record_but_not_the_business_or_the_payout_account(
    registry, registrar, city, merchant, helpers, as_hex
):
    registry.updateMerchant(merchant, BAKERY, 41571, 900_000_000, {"from": registrar})
    assert registry.merchantOf(merchant) == (
        as_hex(helpers.business_hash(merchant.address)),
        as_hex(helpers.account_hash(merchant.address)),
        900_000_000,
        BAKERY,
        41571,
        ACTIVE,
    )


def test_update_merchant_reverts_for_an_excluded_category(
    registry, registrar, city, merchant, helpers, reverts_with
):
    with reverts_with("CityRegistryCategoryExcluded", LARGE_MART):
        registry.updateMerchant(merchant, LARGE_MART, 41570, 300_000_000, {"from": registrar})


def test_update_merchant_reverts_when_the_revenue_grew_over_the_cap(
    registry, registrar, city, merchant, helpers, reverts_with
):
    with reverts_with("CityRegistryRevenueOverCap", REVENUE_CAP + 1, REVENUE_CAP):
        registry.updateMerchant(merchant, BAKERY, 41570, REVENUE_CAP + 1, {"from": registrar})


def test_update_merchant_reverts_for_a_resident(
    registry, registrar, city, resident, helpers, reverts_with
):
    with reverts_with("CityRegistryNotMerchant", resident):
        registry.updateMerchant(resident, BAKERY, 41570, 300_000_000, {"from": registrar})


# --- The city admin's setters -----------------------------------------------------------------


def test_registry_starts_with_the_city_s_policy(registry):
    policy = GIMPO.policy
    assert registry.merchantRevenueCap() == policy.merchant_revenue_cap
    assert registry.banPeriod() == policy.ban_period
    assert all(registry.isCategoryExcluded(c) for c in policy.excluded_categories)
    assert not registry.isCategoryExcluded(BAKERY)


def test_set_merchant_revenue_cap_emits_old_and_new_cap(registry, city_admin):
    tx = registry.setMerchantRevenueCap(1_000_000_000, {"from": city_admin})
    assert tx.events["MerchantRevenueCapChanged"].values() == [REVENUE_CAP, 1_000_000_000]
    assert registry.merchantRevenueCap() == 1_000_000_000


def test_a_lower_revenue_cap_refuses_the_next_registration(
    registry, registrar, city_admin, shop, application, reverts_with
):
    registry.setMerchantRevenueCap(1_000_000_000, {"from": city_admin})
    with reverts_with("CityRegistryRevenueOverCap", 1_100_000_000, 1_000_000_000):
        registry.registerMerchant(
            *signed_application(registry, shop, application("shop", revenue=1_100_000_000)),
            {"from": registrar},
        )


def test_set_category_excluded_emits_category_exclusion_changed(registry, city_admin):
    tx = registry.setCategoryExcluded(BAKERY, True, {"from": city_admin})
    assert tx.events["CategoryExclusionChanged"].values() == [BAKERY, True]
    assert registry.isCategoryExcluded(BAKERY)


def test_a_newly_excluded_category_refuses_registration(
    registry, registrar, city_admin, shop, application, reverts_with
):
    registry.setCategoryExcluded(BAKERY, True, {"from": city_admin})
    with reverts_with("CityRegistryCategoryExcluded", BAKERY):
        registry.registerMerchant(
            *signed_application(registry, shop, application("shop", category=BAKERY)),
            {"from": registrar},
        )


def test_a_category_no_longer_excluded_registers(
    registry, registrar, city_admin, shop, application
):
    tx = registry.setCategoryExcluded(LARGE_MART, False, {"from": city_admin})
    assert tx.events["CategoryExclusionChanged"].values() == [LARGE_MART, False]
    registry.registerMerchant(
        *signed_application(registry, shop, application("shop", category=LARGE_MART)),
        {"from": registrar},
    )
    assert registry.isActiveMerchant(shop)


def test_set_ban_period_emits_old_and_new_period(registry, city_admin):
    tx = registry.setBanPeriod(30 * 86_400, {"from": city_admin})
    assert tx.events["BanPeriodChanged"].values() == [GIMPO.policy.ban_period, 30 * 86_400]
    assert registry.banPeriod() == 30 * 86_400


def test_deployment_reverts_with_a_zero_address(token, treasury, city_admin, reverts_with):
    with reverts_with("CityRegistryZeroAddress"):
        CityRegistry.deploy(
            token, treasury, ZERO_ADDRESS, REVENUE_CAP, 86_400, [], {"from": city_admin}
        )
