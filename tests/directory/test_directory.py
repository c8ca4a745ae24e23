"""The platform's directory of cities, and two cities side by side: Gimpo (the root conftest's
suite) and Gongju, deployed here with the same script."""

import pytest
from brownie import ZERO_ADDRESS, CityToken, accounts
from eth_utils import keccak

from scripts.city_suite import signed_application

RESTAURANT = 5611


@pytest.fixture
def listed(register, suite, gongju):
    """Both cities in the directory, Gimpo first; returns their registration transactions."""
    return register("gimpo", "Gimpo Pay", suite), register("gongju", "Gongju Pay", gongju)


# --- Listing ----------------------------------------------------------------------------------


def test_register_city_emits_city_registered(register, suite):
    tx = register("gimpo", "Gimpo Pay", suite)
    assert tx.events["CityRegistered"].values() == [
        "gimpo",
        "0x" + keccak(text="gimpo").hex(),
        suite.token.address,
        suite.registry.address,
        suite.treasury.address,
    ]


def test_city_returns_the_suite_under_its_code(directory, listed, gongju):
    assert directory.city("gongju") == (
        "gongju",
        "Gongju Pay",
        gongju.token.address,
        gongju.registry.address,
        gongju.treasury.address,
        listed[1].timestamp,
    )


def test_city_count_counts_the_registered_cities(directory, listed):
    assert directory.cityCount() == 2


def test_city_at_lists_the_cities_in_registration_order(directory, listed, suite, gongju):
    assert directory.cityAt(0)["token"] == suite.token.address
    assert directory.cityAt(1)["token"] == gongju.token.address


def test_cities_lists_every_city(directory, listed, suite, gongju):
    assert directory.cities() == [directory.cityAt(0), directory.cityAt(1)]
    assert [c["code"] for c in directory.cities()] == ["gimpo", "gongju"]


def test_empty_directory_lists_no_city(directory):
    assert (directory.cityCount(), directory.cities()) == (0, [])


def test_directory_deployer_administers_the_directory(directory, city_admin):
    assert directory.hasRole(directory.DEFAULT_ADMIN_ROLE(), city_admin)
    assert directory.hasRole(directory.DIRECTORY_ADMIN_ROLE(), city_admin)


def test_register_city_reverts_for_a_code_taken(register, listed, gongju, reverts_with):
    with reverts_with("CityDirectoryCodeTaken", "gimpo"):
        register("gimpo", "Gongju Pay", gongju)


def test_city_reverts_for_an_unknown_code(directory, listed, reverts_with):
    with reverts_with("CityDirectoryUnknownCity", "ulsan"):
        directory.city("ulsan")


# --- Refused suites ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("token", "registry", "treasury"),
    [
        ("gimpo", "gongju", "gimpo"),
        ("gimpo", "gimpo", "gongju"),
        ("gongju", "gimpo", "gimpo"),
    ],
    ids=["registry of another city", "treasury of another city", "token of another city"],
)
def test_register_city_reverts_for_a_mismatched_suite(
    directory, city_admin, suite, gongju, reverts_with, token, registry, treasury
):
    suites = {"gimpo": suite, "gongju": gongju}
    with reverts_with("CityDirectoryInvalidCity", "mixed"):
        directory.registerCity(
            "mixed",
            "Mixed Pay",
            suites[token].token,
            suites[registry].registry,
            suites[treasury].treasury,
            {"from": city_admin},
        )


def test_register_city_reverts_for_an_empty_code(directory, city_admin, suite, reverts_with):
    with reverts_with("CityDirectoryInvalidCity", ""):
        directory.registerCity(
            "", "Gimpo Pay", suite.token, suite.registry, suite.treasury, {"from": city_admin}
        )


def test_register_city_reverts_for_a_zero_token(directory, city_admin, suite, reverts_with):
    with reverts_with("CityDirectoryInvalidCity", "gimpo"):
        directory.registerCity(
            "gimpo", "Gimpo Pay", ZERO_ADDRESS, suite.registry, suite.treasury, {"from": city_admin}
        )


def test_register_city_reverts_for_a_token_not_linked_to_a_suite(
    directory, city_admin, reverts_with
):
    unlinked = CityToken.deploy("Ulsan Pay", "ULSAN", city_admin, {"from": city_admin})
    with reverts_with("CityDirectoryInvalidCity", "ulsan"):
        directory.registerCity(
            "ulsan", "Ulsan Pay", unlinked, ZERO_ADDRESS, ZERO_ADDRESS, {"from": city_admin}
        )


# --- Two cities, two currencies ---------------------------------------------------------------


@pytest.fixture
def gongju_merchant(gongju, registrar):
    """A restaurant registered in Gongju only."""
    merchant = accounts.add(keccak(text="city-token-test-wallet:gongju-merchant"))
    application = (
        keccak(text="business:gongju-merchant"),
        keccak(text="bank-account:gongju-merchant"),
        300_000_000,
        RESTAURANT,
        44150,
    )
    gongju.registry.registerMerchant(
        *signed_application(gongju.registry, merchant, application), {"from": registrar}
    )
    return merchant


def test_a_merchant_of_one_city_is_unregistered_in_the_other(token, gongju, gongju_merchant):
    assert gongju.token.accountKind(gongju_merchant) == 2
    assert token.accountKind(gongju_merchant) == 0


def test_tokens_of_one_city_cannot_pay_the_other_city_s_merchant(
    token, city, resident, gongju_merchant, reverts_with
):
    with reverts_with("CityTokenNotRegistered", gongju_merchant):
        token.transfer(gongju_merchant, 1_000, {"from": resident})


def test_an_invoice_of_one_city_cannot_be_paid_with_the_other_city_s_tokens(
    token, city, resident, gongju_merchant, reverts_with
):
    with reverts_with("CityTokenNotRegistered", gongju_merchant):
        token.pay(gongju_merchant, 1_000, keccak(text="invoice:gongju-1"), {"from": resident})


def test_a_resident_of_one_city_cannot_be_charged_by_the_other(
    gongju, city, resident, issuer, reverts_with
):
    with reverts_with("CityTreasuryNotResident", resident):
        gongju.treasury.issue(resident, 10_000, keccak(text="deposit:gongju-1"), {"from": issuer})


def test_each_city_has_its_own_currency(token, gongju):
    assert (token.name(), token.symbol()) == ("Gimpo Pay", "GIMPO")
    assert (gongju.token.name(), gongju.token.symbol()) == ("Gongju Pay", "GONGJU")
